"""`reelgraph dev`'s supervisor: every child it started stops, groups whole, however the stop arrives."""

import os
import signal
import sys
import time
from pathlib import Path

from orchestration.supervisor import Supervisor, group_running

# A parent that starts a grandchild in its own group, as `dagster dev` starts its webserver and code servers.
FAMILY = ("import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)']);"
          "time.sleep(600)")
STUBBORN = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _members(group: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == group:
                found.append(int(entry.name))
    return found


def test_a_hangup_stops_a_child_group_whole_grandchildren_included():
    with Supervisor("test", grace_s=10) as supervisor:
        family = supervisor.start([sys.executable, "-c", FAMILY])
        deadline = time.monotonic() + 20
        while len(_members(family.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        members = _members(family.pid)
        assert len(members) == 2 and os.getpgid(family.pid) != os.getpgid(0)  # a group of its own
        started = time.monotonic()
        os.kill(os.getpid(), signal.SIGHUP)  # a closed terminal: to this process alone
        assert supervisor.stopping == [signal.SIGHUP]
        supervisor.stop_all()
    assert time.monotonic() - started < 5
    assert not [pid for pid in members if _alive(pid)] and not group_running(family.pid)
    assert signal.getsignal(signal.SIGHUP) is not supervisor._on_signal  # handlers given back


def test_a_child_started_after_the_stop_arrived_is_stopped_at_once():
    with Supervisor("test", grace_s=10) as supervisor:
        os.kill(os.getpid(), signal.SIGTERM)  # during start-up, before the child exists
        started = time.monotonic()
        late = supervisor.start([sys.executable, "-c", "import time; time.sleep(600)"])
        assert late.wait(10) == -signal.SIGTERM
    assert time.monotonic() - started < 10


def test_a_child_that_ignores_sigterm_is_killed_after_the_grace_period():
    with Supervisor("test", grace_s=1.5) as supervisor:
        stubborn = supervisor.start([sys.executable, "-c", STUBBORN], own_group=False)
        time.sleep(1.0)  # its handler is in place
        started = time.monotonic()
    assert stubborn.poll() == -signal.SIGKILL and 1.4 < time.monotonic() - started < 5
