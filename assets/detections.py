"""detections: objects found in sampled frames of one video, by the registry's detector."""

from collections.abc import Iterator

from dagster import AssetExecutionContext, Config, MaterializeResult
from pydantic import Field

from assets.raw_video import raw_video
from assets.video_stage import batch_setup, materialize_videos, model_code_version, video_stage_asset
from resources import ModelRegistryResource, ObjectStoreResource, PostgresResource
from video_analysis.stages import detect
from video_analysis.vision.passes import DEFAULT_SAMPLE_FPS


class DetectionConfig(Config):
    sample_fps: float = Field(default=DEFAULT_SAMPLE_FPS, description="Frames analysed per second of video, rounded "
                              "to a whole step of the video's frames; 0 = every frame.")
    batch_size: int = Field(default=8, description="Frames per model call.")


@video_stage_asset(
    deps=[raw_video],
    gpu=True,
    group="vision",
    kinds={"pytorch", "postgres"},
    code_version=model_code_version("detect-v3", "detector"),
    description="Boxes, classes and scores on sampled frames (table `detections`), stamped with the model; the "
    "one full decode of the video, which also finds how much of it decodes (ready or partial footage).",
    checks=("boxes_inside_frame", "scores_in_unit_range", "footage_complete"),
)
def detections(context: AssetExecutionContext, config: DetectionConfig, database: PostgresResource,
               object_store: ObjectStoreResource, models: ModelRegistryResource) -> Iterator[MaterializeResult]:
    with batch_setup(context, database, detect.STAGE):
        model, detector = models.load("detector")  # once for the whole batch
    db, store = database.database(), object_store.store()
    context.log.info("detector: %s", model.describe())
    yield from materialize_videos(
        context, database, detect.STAGE,
        lambda key: detect.run(db, key, store, detector, model.stamp, sample_fps=config.sample_fps,
                               batch_size=config.batch_size, run_id=context.run.run_id),
        {"model": model.name, "model_version": model.version, "model_profile": model.profile,
         **({"model_note": model.note} if model.note else {})})
