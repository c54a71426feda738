"""The code-server watchdog's decisions, against recorded webserver answers (the live case is in
tests/test_dev_end_to_end.py, which kills the real code server)."""

import time

import pytest

from orchestration.watchdog import CodeServerWatchdog, IngestionStopped
from tests.http_servers import graphql_server

UNREACHABLE = "dagster._core.errors.DagsterUserCodeUnreachableError: Unable to reach the user code server"
STORE_DOWN = "ObjectStoreUnavailableError: cannot list s3://raw: the store is unavailable (SlowDown)"


class RecordedWebserver:
    """Answers the watchdog's two GraphQL documents from recorded ticks: (status, error message, age in s)."""

    def __init__(self):
        self.ticks: list[tuple[str, str | None, float]] = []
        self.status = "RUNNING"
        self.reloads = 0

    def query(self, text, variables=None):
        if "reloadRepositoryLocation" in text:
            self.reloads += 1
            return {"reloadRepositoryLocation": {"__typename": "WorkspaceLocationEntry",
                                                 "locationOrLoadError": {"__typename": "CodeLocation"}}}
        now = time.time()
        ticks = [{"status": status, "timestamp": now - age, "error": {"message": error} if error else None}
                 for status, error, age in self.ticks]
        return {"sensorOrError": {"__typename": "Sensor",
                                  "sensorState": {"status": self.status, "ticks": ticks}}}

    def fail(self, error=UNREACHABLE, count=2):
        """`count` new failed ticks, newest first, after any reload so far."""
        self.ticks = [("FAILURE", error, -1 - i) for i in range(count)]


def test_two_unreachable_ticks_reload_the_location_and_a_good_tick_resets_the_count():
    webserver = RecordedWebserver()
    watchdog = CodeServerWatchdog(webserver)
    webserver.fail(count=1)
    assert watchdog.check() == "waiting" and webserver.reloads == 0  # one failure may be anything
    webserver.fail(count=2)
    assert watchdog.check() == "reloaded" and webserver.reloads == 1
    webserver.ticks = [("SKIPPED", None, -1), ("FAILURE", UNREACHABLE, -0.5)]
    assert watchdog.check() == "ok" and watchdog.reloads == 0


def test_ticks_from_before_a_reload_do_not_count_again():
    webserver = RecordedWebserver()
    watchdog = CodeServerWatchdog(webserver)
    webserver.fail(count=2)
    assert watchdog.check() == "reloaded"
    webserver.ticks = [("FAILURE", UNREACHABLE, 5), ("FAILURE", UNREACHABLE, 20)]  # older than the reload
    assert watchdog.check() == "waiting" and webserver.reloads == 1


def test_a_store_outage_fails_ticks_but_never_reloads_or_stops_dev():
    webserver = RecordedWebserver()
    webserver.fail(error=STORE_DOWN, count=5)
    watchdog = CodeServerWatchdog(webserver)
    assert [watchdog.check() for _ in range(6)] == ["ok"] * 6 and webserver.reloads == 0


def test_a_running_sensor_that_stops_ticking_counts_as_stuck_but_a_stopped_one_does_not():
    webserver = RecordedWebserver()
    watchdog = CodeServerWatchdog(webserver, stale_after_s=60)
    webserver.ticks = [("SKIPPED", None, 200)]
    watchdog.watching_since -= 300
    assert watchdog.check() == "reloaded"
    webserver.status = "STOPPED"
    quiet = CodeServerWatchdog(webserver, stale_after_s=60)
    quiet.watching_since -= 300
    assert quiet.check() == "ok"


def test_reloads_that_do_not_help_stop_dev_loudly():
    webserver = RecordedWebserver()
    watchdog = CodeServerWatchdog(webserver, max_reloads=3)
    outcomes = []
    for _ in range(3):
        webserver.fail()
        outcomes.append(watchdog.check())
    assert outcomes == ["reloaded"] * 3
    webserver.fail()
    with pytest.raises(IngestionStopped, match="still fails after 3 reloads.*restart `reelgraph dev`"):
        watchdog.check()


ANSWERS = {
    "reset": None,  # the connection reset (RST), as a crashing webserver does
    "truncated": b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{\"data\": {",
    "odd": b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 22\r\n\r\n<html>starting</html>\n",
}


def _misbehaving_server(answer: str):
    """A real TCP server that accepts each connection, counts it, and answers it badly: a reset, an answer cut
    off mid-body, or a page that is not GraphQL's JSON."""
    import socket
    import struct
    import threading

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    connections = []

    def serve():
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            connections.append(conn)
            conn.recv(1024)
            if ANSWERS[answer] is None:
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            else:
                conn.sendall(ANSWERS[answer])
            conn.close()

    threading.Thread(target=serve, daemon=True).start()
    return server, connections


@pytest.mark.parametrize("answer", sorted(ANSWERS))
def test_a_webserver_that_answers_badly_is_a_failed_check_each_time_and_the_watch_goes_on(answer):
    import subprocess
    import sys

    from orchestration.backfill import DagsterWebserver, WebserverError
    from orchestration.watchdog import watch

    server, connections = _misbehaving_server(answer)
    webserver = DagsterWebserver(f"http://127.0.0.1:{server.getsockname()[1]}", timeout_s=5)
    try:
        with pytest.raises(WebserverError, match="Dagster webserver"):
            webserver.query("{ version }")
        asked = len(connections)
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(2); raise SystemExit(7)"])
        # several checks against the server while the child runs; the watch ends with the child's status
        assert watch(child, webserver, interval_s=0.3) == 7
        assert len(connections) - asked >= 3, len(connections)  # it kept asking, each time a failed check
    finally:
        server.close()


class FailingTicksWebserver:
    """A real HTTP server answering the watchdog's GraphQL: every sensor tick fails because the code server cannot
    be reached (fresh ticks at each look, so reloads never help), and every reload is accepted and counted."""

    def __init__(self):
        self.reloads = 0
        self.server = graphql_server(self.answer)
        self.url = self.server.url

    def answer(self, request: dict) -> dict:
        if "reloadRepositoryLocation" in request["query"]:
            self.reloads += 1
            return {"reloadRepositoryLocation": {"__typename": "WorkspaceLocationEntry",
                                                 "locationOrLoadError": {"__typename": "CodeLocation"}}}
        now = time.time()
        ticks = [{"status": "FAILURE", "timestamp": now - i * 0.01, "error": {"message": UNREACHABLE}}
                 for i in range(2)]
        return {"sensorOrError": {"__typename": "Sensor", "sensorState": {"status": "RUNNING", "ticks": ticks}}}

    def close(self):
        self.server.close()


def test_when_reloads_do_not_help_the_watch_stops_dagster_dev_and_exits_with_status_3(capsys):
    import signal
    import subprocess
    import sys

    from orchestration.backfill import DagsterWebserver
    from orchestration.watchdog import watch

    server = FailingTicksWebserver()
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])  # stands in for `dagster dev`
    try:
        started = time.monotonic()
        assert watch(child, DagsterWebserver(server.url, timeout_s=5), interval_s=0.2) == 3
        took = time.monotonic() - started
        assert took < 30, took  # well before the child would have ended on its own
        assert child.poll() == -signal.SIGTERM  # stopped by the watch, not left running
        assert server.reloads == 3  # three reloads were tried first
        assert "reelgraph dev: ingestion stopped: the upload sensor still fails after 3 reloads" in (
            capsys.readouterr().out)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        server.close()
