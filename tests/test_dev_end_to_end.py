"""The README's promises, against a running `reelgraph dev` (webserver, daemon, run launcher, embedded
PostgreSQL): an upload is processed on its own, and footage imported in bulk is processed by backfills
that batch videos per run, including a re-run of only what a new model version made stale."""

import os
import shutil
import signal
import time
from collections import Counter
from pathlib import Path

import pytest

from testbed.system import descendants, running
from tests.helpers import SENSOR_INTERVAL_S, DevStack

pytestmark = pytest.mark.slow

STAGES = ["raw_video", "detections", "tracks", "attributes", "embeddings", "summaries"]


@pytest.fixture(scope="module")
def dev(tmp_path_factory):
    """One `reelgraph dev` stack for the module, shared on purpose (it takes minutes to start). Each test leaves
    it as it found it (running, upload sensor on), so they pass in any order."""
    stack = DevStack(tmp_path_factory.mktemp("dev"))
    try:
        stack.wait_until_up()
        yield stack
    finally:
        stack.stop()


def test_dropped_clip_is_materialized_by_the_sensor_on_its_own(dev, person_clip):
    shutil.copyfile(person_clip, dev.home / "inbox" / ".copying")
    os.replace(dev.home / "inbox" / ".copying", dev.home / "inbox" / "one-by-one-person-detection.mp4")

    row, stages, deadline = None, {}, time.monotonic() + 420
    while time.monotonic() < deadline:
        if dev.server.running_port():
            rows = dev.sql("SELECT status, frame_count, fps, width, height FROM videos WHERE object_key = %s",
                           ("one-by-one-person-detection.mp4",))
            row = rows[0] if rows else None
            stages = dev.stage_states("one-by-one-person-detection.mp4")
            if row and row[0] == "failed" or "failed" in stages.values() or set(stages.values()) == {"done"} and \
                    len(stages) == len(STAGES):
                break
        time.sleep(2)
    assert row == ("ready", 1394, 10.0, 768, 432), dev.log_tail()
    assert stages == {stage: "done" for stage in STAGES}, dev.log_tail()


# -- faults -------------------------------------------------------------------------------------------
def _run_in_detections(dev, clip, name: str):
    """Drop ``clip`` as ``name`` and wait for its run to be in detections: (instance, run, worker pid)."""
    from dagster import DagsterRunStatus, RunsFilter

    from orchestration.recovery import worker_pid

    shutil.copyfile(clip, dev.home / "inbox" / name)
    dev.wait_for(lambda: dev.stage_states(name).get("detections") == "running", 300, "detections started")
    instance = dev.instance()
    [run] = [r for r in instance.get_runs(RunsFilter(statuses=[DagsterRunStatus.STARTED]))
             if r.tags.get("dagster/partition", "").startswith(name)]
    return instance, run, dev.wait_for(lambda: worker_pid(instance, run), 60, "the run worker's pid recorded")


def _recovered(dev, instance, run, name: str, killed_at: float) -> float:
    """Wait for the video to complete through one successful retry run; check it; seconds since the kill."""
    from dagster import DagsterRunStatus, RunsFilter

    dev.wait_for(lambda: dev.completed(name), 240, f"{name} completed on its own",
                 video=name)

    def finished_retries():
        retries = instance.get_runs(RunsFilter(tags={"dagster/parent_run_id": run.run_id}))
        return retries if retries and all(r.is_finished for r in retries) else None

    # the retry records its last stage before its asset checks and run bookkeeping end
    retries = dev.wait_for(finished_retries, 120, "the retry run finished", video=name)
    recovered_s = time.monotonic() - killed_at
    assert instance.get_run_by_id(run.run_id).status == DagsterRunStatus.FAILURE
    assert [r.status for r in retries] == [DagsterRunStatus.SUCCESS]
    # no copy of a row left by the dead attempt (one box may carry two classes: the class is part of the row)
    counts = dev.sql("SELECT count(*), count(DISTINCT (frame_index, class_name, confidence, x1, y1, x2, y2)) "
                     "FROM detections d JOIN videos v USING (partition_key) WHERE v.object_key = %s", (name,))
    assert counts[0][0] == counts[0][1] > 0
    # the dead attempt never finished detections (the kill landed there), and holds no pool slot any more
    succeeded = {e.dagster_event.step_key for e in instance.all_logs(run.run_id)
                 if e.dagster_event and e.dagster_event.event_type_value == "STEP_SUCCESS"}
    assert not any("detections" in step for step in succeeded), succeeded
    gpu = instance.event_log_storage.get_concurrency_info("gpu")
    assert run.run_id not in {slot.run_id for slot in gpu.claimed_slots}
    return recovered_s


