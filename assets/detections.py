"""detections: objects found in sampled frames of one video, by the registry's detector."""

from collections.abc import Iterator

from dagster import AssetExecutionContext, Config, MaterializeResult
from pydantic import Field

from assets.raw_video import raw_video
from assets.video_stage import batch_setup, materialize_videos, model_code_version, video_stage_asset
from configuration.settings import Settings
from resources import ModelRegistryResource, ObjectStoreResource, PostgresResource
from video_analysis.stages import detections as stage
from video_analysis.vision.passes import DEFAULT_SAMPLE_FPS
from video_analysis.vision.tiling import parse_tiles, tiles_fingerprint
from video_analysis.vision.tracking import import_tracker_library


class DetectionConfig(Config):
    sample_fps: float = Field(default=DEFAULT_SAMPLE_FPS, description="Frames analysed per second of video, rounded "
                              "to a whole step of the video's frames; 0 = every frame.")
    batch_size: int = Field(default=8, description="Frames per model call.")
    tiles: str = Field(default="", description="Detect on this grid of tiles too (COLSxROWS, or off) for every "
                       "video of the run; empty: each camera's `detector_tiles` in the zones file, else "
                       "$REELGRAPH_DETECTOR_TILES.")


def _tiles_version() -> str:
    """"" while tiles are off everywhere; else the grids' hash, so a change re-detects (backfill --stale)."""
    fingerprint = tiles_fingerprint(Settings.from_env().detector_tiles, Settings.from_env().zones_path)
    return f"-tiles-{fingerprint}" if fingerprint else ""


@video_stage_asset(
    deps=[raw_video],
    gpu=True,
    group="vision",
    kinds={"pytorch", "postgres"},
    code_version=model_code_version("detect-v3", "detector") + _tiles_version(),
    description="Boxes, classes and scores on sampled frames (table `detections`), stamped with the model; the "
    "one full decode of the video, which also finds how much of it decodes (ready or partial footage).",
    checks=("boxes_inside_frame", "scores_in_unit_range", "footage_complete"),
)
def detections(context: AssetExecutionContext, config: DetectionConfig, database: PostgresResource,
               object_store: ObjectStoreResource, models: ModelRegistryResource) -> Iterator[MaterializeResult]:
    # this run's own grid, for every video, over the cameras' and the default; checked before anything loads
    forced = config.tiles.strip() or None
    if forced is not None:
        parse_tiles(forced)
    with batch_setup(context, database, stage.STAGE):
        if models.resolve("detector").backend != "ultralytics":  # which imports the same library itself
            import_tracker_library()  # while the detector loads: the pass runs a tracker along
        model, detector = models.load("detector")  # once for the whole batch
    db, store, settings = database.database(), object_store.store(), Settings.from_env()
    context.log.info("detector: %s", model.describe())
    yield from materialize_videos(
        context, database, stage.STAGE,
        lambda key: stage.run(db, key, store, detector, model.stamp, sample_fps=config.sample_fps,
                               batch_size=config.batch_size, run_id=context.run.run_id,
                               tiles=forced or settings.detector_tiles,
                               zones_file=None if forced else settings.zones_path),
        {"model": model.name, "model_version": model.version, "model_profile": model.profile,
         **({"model_note": model.note} if model.note else {})})
