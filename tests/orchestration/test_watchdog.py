"""The code-server watchdog's decisions, against recorded webserver answers (the live case is in
tests/test_dev_end_to_end.py, which kills the real code server)."""

import time

import pytest

from orchestration.watchdog import CodeServerWatchdog, IngestionStopped


class RecordedWebserver:
    """Answers the watchdog's two GraphQL documents from a list of tick statuses, newest first."""

    def __init__(self):
        self.ticks: list[str] = []
        self.reloads = 0

    def query(self, text, variables=None):
        if "reloadRepositoryLocation" in text:
            self.reloads += 1
            return {"reloadRepositoryLocation": {"__typename": "WorkspaceLocationEntry",
                                                 "locationOrLoadError": {"__typename": "CodeLocation"}}}
        now = time.time() + 1
        unreachable = {"message": "Unable to reach the user code server"}
        ticks = [{"status": status, "timestamp": now + len(self.ticks) - i,
                  "error": unreachable if status == "FAILURE" else None} for i, status in enumerate(self.ticks)]
        return {"sensorOrError": {"__typename": "Sensor", "sensorState": {"status": "RUNNING", "ticks": ticks}}}


def test_two_failed_ticks_reload_the_location_and_a_good_tick_resets_the_count():
    webserver = RecordedWebserver()
    watchdog = CodeServerWatchdog(webserver)
    webserver.ticks = ["FAILURE"]
    assert watchdog.check() == "waiting" and webserver.reloads == 0  # one failure may be anything
    webserver.ticks = ["FAILURE", "FAILURE"]
    assert watchdog.check() == "reloaded" and webserver.reloads == 1
    webserver.ticks = ["SKIPPED", "FAILURE"]
    assert watchdog.check() == "ok" and watchdog.reloads == 0


def test_reloads_that_do_not_help_stop_dev_loudly():
    webserver = RecordedWebserver()
    webserver.ticks = ["FAILURE", "FAILURE"]
    watchdog = CodeServerWatchdog(webserver, max_reloads=3)
    assert [watchdog.check() for _ in range(3)] == ["reloaded"] * 3
    with pytest.raises(IngestionStopped, match="still fails after 3 reloads.*restart `reelgraph dev`"):
        watchdog.check()
