"""raw_video: fetch one uploaded object version, check that it really decodes, and catalogue it."""

from collections.abc import Iterator

from dagster import AssetExecutionContext, MaterializeResult

from assets.video_stage import materialize_videos, video_stage_asset
from resources import ObjectStoreResource, PostgresResource
from video_analysis.stages import ingest


@video_stage_asset(
    group="ingest",
    kinds={"video", "postgres"},
    code_version="probe-v2",
    description="One uploaded video (one object version): container, codec, geometry, decodable frames, "
    "sha256 and thumbnail, catalogued in the `videos` table.",
)
def raw_video(context: AssetExecutionContext, database: PostgresResource,
              object_store: ObjectStoreResource) -> Iterator[MaterializeResult]:
    db, store = database.database(), object_store.store()
    yield from materialize_videos(context, database, ingest.STAGE,
                                  lambda key: ingest.run(db, key, store, run_id=context.run.run_id))
