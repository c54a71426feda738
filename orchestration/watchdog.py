"""`reelgraph dev` keeps ingestion alive: when the code server stops answering, reload it, or exit loudly.

Under `dagster dev` the code location is a proxy process that runs the user code in a child gRPC
server. When that child dies (killed, out of memory), the proxy keeps pointing at it, and every sensor
tick fails with "Unable to reach the user code server" until someone presses Reload. The watchdog reads
the upload sensor's ticks through the webserver: after consecutive failed ticks it asks the webserver to
reload the location (which starts a new child), and if ticks still fail after a few reloads it gives up
so that `reelgraph dev` exits non-zero and a supervisor restarts everything. Ingestion never stops
silently.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from orchestration.backfill import DagsterWebserver, WebserverError

log = logging.getLogger(__name__)

LOCATION = "reelgraph"
SENSOR = "video_upload_sensor"

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


class IngestionStopped(RuntimeError):
    """The code server cannot be brought back from here: restart `reelgraph dev`."""


@dataclass
class CodeServerWatchdog:
    webserver: DagsterWebserver
    failed_ticks_before_reload: int = 2
    max_reloads: int = 3
    reloads: int = 0
    last_reload_at: float = field(default=0.0)

    def _ticks(self) -> list[dict] | None:
        """The sensor's latest ticks since the last reload, newest first; None when the sensor is not reachable."""
        answer = self.webserver.query(_TICKS, {"location": LOCATION, "sensor": SENSOR})["sensorOrError"]
        if answer["__typename"] != "Sensor":
            log.warning("the upload sensor is not reachable through the webserver: %s",
                        answer.get("message", answer["__typename"]))
            return None
        state = answer["sensorState"]
        if state["status"] != "RUNNING":
            return []  # turned off on purpose (a bulk import): nothing to watch
        return [tick for tick in state["ticks"] if tick["timestamp"] > self.last_reload_at]

    def check(self) -> str:
        """One look: "ok", "waiting", or "reloaded"; raises IngestionStopped once reloads do not help."""
        ticks = self._ticks()
        if ticks and ticks[0]["status"] != "FAILURE":
            self.reloads = 0
            return "ok"
        failing = ticks is None or (
            len(ticks) >= self.failed_ticks_before_reload
            and all(tick["status"] == "FAILURE" for tick in ticks[: self.failed_ticks_before_reload])
        )
        if not failing:
            return "waiting"
        reason = "the sensor is unreachable" if ticks is None else (ticks[0].get("error") or {}).get("message", "")
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
    watchdog = CodeServerWatchdog(webserver)
    while process.poll() is None:
        time.sleep(interval_s)
        if process.poll() is not None:
            break
        try:
            watchdog.check()
        except WebserverError as exc:
            log.debug("webserver not answering yet: %s", exc)
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
