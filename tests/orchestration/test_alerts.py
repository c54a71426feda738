import shutil

import pytest
from dagster import DagsterEventType, build_run_status_sensor_context, materialize

from assets import raw_video
from orchestration.alerts import failure_alert_sensor
from orchestration.definitions import build_resources
from tests.helpers import SensorHarness
from tests.http_servers import webhook_sink


@pytest.fixture
def webhook(monkeypatch):
    """A real HTTP endpoint that records what it receives."""
    received, server = webhook_sink()
    monkeypatch.setenv("REELGRAPH_ALERT_WEBHOOK", f"http://127.0.0.1:{server.port}/hooks/reelgraph")
    yield received
    server.close()


def test_a_failed_run_reaches_the_alert_sink_with_video_stage_and_error(dagster_instance, inbox, bad_files, db,
                                                                        webhook, caplog):
    path, _ = bad_files["notes.mp4"]
    shutil.copyfile(path, inbox / "notes.mp4")
    [partition] = SensorHarness(dagster_instance).tick()
    result = materialize([raw_video], partition_key=partition, instance=dagster_instance, raise_on_error=False,
                         resources=build_resources(), tags={"reelgraph/object": "notes.mp4"})
    assert not result.success
    run = dagster_instance.get_run_by_id(result.run_id)
    failure = next(e for e in dagster_instance.all_logs(run.run_id) if e.dagster_event
                   and e.dagster_event.event_type == DagsterEventType.RUN_FAILURE).dagster_event

    context = build_run_status_sensor_context(sensor_name="failure_alert_sensor", dagster_instance=dagster_instance,
                                              dagster_run=run, dagster_event=failure).for_run_failure()
    failure_alert_sensor(context)

    [alert] = webhook
    assert (alert["partition"], alert["video"], alert["stages"]) == (partition, "notes.mp4", ["raw_video"])
    assert "not a video file" in alert["errors"][0] and "not a video file" in alert["text"]
    assert "not a video file" in caplog.text

    # the same failure of a run Dagster is about to retry (a crashed worker, an outage): logged, not posted
    dagster_instance.add_run_tags(run.run_id, {"dagster/will_retry": "true"})
    retried = dagster_instance.get_run_by_id(run.run_id)
    context = build_run_status_sensor_context(sensor_name="failure_alert_sensor", dagster_instance=dagster_instance,
                                              dagster_run=retried, dagster_event=failure).for_run_failure()
    failure_alert_sensor(context)
    assert len(webhook) == 1


def test_an_unreachable_sink_does_not_raise(monkeypatch):
    from video_analysis.runtime.alerts import FailureAlert, send

    alert = FailureAlert("0123456789", "process_video", "a.mp4@x", "a.mp4", ["detections"], ["boom"])
    assert send(alert, "http://127.0.0.1:9/unreachable", timeout_s=2) is False
