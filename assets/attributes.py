"""attributes: what each track looks like and how it moves: colours, size, speed, heading, dwell, zones."""

from collections import Counter
from pathlib import Path

from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, asset

from assets.stage import recorded_stage
from assets.tracks import tracks
from orchestration.partitions import videos_partitions
from resources import ModelRegistryResource, PostgresResource
from video_analysis import catalog
from video_analysis.attributes import load_zones
from video_analysis.results import load_tracks, replace_attributes
from video_analysis.settings import Settings
from video_analysis.understanding import attributes_for

STAGE = "attributes"
# Attributes that need checkpoints the manifest does not name yet; reported as absent, never invented.
MODEL_ATTRIBUTES = ("age", "gender", "relative_depth")


def zones_file(settings: Settings) -> Path | None:
    if settings.zones_file:
        return Path(settings.zones_file)
    default = settings.home.root / "zones.yaml"
    return default if default.exists() else None


@asset(
    partitions_def=videos_partitions,
    deps=[tracks],
    group_name="understanding",
    kinds={"python", "postgres"},
    owners=["team:video-platform"],
    code_version="attributes-v1",
    description="Per track (table `track_attributes`): dominant upper/lower clothing colours, apparent size, "
    "speed and heading, dwell time, zones visited, and a one-sentence description.",
)
def attributes(context: AssetExecutionContext, database: PostgresResource,
               models: ModelRegistryResource) -> MaterializeResult:
    partition_key = context.partition_key
    settings = Settings.from_env()
    with recorded_stage(context, database, STAGE):
        with database.session() as conn:
            video = catalog.ready_video(conn, partition_key)
            stored = load_tracks(conn, partition_key)
        zones = load_zones(zones_file(settings), video.camera)
        found = attributes_for(stored, video.width, video.height, zones)
        profile = models.registry(allow_download=False).requested_profile
        with database.session() as conn:
            rows = replace_attributes(conn, partition_key, found, profile=profile)
            catalog.record_stage(conn, partition_key, STAGE, "done", row_count=rows, run_id=context.run.run_id)

    colours = Counter(c for a in found for c in (a.upper_color, a.lower_color, a.color) if c)
    return MaterializeResult(metadata={
        "dagster/row_count": rows,
        "colours": MetadataValue.json(dict(colours.most_common())),
        "motion": MetadataValue.json(dict(Counter(a.motion for a in found))),
        "zones_configured": [z.name for z in zones],
        "examples": MetadataValue.json([{"track": a.track_id, "description": a.description} for a in found[:5]]),
        "absent": MetadataValue.json({name: "no checkpoint for it in the model manifest" for name in MODEL_ATTRIBUTES}),
    })
