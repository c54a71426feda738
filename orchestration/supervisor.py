"""`reelgraph dev`'s children, stopped whole however the stop arrives.

`dagster dev` runs in a process group of its own, with everything it starts (webserver, daemon, code servers,
run workers): a signal sent to `reelgraph dev` alone (`docker stop`, systemd, `kill`, a closed terminal) would
otherwise leave them running, holding the port and the pool slots. The supervisor takes SIGTERM, SIGINT and
SIGHUP from the first moment of `reelgraph dev`, passes a stop to every child it started (SIGTERM to each
group, SIGKILL to whatever is left after a grace period), and a child started after the stop arrived is
stopped at once.

Dagster's daemon is stopped first, and waited for: it launches run retries, and a run its worker fails at the
stop would otherwise be retried at once, against code servers that are stopping too, and fail before it starts
(the retry spent). Stopped first, the daemon leaves that failure to the next start's daemon, which retries it.
It is killed (SIGKILL): on SIGTERM it takes ten seconds or more to stop, launching all the while, and it keeps
nothing a crash loses (Dagster resumes its sensors and backfills from their cursors at the next start).
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import time
from pathlib import Path

log = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
STOP_GRACE_S = 15.0
# Stopped before the rest of their group, and waited for (at most FIRST_STOP_WAIT_S): Dagster's daemon.
FIRST_TO_STOP = b"dagster._daemon"
FIRST_STOP_WAIT_S = 10.0


def _group_pids(group: int) -> list[int]:
    """The group's running processes (zombies, which only wait to be reaped, do not count)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == group and fields[0] != "Z":
            found.append(int(entry.name))
    return found


def group_running(group: int) -> bool:
    """Whether a process of the group still runs."""
    if not Path("/proc").is_dir():
        try:
            os.killpg(group, 0)
            return True
        except ProcessLookupError:
            return False
    return bool(_group_pids(group))


def _first_to_stop(group: int) -> list[int]:
    if not Path("/proc").is_dir():
        return []
    pids = []
    for pid in _group_pids(group):
        try:
            if FIRST_TO_STOP in Path(f"/proc/{pid}/cmdline").read_bytes():
                pids.append(pid)
        except OSError:
            continue
    return pids


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


def _reap(group: int) -> None:
    """Reap the group's exited processes that are our children (all of them when we run as PID 1)."""
    while True:
        try:
            pid, _ = os.waitpid(-group, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _signal_group(group: int, sig) -> None:
    try:
        os.killpg(group, sig)
    except ProcessLookupError:
        pass


class Supervisor:
    """The stop signals, and the children to pass a stop to. Use as a context manager: leaving it stops every
    child (groups whole), whatever way it is left."""

    def __init__(self, name: str, grace_s: float = STOP_GRACE_S):
        self.name, self.grace_s = name, grace_s
        self.stopping: list[int] = []
        self._groups: list[subprocess.Popen] = []
        self._companions: list[subprocess.Popen] = []
        self._previous: dict = {}

    def __enter__(self) -> Supervisor:
        self._previous = {sig: signal.signal(sig, self._on_signal) for sig in STOP_SIGNALS}
        return self

    def __exit__(self, *_exc) -> None:
        try:
            self.stop_all()
        finally:
            for sig, handler in self._previous.items():
                signal.signal(sig, handler)

    def _on_signal(self, signum, _frame) -> None:
        first = not self.stopping
        self.stopping.append(signum)  # first: a second signal while this one is handled finds it recorded
        if first:
            self._stop_first()
        self._pass_stop()
        if first:
            log.warning("%s: %s: stopping everything it started", self.name, signal.Signals(signum).name)

    def _stop_first(self) -> None:
        """Kill the daemons of every group, and wait for them to be gone (see the module's note)."""
        daemons = [pid for process in self._groups for pid in _first_to_stop(process.pid)]
        for pid in daemons:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + FIRST_STOP_WAIT_S
        while daemons and time.monotonic() < deadline:
            daemons = [pid for pid in daemons if Path(f"/proc/{pid}").exists() and not _zombie(pid)]
            time.sleep(0.1)

    def _pass_stop(self) -> None:
        for process in self._groups:
            _signal_group(process.pid, signal.SIGTERM)
        for process in self._companions:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)

    def start(self, command: list[str], cwd: Path | None = None, own_group: bool = True) -> subprocess.Popen:
        """Start a child (in a process group of its own with ``own_group``); stopped at once if a stop came."""
        process = subprocess.Popen(command, cwd=cwd, start_new_session=own_group)
        (self._groups if own_group else self._companions).append(process)
        # A signal handled before the line above found the list without this child: pass the stop on now.
        if self.stopping:
            self._pass_stop()
        return process

    def stop_all(self) -> None:
        """SIGTERM to every child (each group whole), SIGKILL to what is left after the grace period."""
        if not self.stopping:  # a stop from the code, not a signal: the daemons first all the same
            self._stop_first()
        self._pass_stop()
        deadline = time.monotonic() + self.grace_s
        for process in self._companions:
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("%s: %s still ran %.0f s after SIGTERM: killed", self.name, process.args, self.grace_s)
                process.kill()
                process.wait()
        for process in self._groups:
            while time.monotonic() < deadline:
                process.poll()
                _reap(process.pid)
                if not group_running(process.pid):
                    break
                time.sleep(0.2)
            else:
                log.warning("%s: processes of %s still ran %.0f s after SIGTERM: killed", self.name,
                            Path(process.args[0]).name, self.grace_s)
                _signal_group(process.pid, signal.SIGKILL)
            process.wait()
            _reap(process.pid)
