"""detections: objects found in sampled frames of one video, by the registry's detector."""

from collections import Counter

from dagster import AssetCheckSpec, AssetExecutionContext, Config, MaterializeResult, MetadataValue, asset
from pydantic import Field

from assets.metadata import jpeg_markdown
from assets.raw_video import raw_video
from assets.stage import check_results, model_code_version, recorded_stage
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
) -> MaterializeResult:
    partition_key = context.partition_key
    with recorded_stage(context, database, STAGE):
        with database.session() as conn:
            video = catalog.ready_video(conn, partition_key)
        model, detector = models.load("detector")
        found = detect_video(object_store.store().fetch(video.obj), detector, fps=video.fps,
                             sample_fps=config.sample_fps, batch_size=config.batch_size)
        with database.session() as conn:
            rows = replace_detections(conn, partition_key, found.detections, detector.class_names,
                                      ModelStamp(model.name, model.version))
            catalog.record_stage(conn, partition_key, STAGE, "done", row_count=rows, model_version=model.version,
                                 run_id=context.run.run_id,
                                 details={"step": found.step, "frames_processed": found.frames_processed})
            findings = quality.detection_findings(conn, partition_key, video.width, video.height)

    per_class = Counter(detector.class_names.get(int(c), str(c)) for c in found.detections.class_id)
    context.log.info("%d detections on %d frames (%.3f s/frame) with %s", rows, found.frames_processed,
                     found.seconds_per_frame, model.describe())
    metadata = {
        "dagster/row_count": rows,
        "per_class": MetadataValue.json(dict(per_class.most_common())),
        "frames_processed": found.frames_processed,
        "seconds_per_frame": MetadataValue.float(round(found.seconds_per_frame, 4)),
        "model": model.name,
        "model_version": model.version,
        "model_profile": model.profile,
    }
    if model.note:
        metadata["model_note"] = model.note
    if found.preview_jpeg:
        metadata["preview"] = jpeg_markdown(found.preview_jpeg, "busiest frame")
    return MaterializeResult(metadata=metadata, check_results=check_results("detections", findings))
