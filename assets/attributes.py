"""attributes: what each track looks like and how it moves: colours, size, speed, heading, dwell, zones."""

from collections.abc import Iterator

from dagster import AssetExecutionContext, MaterializeResult

from assets.tracks import tracks
from assets.video_stage import batch_setup, materialize_videos, video_stage_asset
from configuration.settings import Settings
from resources import ModelRegistryResource, ObjectStoreResource, PostgresResource
from video_analysis.events.incident_rules import zones_fingerprint
from video_analysis.stages import attributes as stage

# Attributes that need a model; a profile without one reports them absent, never invented.
MODEL_ATTRIBUTES = {"age": "age_classifier", "gender": "gender_classifier", "relative_depth": "depth_estimator"}


@video_stage_asset(
    deps=[tracks],
    group="understanding",
    kinds={"python", "postgres"},
    # The zones in force are part of the version: editing them marks which zones each track entered stale.
    code_version=f"attributes-v3-{zones_fingerprint(Settings.from_env().zones_path)}",
    description="Per track (table `track_attributes`): dominant upper/lower clothing colours, apparent size, "
    "speed and heading, dwell time, zones visited, and a one-sentence description.",
)
def attributes(context: AssetExecutionContext, database: PostgresResource, object_store: ObjectStoreResource,
               models: ModelRegistryResource) -> Iterator[MaterializeResult]:
    with batch_setup(context, database, stage.STAGE):
        loaded = {name: models.load_optional(task) for name, task in MODEL_ATTRIBUTES.items()}
        profile = models.registry(allow_download=False).requested_profile
    absent = {name: reason for name, (_, _, reason) in loaded.items() if reason}
    classifiers = {name: loaded[name][1] for name in ("age", "gender") if name not in absent}
    db, store, zones_file = database.database(), object_store.store(), Settings.from_env().zones_path
    yield from materialize_videos(
        context, database, stage.STAGE,
        lambda key: stage.run(db, key, store, profile=profile, zones_file=zones_file, classifiers=classifiers,
                                 depth=loaded["relative_depth"][1], run_id=context.run.run_id),
        {"model_attributes": sorted(set(MODEL_ATTRIBUTES) - set(absent)), "absent": absent})
