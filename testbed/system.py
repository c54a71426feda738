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