def _run_of(instance, name: str):
    from dagster import RunsFilter

    [record] = [r for r in instance.get_run_records(RunsFilter())
                if r.dagster_run.tags.get("dagster/partition", "").startswith(name)]
    return record


def test_a_run_killed_during_detections_completes_on_its_own_and_blocks_nothing(dev, bottle_clip, short_clip):
    instance, run, worker = _run_in_detections(dev, bottle_clip, "killed.mp4")
    for pid in [worker, *descendants(worker)]:  # the worker and its step process, as an OOM kill of the container
        os.kill(pid, signal.SIGKILL)
    killed_at = time.monotonic()
    # a new upload right after: it must not wait behind the dead run's GPU pool slot
    shutil.copyfile(short_clip, dev.home / "inbox" / "after-the-kill.mp4")
    recovered_s = _recovered(dev, instance, run, "killed.mp4", killed_at)
    dev.wait_for(lambda: dev.completed("after-the-kill.mp4"), 180,
                 "the next upload completed", video="after-the-kill.mp4")
    print(f"killed run recovered in {recovered_s:.0f} s")
    assert recovered_s < 180
    # the upload after the kill ran meanwhile: it started before the killed video's retry had finished
    from dagster import RunsFilter

    [retry] = instance.get_run_records(RunsFilter(tags={"dagster/parent_run_id": run.run_id}))
    after = _run_of(instance, "after-the-kill.mp4")
    assert after.start_time < retry.end_time, (after.start_time, retry.end_time)


def test_a_step_process_killed_alone_fails_its_step_and_the_retry_completes_the_video(dev, bottle_clip):
    instance, run, worker = _run_in_detections(dev, bottle_clip, "step-killed.mp4")
    steps = dev.wait_for(lambda: [pid for pid in descendants(worker)
                                  if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()], 60,
                         "the detections step process")
    for pid in steps:  # only the step: as an out-of-memory kill of the process holding the model
        os.kill(pid, signal.SIGKILL)
    recovered_s = _recovered(dev, instance, run, "step-killed.mp4", time.monotonic())
    print(f"step-killed video recovered in {recovered_s:.0f} s")
    assert recovered_s < 180


def test_an_empty_upload_fails_once_with_one_alert(dev):
    (dev.home / "inbox" / "empty.mp4").write_bytes(b"")
    dev.wait_for(lambda: dev.stage_states("empty.mp4").get("raw_video") == "failed", 180, "the empty file failed")
    instance = dev.instance()

    def failed_run():
        runs = [r for r in instance.get_runs() if r.tags.get("dagster/partition", "").startswith("empty.mp4")]
        return runs if runs and runs[0].is_finished and "dagster/will_retry" in runs[0].tags else None

    # Dagster decides at the failure whether the run will be retried, and says so on the run
    [run] = dev.wait_for(failed_run, 60, "the failed run's retry decision")
    assert run.tags["dagster/will_retry"] == "false"

    def empty_alerts():
        return [a for a in dev.alerts if (a.get("partition") or "").startswith("empty.mp4")]

    # wait for the first alert, then for three more ticks of the alert sensor (counted in Dagster's records of
    # them, not guessed from a sleep), in which a second alert or a retried run would show
    dev.wait_for(empty_alerts, 120, "the failure alert")
    alerted_at = time.time()
    dev.wait_for(lambda: dev.sensor_ticks_since("failure_alert_sensor", alerted_at) >= 3, 30 * SENSOR_INTERVAL_S,
                 "three more ticks of the alert sensor")
    runs = [r for r in instance.get_runs() if r.tags.get("dagster/partition", "").startswith("empty.mp4")]
    assert len(runs) == 1, [r.run_id for r in runs]
    alerts = empty_alerts()
    assert len(alerts) == 1 and "empty (0 bytes)" in alerts[0]["text"]


