"""Runs whose worker is gone (kill -9, OOM, a reboot): found, failed, and their pool slots freed.

Dagster's default run launcher has no worker health check, so a run whose worker was killed stays
STARTED for good and keeps its `gpu` pool slot: every later GPU step waits behind it. Here a run's
worker is its recorded process: the pid the run worker reports when it starts (daemon-launched runs),
or the pid and host `reelgraph process` tags its in-process runs with. A run whose local worker process
no longer exists is dead. `LocalRunLauncher` gives the daemon's run monitoring that check, so dead
runs are failed within a monitoring interval and run retries re-run them; `reelgraph dev` and
`reelgraph process` also clean up when they start, before anything waits on a slot.
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass

from dagster import DagsterEventType, DagsterInstance, DagsterRun, DagsterRunStatus, RunsFilter
from dagster._core.launcher import CheckRunHealthResult, DefaultRunLauncher, WorkerStatus

log = logging.getLogger(__name__)

PID_TAG = "reelgraph/pid"
HOST_TAG = "reelgraph/host"


def worker_tags() -> dict[str, str]:
    """Tags naming this process as the worker of an in-process run."""
    return {PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname()}


def worker_pid(instance: DagsterInstance, run: DagsterRun) -> int | None:
    """The pid of the run's worker on this host, or None when it is not known (or not local)."""
    if PID_TAG in run.tags:
        return int(run.tags[PID_TAG]) if run.tags.get(HOST_TAG) == socket.gethostname() else None
    records = instance.get_records_for_run(run.run_id, of_type=DagsterEventType.ENGINE_EVENT, limit=20).records
    for record in records:
        event = record.event_log_entry.dagster_event
        metadata = event.engine_event_data.metadata if event and event.engine_event_data else {}
        if "pid" in metadata and "Started process for run" in (record.event_log_entry.message or ""):
            return int(metadata["pid"].value)
    return None


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a reused pid belongs to some other program
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            command = handle.read()
    except OSError:
        return True
    return b"python" in command or b"dagster" in command or b"reelgraph" in command


@dataclass(frozen=True)
class DeadRun:
    run_id: str
    job: str
    partition: str | None
    pid: int


def find_dead_runs(instance: DagsterInstance) -> list[DeadRun]:
    """Runs this instance believes in progress whose local worker process no longer exists."""
    runs = instance.get_runs(RunsFilter(statuses=[DagsterRunStatus.STARTED, DagsterRunStatus.STARTING]))
    dead = []
    for run in runs:
        pid = worker_pid(instance, run)
        if pid is not None and not process_alive(pid):
            dead.append(DeadRun(run.run_id, run.job_name, run.tags.get("dagster/partition"), pid))
    return dead


def fail_dead_run(instance: DagsterInstance, dead: DeadRun) -> None:
    """Mark the run failed (run retries may re-run it) and give back its pool slots now."""
    run = instance.get_run_by_id(dead.run_id)
    if run is None or run.status not in (DagsterRunStatus.STARTED, DagsterRunStatus.STARTING):
        return
    instance.report_run_failed(run, f"The run's worker (pid {dead.pid}) is gone: killed, out of memory, or the "
                                    "machine restarted. Marked failed so that its pool slots are freed.")
    instance.event_log_storage.free_concurrency_slots_for_run(dead.run_id)


def recover(instance: DagsterInstance, database=None) -> list[DeadRun]:
    """Fail every dead run of this instance and free its slots; returns what was cleaned up.

    With ``database`` (a PostgresResource), stages left `running` by a run that is no longer in progress
    are marked failed: a dead worker, or a run that could not record its failure (the database was down).
    """
    dead = find_dead_runs(instance)
    for run in dead:
        log.warning("run %s (%s, %s) lost its worker (pid %d): marking it failed and freeing its pool slots",
                    run.run_id, run.job, run.partition or "no partition", run.pid)
        fail_dead_run(instance, run)
    if database is not None:
        _fail_orphaned_stages(instance, database, {d.run_id for d in dead})
    return dead


def _fail_orphaned_stages(instance: DagsterInstance, database, dead_run_ids: set[str]) -> None:
    from video_analysis.store import catalog

    with database.session() as conn:
        for run_id in catalog.running_stage_run_ids(conn):
            run = instance.get_run_by_id(run_id)
            if run_id in dead_run_ids:
                reason = "the run's worker was killed (out of memory, kill -9 or a restart); re-run this stage"
            elif run is not None and run.is_finished:  # a run of another instance is not judged here
                reason = (f"run {run_id[:8]} ended ({run.status.value}) before it could record this stage's "
                          "result; re-run it")
            else:
                continue
            count = catalog.fail_running_stages(conn, [run_id], reason)
            log.warning("%d stage(s) left running by run %s marked failed: %s", count, run_id, reason)


class LocalRunLauncher(DefaultRunLauncher):
    """Dagster's default launcher (a subprocess per run) plus a worker health check for run monitoring."""

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: DagsterRun) -> CheckRunHealthResult:
        pid = worker_pid(self._instance, run)
        if pid is None:  # not started yet, or not on this host: nothing to judge
            return CheckRunHealthResult(WorkerStatus.RUNNING, "worker not known yet")
        if process_alive(pid):
            return CheckRunHealthResult(WorkerStatus.RUNNING, f"worker pid {pid} is alive")
        return CheckRunHealthResult(WorkerStatus.FAILED, f"worker pid {pid} is gone (killed, out of memory, or a "
                                                         "restart)")
