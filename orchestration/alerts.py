"""Run-failure alerting: every failed run reports its video, stages and errors."""


from dagster import DefaultSensorStatus, RunFailureSensorContext, run_failure_sensor

from configuration.settings import Settings, sensor_interval_seconds
from orchestration.failures import root_message
from video_analysis.runtime.alerts import FailureAlert, send

WEBHOOK_ENV = "REELGRAPH_ALERT_WEBHOOK"


@run_failure_sensor(default_status=DefaultSensorStatus.RUNNING,
                    minimum_interval_seconds=sensor_interval_seconds(),
                    description="Logs every failed run and posts it to $REELGRAPH_ALERT_WEBHOOK when set.")
def failure_alert_sensor(context: RunFailureSensorContext) -> None:
    run = context.dagster_run
    if run.tags.get("dagster/will_retry") == "true":  # one alert per failure that stands, not per attempt
        context.log.info("run %s failed and will be retried; no alert yet", run.run_id)
        return
    failures = context.get_step_failure_events()
    alert = FailureAlert(
        run_id=run.run_id,
        job=run.job_name,
        partition=run.tags.get("dagster/partition"),
        video=run.tags.get("reelgraph/object"),
        stages=[event.step_key for event in failures],
        errors=[root_message(event.event_specific_data.error) for event in failures
                if event.event_specific_data and event.event_specific_data.error],
    )
    send(alert, Settings.from_env().alert_webhook)
