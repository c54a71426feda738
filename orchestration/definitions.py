"""The reelgraph code location."""

from dagster import Definitions

from assets import ALL_ASSETS
from configuration.process import prepare_process
from configuration.settings import state_home
from orchestration.alerts import failure_alert_sensor
from orchestration.cameras import camera_silence_sensor
from orchestration.executors import build_executor
from orchestration.jobs import (
    daily_report_job,
    daily_report_schedule,
    process_video_job,
    retention_job,
    retention_schedule,
)
from orchestration.sensors import video_upload_sensor
from resources import ModelRegistryResource, ObjectStoreResource, PostgresResource

prepare_process(state_home())


def build_resources() -> dict:
    """Resources are configured from the environment (see README: Configuration)."""
    return {
        "database": PostgresResource(),
        "object_store": ObjectStoreResource(),
        "models": ModelRegistryResource(),
    }


defs = Definitions(
    assets=ALL_ASSETS,
    jobs=[process_video_job, daily_report_job, retention_job],
    schedules=[daily_report_schedule, retention_schedule],
    sensors=[video_upload_sensor, failure_alert_sensor, camera_silence_sensor],
    resources=build_resources(),
    executor=build_executor(),
)
