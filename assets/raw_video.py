"""raw_video: fetch one uploaded object version, check that it really decodes, and catalogue it."""

from dagster import AssetExecutionContext, Failure, MaterializeResult, MetadataValue, asset

from assets.metadata import jpeg_markdown
from orchestration.partitions import videos_partitions
from resources import ObjectStoreResource, PostgresResource
from video_analysis import catalog
from video_analysis.object_store import ObjectStoreError
from video_analysis.probe import VideoProbeError, probe_video

STAGE = "raw_video"

@asset(
    partitions_def=videos_partitions,
    group_name="ingest",
    kinds={"video", "postgres"},
    owners=["team:video-platform"],
    code_version="probe-v1",
    description="One uploaded video (one object version): container, codec, geometry, decodable frames, "
    "sha256 and thumbnail, catalogued in the `videos` table.",
)
def raw_video(
    context: AssetExecutionContext, database: PostgresResource, object_store: ObjectStoreResource
) -> MaterializeResult:
    partition_key = context.partition_key
    with database.session() as conn:
        obj = catalog.object_for(conn, partition_key)

    try:
        probe = probe_video(object_store.store().fetch(obj))
    except (VideoProbeError, ObjectStoreError) as exc:
        message = f"{obj.uri}: {exc}"
        with database.session() as conn:
            catalog.mark_failed(conn, partition_key, str(exc))
            catalog.record_stage(conn, partition_key, STAGE, "failed", error=message, run_id=context.run.run_id)
        # Bad input will not get better on retry: fail once, clearly, and keep the reason in `videos`.
        raise Failure(description=message, allow_retries=False) from exc

    with database.session() as conn:
        catalog.save_probe(conn, partition_key, probe)
        catalog.record_stage(conn, partition_key, STAGE, "done", row_count=1, run_id=context.run.run_id)

    context.log.info("%s: %d frames at %.2f fps, %dx%d", obj.uri, probe.frame_count, probe.fps,
                     probe.width, probe.height)
    return MaterializeResult(
        metadata={
            "object": obj.uri,
            "container": probe.container,
            "codec": probe.codec,
            "duration_s": MetadataValue.float(probe.duration_s),
            "fps": MetadataValue.float(probe.fps),
            "width": probe.width,
            "height": probe.height,
            "frames": probe.frame_count,
            "header_frames": probe.header_frame_count,
            "size_bytes": probe.size_bytes,
            "sha256": probe.sha256,
            "dagster/row_count": 1,
            "thumbnail": jpeg_markdown(probe.thumbnail_jpeg),
        }
    )
