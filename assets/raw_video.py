"""raw_video: fetch one uploaded object version, check that it really decodes, and catalogue it."""

from collections.abc import Iterator

from dagster import AssetExecutionContext, MaterializeResult

from assets.video_stage import materialize_videos, video_stage_asset
from configuration.settings import max_video_pixels
from resources import ObjectStoreResource, PostgresResource
from video_analysis.stages import raw_video as stage
from video_analysis.vision.probe import DEFAULT_MAX_PIXELS


@video_stage_asset(
    group="ingest",
    kinds={"video", "postgres"},
    code_version="probe-v2",
    description="One uploaded video (one object version): container, codec, geometry, decodable frames, "
    "sha256 and thumbnail, catalogued in the `videos` table.",
)
def raw_video(context: AssetExecutionContext, database: PostgresResource,
              object_store: ObjectStoreResource) -> Iterator[MaterializeResult]:
    db, store, max_pixels = database.database(), object_store.store(), max_video_pixels(DEFAULT_MAX_PIXELS)
    yield from materialize_videos(context, database, stage.STAGE,
                                  lambda key: stage.run(db, key, store, max_pixels=max_pixels,
                                                         run_id=context.run.run_id))
