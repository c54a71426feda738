"""Jobs: one run carries a new video through every stage downstream of raw_video."""

from dagster import (
    AssetSelection,
    DefaultScheduleStatus,
    ScheduleDefinition,
    build_schedule_from_partitioned_job,
    define_asset_job,
)

process_video_job = define_asset_job(
    "process_video",
    selection=AssetSelection.assets("raw_video").downstream() - AssetSelection.assets("camera_daily_report")
    - AssetSelection.assets("retention"),
    description="Every stage for one video partition, in dependency order.",
)

daily_report_job = define_asset_job(
    "camera_daily_report_job",
    selection=AssetSelection.assets("camera_daily_report"),
    description="Per-camera report of one UTC day.",
)

# Shortly after midnight UTC, the report of the day that just ended.
daily_report_schedule = build_schedule_from_partitioned_job(daily_report_job, hour_of_day=1)

retention_job = define_asset_job(
    "retention_job",
    selection=AssetSelection.assets("retention"),
    description="Retention: footage moved cold or removed, and facts erased, as the zones file's policy says.",
)

# Every night, after the daily report; on by default (without a `retention:` section it removes nothing).
retention_schedule = ScheduleDefinition(job=retention_job, cron_schedule="30 2 * * *",
                                        default_status=DefaultScheduleStatus.RUNNING)
