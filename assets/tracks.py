"""tracks: objects followed across sampled frames with ByteTrack, one row per track."""

from collections.abc import Iterator

from dagster import AssetExecutionContext, MaterializeResult

from assets.detections import detections
from assets.video_stage import materialize_videos, video_stage_asset
from configuration.settings import Settings
from resources import ObjectStoreResource, PostgresResource
from video_analysis.stages import tracks as stage
from video_analysis.vision.evidence import policies_fingerprint


@video_stage_asset(
    deps=[detections],
    group="vision",
    kinds={"python", "postgres"},
    # The policy (classes, evidence) is part of the version: changing it marks every video's tracks stale.
    code_version="bytetrack-v5-" + policies_fingerprint(Settings.from_env().track_policy(),
                                                        Settings.from_env().zones_path),
    description="ByteTrack tracks over the sampled detections (table `tracks`): class, first/last time, "
    "frames seen, mean confidence, path summary and a best-frame thumbnail.",
    checks=("no_track_jumps_across_frame", "tracks_consistent_with_detections"),
)
def tracks(context: AssetExecutionContext, database: PostgresResource,
           object_store: ObjectStoreResource) -> Iterator[MaterializeResult]:
    db, store, settings = database.database(), object_store.store(), Settings.from_env()
    yield from materialize_videos(context, database, stage.STAGE, lambda key: stage.run(
        db, key, store, policy=settings.track_policy(), zones_file=settings.zones_path, run_id=context.run.run_id))