def test_a_killed_code_server_comes_back_and_ingestion_goes_on(dev, short_clip):
    servers = [pid for pid in descendants(dev.process.pid)
               if b"api\x00grpc" in Path(f"/proc/{pid}/cmdline").read_bytes()]
    assert servers, "no code server process found under reelgraph dev"
    for pid in servers:
        os.kill(pid, signal.SIGKILL)
    killed_at = time.monotonic()
    shutil.copyfile(short_clip, dev.home / "inbox" / "after-the-code-server.mp4")
    dev.wait_for(lambda: dev.completed("after-the-code-server.mp4"), 300,
                 "an upload after the code server was killed completed")
    print(f"ingestion went on {time.monotonic() - killed_at:.0f} s after the code server was killed")
    assert "reloading code location 'reelgraph'" in dev.log_path.read_text()
    assert dev.process.poll() is None  # brought back without a restart


# -- backfills ---------------------------------------------------------------------------------------
_SENSOR = """{ sensorOrError(sensorSelector: {repositoryLocationName: "reelgraph", repositoryName: "__repository__",
  sensorName: "video_upload_sensor"}) { ... on Sensor { id } } }"""
_STOP_SENSOR = "mutation ($id: String) { stopSensor(id: $id) { __typename } }"
_START_SENSOR = """mutation { startSensor(sensorSelector: {repositoryLocationName: "reelgraph",
  repositoryName: "__repository__", sensorName: "video_upload_sensor"}) { __typename } }"""
_RELOAD = """mutation { reloadRepositoryLocation(repositoryLocationName: "reelgraph") {
  __typename ... on WorkspaceLocationEntry { locationOrLoadError { __typename } } } }"""
_BACKFILL = """query ($id: String!) { partitionBackfillOrError(backfillId: $id) {
  ... on PartitionBackfill { status } } }"""
_RUNS = """query ($id: String!) { runsOrError(filter: {tags: [{key: "dagster/backfill", value: $id}]}) {
  ... on Runs { results { runId status assetSelection { path } } } } }"""
_MATERIALIZATIONS = """query ($key: AssetKeyInput!) { assetOrError(assetKey: $key) {
  ... on Asset { assetMaterializations(limit: 1000) { partition runId } } } }"""


def _launched_id(output: str) -> str:
    [line] = [line for line in output.splitlines() if line.startswith("backfill ")]
    return line.split()[1]


def _wait_for_backfill(dev, backfill_id, timeout_s=900) -> list[dict]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = dev.webserver.query(_BACKFILL, {"id": backfill_id})["partitionBackfillOrError"]["status"]
        if status not in ("REQUESTED", "CANCELING"):
            break
        time.sleep(3)
    runs = dev.webserver.query(_RUNS, {"id": backfill_id})["runsOrError"]["results"]
    assert status.startswith("COMPLETED") and all(r["status"] == "SUCCESS" for r in runs), (
        status, [(r["runId"], r["status"]) for r in runs], dev.log_tail())
    return runs


def _runs_per_stage(runs) -> Counter:
    return Counter(key["path"][-1] for run in runs for key in run["assetSelection"])


def _materialized_in(dev, runs, stage) -> Counter:
    run_ids = {run["runId"] for run in runs}
    events = dev.webserver.query(_MATERIALIZATIONS, {"key": {"path": [stage]}})["assetOrError"]
    return Counter(e["partition"] for e in events["assetMaterializations"] if e["runId"] in run_ids)


def test_bulk_import_then_backfills_batch_videos_and_redo_only_stale_ones(dev, short_clip):
    sensor_id = dev.webserver.query(_SENSOR)["sensorOrError"]["id"]
    dev.webserver.query(_STOP_SENSOR, {"id": sensor_id})  # a bulk import: footage waits for a backfill
    # a tick already under way when the sensor stopped would still see the import: let it end first (on a loaded
    # machine a tick takes seconds)
    dev.wait_for(lambda: not dev.sensor_tick_in_progress("video_upload_sensor"), 120, "the sensor's last tick")
    manifest = dev.manifest.read_text()
    try:
        _bulk_import_and_backfills(dev, short_clip)
    finally:  # the stack as the other tests expect it: uploads processed, today's detector
        dev.manifest.write_text(manifest)
        dev.webserver.query(_RELOAD)
        assert dev.webserver.query(_START_SENSOR)["startSensor"]["__typename"] == "Sensor"


