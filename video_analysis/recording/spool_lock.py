"""One recorder per camera: the spool's lock file, and the error when another recorder holds every camera."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path


class SpoolLock:
    """One recorder per camera: a second one (`reelgraph dev` started one, a user another) leaves the camera."""

    def __init__(self, spool: Path):
        self.path = spool / ".recorder.lock"
        self._fd: int | None = None

    def acquire(self) -> bool:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True


class RecorderBusy(RuntimeError):
    """Another recorder holds every camera."""
