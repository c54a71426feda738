"""tracks: objects followed across sampled frames with ByteTrack, one row per track."""

from collections import Counter
from collections.abc import Iterator

from dagster import AssetCheckSpec, AssetExecutionContext, Failure, MaterializeResult, MetadataValue, asset

from assets.detections import detections
from assets.stage import VideoOutcome, materialize_videos, video_backfill_policy
from orchestration.partitions import videos_partitions
from resources import ObjectStoreResource, PostgresResource
from video_analysis import catalog, quality
from video_analysis.results import load_detections, replace_tracks
from video_analysis.vision import sampled_frames, track_thumbnails, track_video

STAGE = "tracks"


@asset(
    partitions_def=videos_partitions,
    backfill_policy=video_backfill_policy(),
    deps=[detections],
    group_name="vision",
    kinds={"python", "postgres"},
    owners=["team:video-platform"],
    code_version="bytetrack-v1",
    description="ByteTrack tracks over the sampled detections (table `tracks`): class, first/last time, "
    "frames seen, mean confidence, path summary and a best-frame thumbnail.",
    check_specs=[AssetCheckSpec(name, asset="tracks")
                 for name in ("no_track_jumps_across_frame", "tracks_consistent_with_detections")],
)
def tracks(context: AssetExecutionContext, database: PostgresResource,
           object_store: ObjectStoreResource) -> Iterator[MaterializeResult]:
    store = object_store.store()

    def track_one(partition_key: str) -> VideoOutcome:
        with database.session() as conn:
            video = catalog.ready_video(conn, partition_key)
            found, class_names, model = load_detections(conn, partition_key)
            detection_pass = catalog.stage_details(conn, partition_key, "detections")
        if detection_pass is None:
            raise Failure(f"{partition_key}: detections have not been materialized", allow_retries=False)
        step = detection_pass["step"]
        summaries = track_video(found, sampled_frames(video.frame_count, step), video.fps / step)
        thumbnails = track_thumbnails(store.fetch(video.obj), summaries) if summaries else {}
        with database.session() as conn:
            rows = replace_tracks(conn, partition_key, summaries, class_names, thumbnails, model) if model else 0
            catalog.record_stage(conn, partition_key, STAGE, "done", row_count=rows,
                                 model_version=model.version if model else None, run_id=context.run.run_id)
            findings = quality.track_findings(conn, partition_key, video.width, video.height)

        per_class = Counter(class_names[t.class_id] for t in summaries)
        examples = [{"track": t.track_id, "class": class_names[t.class_id], "from_s": round(t.first_t, 1),
                     "to_s": round(t.last_t, 1), "frames": t.frames_seen} for t in summaries[:5]]
        return VideoOutcome({
            "dagster/row_count": rows,
            "per_class": MetadataValue.json(dict(per_class.most_common())),
            "examples": MetadataValue.json(examples),
        }, findings)

    yield from materialize_videos(context, database, STAGE, track_one)
