"""The S3 download cache: fetched footage on local disk, bounded by size, never evicting a file a step holds."""

from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger(__name__)


class DownloadCache:
    """Downloaded files under one folder, bounded by total size; least recently used go first."""

    def __init__(self, root: Path, max_bytes: int):
        self.root = Path(root)
        self.max_bytes = max_bytes

    @contextmanager
    def hold(self, path: Path) -> Iterator[bool]:
        """Hold ``path`` against eviction; yields False when it is not there (or was just evicted)."""
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            yield False
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)
            yield os.fstat(fd).st_nlink > 0  # evicted between open and lock: gone
        finally:
            os.close(fd)

    def make_room(self, incoming: int) -> None:
        """Evict unheld files, least recently used first, until ``incoming`` more bytes fit."""
        files = []
        for folder, _dirs, names in os.walk(self.root):
            for name in names:
                path = Path(folder) / name
                try:
                    stat = path.stat()
                except FileNotFoundError:
                    continue
                files.append((stat.st_mtime_ns, stat.st_size, path))
        total = sum(size for _, size, _ in files)
        for _, size, path in sorted(files):
            if total + incoming <= self.max_bytes:
                return
            try:  # a download in progress holds its .part file: one left by a killed step does not
                fd = os.open(path, os.O_RDONLY)
            except FileNotFoundError:
                total -= size
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue  # a running step reads it
            try:
                path.unlink(missing_ok=True)
                total -= size
                log.info("evicted %s (%d bytes) from the download cache", path, size)
            finally:
                os.close(fd)
        if total + incoming > self.max_bytes:
            log.warning("the download cache holds %d bytes in files in use; %d more go over its %d-byte bound",
                        total, incoming, self.max_bytes)
