"""Jobs: one run carries a new video through every stage downstream of raw_video."""

from dagster import AssetSelection, define_asset_job

process_video_job = define_asset_job(
    "process_video",
    selection=AssetSelection.assets("raw_video").downstream(),
    description="Every stage for one video partition, in dependency order.",
)
