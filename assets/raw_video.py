"""raw_video: fetch one uploaded object version, check that it really decodes, and catalogue it."""

from collections.abc import Iterator

from dagster import AssetExecutionContext, Failure, MaterializeResult, MetadataValue, asset

from assets.metadata import jpeg_markdown
from assets.stage import VideoOutcome, materialize_videos, video_backfill_policy
from orchestration.partitions import videos_partitions
from resources import ObjectStoreResource, PostgresResource
from video_analysis import catalog
from video_analysis.object_store import ObjectStoreError
from video_analysis.probe import VideoProbeError, probe_video

STAGE = "raw_video"


@asset(
    partitions_def=videos_partitions,
    backfill_policy=video_backfill_policy(),
    group_name="ingest",
    kinds={"video", "postgres"},
    owners=["team:video-platform"],
    code_version="probe-v1",
    description="One uploaded video (one object version): container, codec, geometry, decodable frames, "
    "sha256 and thumbnail, catalogued in the `videos` table.",
)
def raw_video(
    context: AssetExecutionContext, database: PostgresResource, object_store: ObjectStoreResource
) -> Iterator[MaterializeResult]:
    store = object_store.store()

    def probe_one(partition_key: str) -> VideoOutcome:
        with database.session() as conn:
            obj = catalog.object_for(conn, partition_key)
        try:
            probe = probe_video(store.fetch(obj))
        except (VideoProbeError, ObjectStoreError) as exc:
            # Keep the reason on the video itself: `reelgraph backfill` leaves unreadable files out.
            with database.session() as conn:
                catalog.mark_failed(conn, partition_key, str(exc))
            raise Failure(description=f"{obj.uri}: {exc}", allow_retries=False) from exc
        with database.session() as conn:
            catalog.save_probe(conn, partition_key, probe)
            catalog.record_stage(conn, partition_key, STAGE, "done", row_count=1, run_id=context.run.run_id)
        context.log.info("%s: %d frames at %.2f fps, %dx%d", obj.uri, probe.frame_count, probe.fps,
                         probe.width, probe.height)
        return VideoOutcome(metadata={
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
        })

    yield from materialize_videos(context, database, STAGE, probe_one)
