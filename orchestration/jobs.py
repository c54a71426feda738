"""Jobs: one run carries a new video through every stage downstream of raw_video."""

from dagster import AssetSelection, define_asset_job

from orchestration.partitions import videos_partitions

process_video_job = define_asset_job(
    "process_video",
    selection=AssetSelection.assets("raw_video").downstream(),
    partitions_def=videos_partitions,
    description="Every stage for one video partition, in dependency order.",
)
