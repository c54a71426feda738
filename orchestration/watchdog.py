"""`reelgraph dev` keeps ingestion alive: when the code server stops answering, reload it, or exit loudly.

Under `dagster dev` the code location is a proxy process that runs the user code in a child gRPC
server. When that child dies (killed, out of memory), the proxy keeps pointing at it, and every sensor
tick fails with "Unable to reach the user code server" until someone presses Reload. The watchdog reads
the upload sensor's ticks through the webserver: after consecutive failed ticks it asks the webserver to
reload the location (which starts a new child), and if ticks still fail after a few reloads it gives up
so that `reelgraph dev` exits non-zero and a supervisor restarts everything. Only failures that say the
code server cannot be reached count: a store or database outage fails ticks too, but a reload would not
help it, and the sensor's own retries do. A running sensor whose ticks stop coming (a stuck daemon) counts
as well. Ingestion never stops silently.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from orchestration.backfill import DagsterWebserver, WebserverError

log = logging.getLogger(__name__)

LOCATION = "reelgraph"
SENSOR = "video_upload_sensor"
# What Dagster says when the code server is gone (DagsterUserCodeUnreachableError, gRPC UNAVAILABLE).
UNREACHABLE = ("unable to reach the user code server", "dagsterusercodeunreachableerror", "statuscode.unavailable",
               "failed to connect to all addresses", "could not reach user code server")
STALE_AFTER_S = 180.0  # a running sensor ticks every 15 s: this long without a tick means nothing is ingested

_TICKS = """query ($location: String!, $sensor: String!) {
  sensorOrError(sensorSelector: {repositoryLocationName: $location, repositoryName: "__repository__",
                                 sensorName: $sensor}) {
    __typename
    ... on Sensor { sensorState { status ticks(limit: 5) { status timestamp error { message } } } }
    ... on PythonError { message }
  }
}"""

_RELOAD = """mutation ($location: String!) { reloadRepositoryLocation(repositoryLocationName: $location) {
  __typename
  ... on WorkspaceLocationEntry { locationOrLoadError { __typename ... on PythonError { message } } }
  ... on PythonError { message }
} }"""


class _SensorOff(Exception):
    pass


class IngestionStopped(RuntimeError):
    """The code server cannot be brought back from here: restart `reelgraph dev`."""


def unreachable(tick: dict) -> bool:
    message = ((tick.get("error") or {}).get("message") or "").lower()
    return tick["status"] == "FAILURE" and any(sign in message for sign in UNREACHABLE)


@dataclass
class CodeServerWatchdog:
    webserver: DagsterWebserver
    failed_ticks_before_reload: int = 2
    max_reloads: int = 3
    stale_after_s: float = STALE_AFTER_S
    reloads: int = 0
    last_reload_at: float = field(default=0.0)
    watching_since: float = field(default_factory=time.time)

    def _ticks(self) -> list[dict] | None:
        """The sensor's latest ticks since the last reload, newest first; None when the sensor is not reachable."""
        answer = self.webserver.query(_TICKS, {"location": LOCATION, "sensor": SENSOR})["sensorOrError"]
        if answer["__typename"] != "Sensor":
            log.warning("the upload sensor is not reachable through the webserver: %s",
                        answer.get("message", answer["__typename"]))
            return None
        state = answer["sensorState"]
        if state["status"] != "RUNNING":
            raise _SensorOff
        return [tick for tick in state["ticks"] if tick["timestamp"] > self.last_reload_at]

    def check(self) -> str:
        """One look: "ok", "waiting", or "reloaded"; raises IngestionStopped once reloads do not help."""
        try:
            ticks = self._ticks()
        except _SensorOff:  # turned off on purpose (a bulk import): nothing to watch until it is back on
            self.watching_since = time.time()
            return "ok"
        latest = max([self.last_reload_at, self.watching_since, *(t["timestamp"] for t in ticks or [])])
        stale = ticks is not None and time.time() - latest > self.stale_after_s
        if ticks and not unreachable(ticks[0]) and not stale:
            self.reloads = 0
            return "ok"
        failing = ticks is None or stale or (
            len(ticks) >= self.failed_ticks_before_reload
            and all(unreachable(tick) for tick in ticks[: self.failed_ticks_before_reload])
        )
        if not failing:
            return "waiting"
        if ticks is None:
            reason = "the sensor is unreachable"
        elif stale:
            reason = f"the running sensor has not ticked for {time.time() - latest:.0f} s"
        else:
            reason = (ticks[0].get("error") or {}).get("message", "")
        if self.reloads >= self.max_reloads:
            raise IngestionStopped(
                f"the upload sensor still fails after {self.reloads} reloads of code location {LOCATION!r} "
                f"({reason.strip()[:300]}); restart `reelgraph dev`")
        self.reloads += 1
        log.warning("the upload sensor failed %s; reloading code location %r (attempt %d of %d)",
                    reason.strip().splitlines()[0][:200] if reason.strip() else "", LOCATION, self.reloads,
                    self.max_reloads)
        self.last_reload_at = time.time()
        result = self.webserver.query(_RELOAD, {"location": LOCATION})["reloadRepositoryLocation"]
        loaded = (result.get("locationOrLoadError") or {}).get("__typename")
        if result["__typename"] != "WorkspaceLocationEntry" or loaded == "PythonError":
            log.warning("reloading %r failed: %s", LOCATION,
                        result.get("message") or (result.get("locationOrLoadError") or {}).get("message"))
        return "reloaded"


def watch(process, webserver: DagsterWebserver, interval_s: float = 15.0) -> int:
    """Watch `dagster dev` (a Popen) until it exits; returns its exit status, or 3 when ingestion stopped."""
    import subprocess

    watchdog = CodeServerWatchdog(webserver)
    while process.poll() is None:
        try:  # an exit (a stop signal passed on) ends the watch at once, not at the next check
            process.wait(interval_s)
            break
        except subprocess.TimeoutExpired:
            pass
        try:
            watchdog.check()
        except WebserverError as exc:  # not up yet, restarting, or resetting connections: look again next time
            log.debug("webserver not answering: %s", exc)
        except (KeyError, TypeError, AttributeError) as exc:  # an answer of another shape (another Dagster)
            log.warning("the webserver's answer was not understood (%s: %s); looking again next time",
                        type(exc).__name__, exc)
        except IngestionStopped as exc:
            log.error("INGESTION STOPPED: %s", exc)
            print(f"reelgraph dev: ingestion stopped: {exc}", flush=True)
            process.terminate()
            try:
                process.wait(60)
            except Exception:  # noqa: BLE001 - it must go, whatever the reason it did not
                process.kill()
            return 3
    return process.returncode
