"""`reelgraph dev`'s supervisor: every child it started stops, groups whole, however the stop arrives.

Each scenario runs in a process of its own, which the test signals as a service manager or a closed terminal
would: signals are never sent to the test process itself.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from testbed.system import group_members

# A parent that starts a grandchild, as `dagster dev` starts its webserver and code servers.
FAMILY = ("import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)']);"
          "time.sleep(600)")
SUPERVISED = """
import json, signal, sys, time
from orchestration.supervisor import Supervisor
with Supervisor("test", grace_s=float(sys.argv[2])) as supervisor:
    if sys.argv[1] == "family":
        child = supervisor.start([sys.executable, "-c", sys.argv[3]])
        print(json.dumps({"child": child.pid}), flush=True)
        while not supervisor.stopping:
            time.sleep(0.05)
    elif sys.argv[1] == "late":
        signal.raise_signal(signal.SIGTERM)  # a stop during start-up, before the child exists
        child = supervisor.start([sys.executable, "-c", "import time; time.sleep(600)"])
        print(json.dumps({"child": child.pid, "status": child.wait(10)}), flush=True)
    else:
        child = supervisor.start([sys.executable, "-c", sys.argv[3]], own_group=False)
        time.sleep(1.0)  # its handler is in place
        started = time.monotonic()
print(json.dumps({"stopping": supervisor.stopping, "child_status": child.poll(),
                  "stop_s": time.monotonic() - started if sys.argv[1] == "stubborn" else None}), flush=True)
"""
STUBBORN = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"
REPO = Path(__file__).resolve().parents[2]


def _supervised(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", SUPERVISED, *args], cwd=REPO, stdout=subprocess.PIPE, text=True)


def test_a_hangup_to_the_supervisor_alone_stops_a_child_group_whole_grandchildren_included():
    supervisor = _supervised("family", "10", FAMILY)
    child = json.loads(supervisor.stdout.readline())["child"]
    deadline = time.monotonic() + 20
    while len(group_members(child)) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(group_members(child)) == 2 and os.getpgid(child) != os.getpgid(supervisor.pid)  # a group of its own
    started = time.monotonic()
    os.kill(supervisor.pid, signal.SIGHUP)  # a closed terminal: to the supervisor alone
    assert supervisor.wait(10) == 0
    assert json.loads(supervisor.stdout.readline())["stopping"] == [signal.SIGHUP]
    assert time.monotonic() - started < 5 and group_members(child) == []


def test_a_child_started_after_the_stop_arrived_is_stopped_at_once():
    supervisor = _supervised("late", "10")
    assert supervisor.wait(20) == 0
    assert json.loads(supervisor.stdout.readline())["status"] == -signal.SIGTERM


def test_a_child_that_ignores_sigterm_is_killed_after_the_grace_period():
    supervisor = _supervised("stubborn", "1.5", STUBBORN)
    assert supervisor.wait(20) == 0
    ended = json.loads(supervisor.stdout.readline())
    assert ended["child_status"] == -signal.SIGKILL and 1.4 < ended["stop_s"] < 5


# `dagster dev` and, in its group, a daemon (which ignores SIGTERM: it is killed) and a run worker, which writes
# down, when SIGTERM reaches it, whether the daemon was still running then.
DAEMON = ("import os, signal, sys, time  # python -m dagster._daemon run\n"
          "signal.signal(signal.SIGTERM, signal.SIG_IGN)\nopen(sys.argv[1] + '.daemon', 'w').write(str(os.getpid()))\n"
          "time.sleep(600)")
WORKER = ("import signal, sys, time\n"
          "def stop(*_):\n"
          "    pid = open(sys.argv[1] + '.daemon').read()\n"
          "    try:\n        state = open(f'/proc/{pid}/stat').read().rsplit(')', 1)[1].split()[0]\n"
          "    except OSError:\n        state = 'gone'\n"
          "    open(sys.argv[1], 'w').write('daemon running' if state not in ('Z', 'gone') else 'daemon gone')\n"
          "    sys.exit(0)\n"
          "signal.signal(signal.SIGTERM, stop)\nopen(sys.argv[1] + '.worker', 'w').write('up')\ntime.sleep(600)")


def test_the_daemon_is_stopped_and_gone_before_the_rest_of_its_group_is_told_to_stop(tmp_path):
    """A run its worker fails at the stop must not be retried by a daemon still running, against code servers
    that are stopping: the daemon goes first, and the next start's daemon retries the run."""
    log = tmp_path / "stops.log"
    dev = ("import subprocess, sys, time\n"
           f"subprocess.Popen([sys.executable, '-c', {DAEMON!r}, {str(log)!r}])\n"
           f"subprocess.Popen([sys.executable, '-c', {WORKER!r}, {str(log)!r}])\n"
           "time.sleep(600)")
    supervisor = _supervised("family", "10", dev)
    child = json.loads(supervisor.stdout.readline())["child"]
    deadline = time.monotonic() + 20
    ready = [Path(f"{log}.daemon"), Path(f"{log}.worker")]  # each writes its file once its handler is in place
    while not all(path.exists() for path in ready) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert all(path.exists() for path in ready)
    os.kill(supervisor.pid, signal.SIGTERM)
    assert supervisor.wait(20) == 0 and group_members(child) == []
    assert log.read_text() == "daemon gone"  # the worker was told to stop once the daemon was killed
