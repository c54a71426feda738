"""The upload sensor: every new object version becomes a partition and exactly one run."""


from datetime import datetime, timezone

from dagster import (
    DefaultSensorStatus,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from assets.partitions import VIDEOS_PARTITIONS_NAME, videos_partitions
from configuration.settings import Settings, sensor_interval_seconds
from orchestration.jobs import process_video_job
from resources import ObjectStoreResource, PostgresResource
from video_analysis.runtime.discovery import ScanCursor, scan
from video_analysis.store import catalog


@sensor(
    job=process_video_job,
    minimum_interval_seconds=sensor_interval_seconds(),
    default_status=DefaultSensorStatus.RUNNING,
    description="Registers each new object version in the raw-footage store (local inbox or S3) as a "
    "`videos` partition and requests one run for it.",
)
def video_upload_sensor(
    context: SensorEvaluationContext, database: PostgresResource, object_store: ObjectStoreResource
):
    settings = Settings.from_env()
    known = set(context.instance.get_dynamic_partitions(VIDEOS_PARTITIONS_NAME))
    found = scan(
        object_store.store(quick=True),
        ScanCursor.from_json(context.cursor),
        known,
        now=datetime.now(timezone.utc),
        settle_seconds=settings.settle_seconds,
        limit=settings.objects_per_tick,
    )
    cursor = found.cursor.to_json()
    if found.settling:
        context.log.info("still being written, looked at again next tick: %s", found.settling[:10])
    for name in found.unreadable:
        context.log.warning("skipped %s: its name is not valid UTF-8; rename it to have it processed",
                            ascii(name))
    if not found.new:
        context.update_cursor(cursor)
        return SkipReason(f"no new object versions among {found.listed} listed")

    # Register before requesting runs: raw_video maps its partition key back to the object here.
    with database.session() as conn:
        for obj in found.new:
            catalog.register(conn, obj)
    keys = [obj.partition_key for obj in found.new]
    context.log.info("registering %d new object versions", len(keys))
    return SensorResult(
        run_requests=[
            # The run key is the object version: Dagster never launches a second run for it.
            RunRequest(partition_key=obj.partition_key, run_key=obj.partition_key,
                       tags={"reelgraph/object": obj.uri})
            for obj in found.new
        ],
        dynamic_partitions_requests=[videos_partitions.build_add_request(keys)],
        cursor=cursor,
    )
