"""attributes: what each track looks like and how it moves: colours, size, speed, heading, dwell, zones."""

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, asset

from assets.stage import VideoOutcome, batch_setup, materialize_videos, video_backfill_policy
from assets.tracks import tracks
from orchestration.partitions import videos_partitions
from resources import ModelRegistryResource, ObjectStoreResource, PostgresResource
from video_analysis import catalog
from video_analysis.attributes import load_zones
from video_analysis.results import load_tracks, replace_attributes
from video_analysis.settings import Settings
from video_analysis.understanding import attributes_for, model_attributes, with_model_facts

STAGE = "attributes"
# Attributes that need a model; a profile without one reports them absent, never invented.
MODEL_ATTRIBUTES = {"age": "age_classifier", "gender": "gender_classifier", "relative_depth": "depth_estimator"}


def zones_file(settings: Settings) -> Path | None:
    if settings.zones_file:
        return Path(settings.zones_file)
    default = settings.home.root / "zones.yaml"
    return default if default.exists() else None


@asset(
    partitions_def=videos_partitions,
    backfill_policy=video_backfill_policy(),
    deps=[tracks],
    group_name="understanding",
    kinds={"python", "postgres"},
    owners=["team:video-platform"],
    code_version="attributes-v1",
    description="Per track (table `track_attributes`): dominant upper/lower clothing colours, apparent size, "
    "speed and heading, dwell time, zones visited, and a one-sentence description.",
)
def attributes(context: AssetExecutionContext, database: PostgresResource, object_store: ObjectStoreResource,
               models: ModelRegistryResource) -> Iterator[MaterializeResult]:
    settings = Settings.from_env()
    with batch_setup(context, database, STAGE):
        store = object_store.store()
        loaded = {name: models.load_optional(task) for name, task in MODEL_ATTRIBUTES.items()}
        profile = models.registry(allow_download=False).requested_profile
    absent = {name: reason for name, (_, _, reason) in loaded.items() if reason}
    classifiers = {name: loaded[name][1] for name in ("age", "gender") if name not in absent}
    depth = loaded["relative_depth"][1]

    def describe_one(partition_key: str) -> VideoOutcome:
        with database.session() as conn:
            video = catalog.ready_video(conn, partition_key)
            stored = load_tracks(conn, partition_key)
        zones = load_zones(zones_file(settings), video.camera)
        video_path = store.fetch(video.obj) if depth is not None else None
        extras = model_attributes(stored, classifiers, depth, video_path)
        found = with_model_facts(attributes_for(stored, video.width, video.height, zones), extras)
        with database.session() as conn:
            rows = replace_attributes(conn, partition_key, found, profile=profile, extras=extras)
            catalog.record_stage(conn, partition_key, STAGE, "done", row_count=rows, run_id=context.run.run_id)

        colours = Counter(c for a in found for c in (a.upper_color, a.lower_color, a.color) if c)
        return VideoOutcome({
            "dagster/row_count": rows,
            "colours": MetadataValue.json(dict(colours.most_common())),
            "motion": MetadataValue.json(dict(Counter(a.motion for a in found))),
            "zones_configured": [z.name for z in zones],
            "examples": MetadataValue.json([{"track": a.track_id, "description": a.description}
                                            for a in found[:5]]),
        })

    yield from materialize_videos(context, database, STAGE, describe_one, {
        "model_attributes": sorted(set(MODEL_ATTRIBUTES) - set(absent)),
        "absent": MetadataValue.json(absent),
    })
