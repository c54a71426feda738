"""What the stand-ins need of the machine: a free port, and Debian packages installed once at a time."""

from __future__ import annotations

import os
import socket
import subprocess
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def apt_install(packages: list[str], present) -> None:
    """``apt-get install`` of ``packages`` unless ``present()`` once the lock is held: one install at a time,
    whatever the number of test processes (pytest -n), as apt refuses a second while one runs."""
    import fcntl

    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "--no-install-recommends", *packages]
    with open(Path(tempfile.gettempdir()) / "reelgraph-tests-apt.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if present():
            return
        if subprocess.run(install, env=env, capture_output=True, timeout=900).returncode != 0:
            subprocess.run(["apt-get", "update"], env=env, capture_output=True, timeout=600)
            subprocess.run(install, env=env, capture_output=True, timeout=900)


def process_stat(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (state first), or None once the process is gone."""
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def processes() -> dict[int, list[str]]:
    """Every process's stat fields, by pid."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := process_stat(int(entry.name))) is not None:
            found[int(entry.name)] = fields
    return found


def descendants(pid: int) -> list[int]:
    """The process's children, theirs, and so on (fields[1] is the parent's pid)."""
    table = processes()
    found, parents = [], [pid]
    while parents:
        children = [child for child, fields in table.items() if int(fields[1]) in parents and child not in found]
        found += children
        parents = children
    return found


def group_members(group: int) -> list[int]:
    """The live (not zombie) processes of a process group (fields[2])."""
    return [pid for pid, fields in processes().items() if int(fields[2]) == group and fields[0] != "Z"]


def running(pid: int) -> bool:
    """Alive, and not a zombie waiting to be reaped."""
    fields = process_stat(pid)
    return fields is not None and fields[0] != "Z"
