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
