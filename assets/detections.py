"""detections: objects found in sampled frames of one video, by the registry's detector."""

from collections import Counter
from collections.abc import Iterator

from dagster import AssetCheckSpec, AssetExecutionContext, Config, MaterializeResult, MetadataValue, asset
from pydantic import Field

from assets.metadata import jpeg_markdown
from assets.raw_video import raw_video
from assets.stage import VideoOutcome, batch_setup, materialize_videos, model_code_version, video_backfill_policy
from orchestration.partitions import videos_partitions
from orchestration.placement import GPU_POOL, gpu_op_tags
from resources import ModelRegistryResource, ObjectStoreResource, PostgresResource
from video_analysis import catalog, quality
from video_analysis.results import ModelStamp, replace_detections
from video_analysis.vision import detect_video

STAGE = "detections"


class DetectionConfig(Config):
    sample_fps: float = Field(default=2.0, description="Frames analysed per second of video; 0 = every frame.")
    batch_size: int = Field(default=8, description="Frames per model call.")


@asset(
    partitions_def=videos_partitions,
    backfill_policy=video_backfill_policy(),
    deps=[raw_video],
    pool=GPU_POOL,
    op_tags=gpu_op_tags(),
    group_name="vision",
    kinds={"pytorch", "postgres"},
    owners=["team:video-platform"],
    code_version=model_code_version("detect-v1", "detector"),
    description="Boxes, classes and scores on sampled frames (table `detections`), stamped with the model.",
    check_specs=[AssetCheckSpec(name, asset="detections") for name in ("boxes_inside_frame", "scores_in_unit_range")],
)
def detections(
    context: AssetExecutionContext,
    config: DetectionConfig,
    database: PostgresResource,
    object_store: ObjectStoreResource,
    models: ModelRegistryResource,
) -> Iterator[MaterializeResult]:
    with batch_setup(context, database, STAGE):
        model, detector = models.load("detector")  # once for the whole batch
        store = object_store.store()

    def detect_one(partition_key: str) -> VideoOutcome:
        with database.session() as conn:
            video = catalog.ready_video(conn, partition_key)
        found = detect_video(store.fetch(video.obj), detector, fps=video.fps,
                             sample_fps=config.sample_fps, batch_size=config.batch_size)
        with database.session() as conn:
            rows = replace_detections(conn, partition_key, found.detections, detector.class_names,
                                      ModelStamp(model.name, model.version))
            catalog.record_stage(conn, partition_key, STAGE, "done", row_count=rows, model_version=model.version,
                                 run_id=context.run.run_id,
                                 details={"step": found.step, "frames_processed": found.frames_processed})
            findings = quality.detection_findings(conn, partition_key, video.width, video.height)
        context.log.info("%s: %d detections on %d frames (%.3f s/frame)", partition_key, rows,
                         found.frames_processed, found.seconds_per_frame)
        per_class = Counter(detector.class_names.get(int(c), str(c)) for c in found.detections.class_id)
        metadata = {
            "dagster/row_count": rows,
            "per_class": MetadataValue.json(dict(per_class.most_common())),
            "frames_processed": found.frames_processed,
            "seconds_per_frame": MetadataValue.float(round(found.seconds_per_frame, 4)),
        }
        if found.preview_jpeg:
            metadata["preview"] = jpeg_markdown(found.preview_jpeg, "busiest frame")
        return VideoOutcome(metadata, findings)

    context.log.info("detector: %s", model.describe())
    model_metadata = {"model": model.name, "model_version": model.version, "model_profile": model.profile}
    if model.note:
        model_metadata["model_note"] = model.note
    yield from materialize_videos(context, database, STAGE, detect_one, model_metadata)