def _bulk_import_and_backfills(dev, short_clip):
    for camera in ("a", "b"):
        folder = dev.home / "inbox" / "cameras" / camera
        folder.mkdir(parents=True)
        for segment in range(3):
            segment_file = folder / f"2026-01-15T08-{segment * 10:02d}-00.mp4"
            shutil.copyfile(short_clip, segment_file)
            os.utime(segment_file, (time.time() - 3600, time.time() - 3600))  # footage written long ago
    assert "registered 6 new videos" in dev.cli("register", "--prefix", "cameras/")
    assert "registered 0 new videos" in dev.cli("register", "--prefix", "cameras/")

    # 6 videos, 5 per run: 2 runs, each carrying its batch through every stage, each partition once
    backfill_id = _launched_id(dev.cli("backfill", "--prefix", "cameras/"))
    runs = _wait_for_backfill(dev, backfill_id)
    assert _runs_per_stage(runs) == {stage: 2 for stage in STAGES}
    keys = {key for (key,) in dev.sql("SELECT partition_key FROM videos WHERE camera IS NOT NULL")}
    for stage in STAGES:
        assert _materialized_in(dev, runs, stage) == {key: 1 for key in keys}, stage
    assert "6 catalogued videos match; 6 already fresh: nothing to backfill" in dev.cli(
        "backfill", "--prefix", "cameras/", "--stale")

    # a new detector version: every detections partition (and what follows it) is stale
    dev.manifest.write_text(dev.manifest.read_text().replace(
        "version: picodet-s-416-2021.10", "version: picodet-s-416-2021.10-r2"))
    dev.webserver.query(_RELOAD)
    camera_a = {key for (key,) in dev.sql("SELECT partition_key FROM videos WHERE camera = 'a'")}
    output = dev.cli("backfill", "--camera", "a", "--stale")
    assert "3 catalogued videos match; 0 already fresh: 3 videos through detections -> tracks" in output
    runs = _wait_for_backfill(dev, _launched_id(output))
    assert _runs_per_stage(runs) == {stage: 1 for stage in STAGES[1:]}
    assert _materialized_in(dev, runs, "detections") == {key: 1 for key in camera_a}
    versions = dict(dev.sql("SELECT v.camera, string_agg(DISTINCT d.model_version, ',') FROM detections d "
                            "JOIN videos v USING (partition_key) WHERE v.camera IS NOT NULL GROUP BY v.camera"))
    assert versions == {"a": "picodet-s-416-2021.10-r2", "b": "picodet-s-416-2021.10"}
    # what is left stale is exactly camera b
    assert "6 catalogued videos match; 3 already fresh: 3 videos through detections" in dev.cli(
        "backfill", "--prefix", "cameras/", "--stale", "--dry-run")


# -- stopping ----------------------------------------------------------------------------------------
def test_sigterm_to_reelgraph_dev_alone_mid_run_stops_everything_and_the_next_start_retries_the_run(dev, bottle_clip):
    from dagster import DagsterRunStatus

    instance, run, worker = _run_in_detections(dev, bottle_clip, "stopped-mid-run.mp4")
    started = [dev.process.pid, *descendants(dev.process.pid)]  # webserver, daemon, code servers, the run
    assert worker in started and len(started) >= 5, started
    os.kill(dev.process.pid, signal.SIGTERM)  # to the process alone, as `docker stop` and systemd send it
    stopped_at = time.monotonic()
    dev.wait_for(lambda: not [pid for pid in started if running(pid)], 30, "every process of reelgraph dev gone")
    print(f"reelgraph dev and its {len(started) - 1} processes stopped in {time.monotonic() - stopped_at:.1f} s")
    assert dev.process.wait(5) == 0
    # the run in flight is failed at the stop (by its worker on SIGTERM, else by the recovery after it), not
    # left STARTED, and so is the stage it was in
    assert dev.instance().get_run_by_id(run.run_id).status == DagsterRunStatus.FAILURE
    # (detections, or the step after it: the daemon is stopped first, so the run may have gone a step further)
    states = dev.stage_states("stopped-mid-run.mp4")
    assert "running" not in states.values() and not dev.completed("stopped-mid-run.mp4"), states

    dev.start()  # the next start retries it, and the video completes once
    dev.wait_until_up()
    _recovered(dev, dev.instance(), run, "stopped-mid-run.mp4", time.monotonic())
