"""The disk keeper every camera shares: recording pauses below the free-space floor, after retention had its say."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path

from video_analysis.recording.background import in_background
from video_analysis.runtime import disk
from video_analysis.runtime.disk import DiskFloor

log = logging.getLogger(__name__)

MAKE_ROOM_WAIT_S = 2.0
MAKE_ROOM_AGAIN_S = 60.0  # after a call on retention that freed nothing on the volume


class RoomKeeper:
    """Free space on the volumes recording writes (the spool, a local store), against the floor. Below it,
    ``make_room`` (retention: the oldest analysed footage without incidents) is asked to free what is missing;
    what is still short pauses recording. Shared by every camera; looks at the disk at most every
    ``interval_s``."""

    def __init__(self, paths: list[Path], floor: DiskFloor, make_room: Callable[[int, Path], int] | None = None,
                 interval_s: float = 1.0):
        self.paths, self.floor, self.make_room, self.interval_s = [Path(p) for p in paths], floor, make_room, interval_s
        self._lock = threading.Lock()
        self._checked_at = float("-inf")
        self._short: str | None = None
        self._freeing: Future | None = None
        self._ask_again_at = 0.0

    def short(self) -> str | None:
        """None while there is room; else why recording must pause ("disk full: ...")."""
        with self._lock:
            if time.monotonic() - self._checked_at < self.interval_s:
                return self._short
            self._short = self._look()
            self._checked_at = time.monotonic()
            return self._short

    def _look(self) -> str | None:
        for path in self.paths:
            found = disk.space(path, self.floor)
            if not found.short:
                continue
            if self.make_room is not None and time.monotonic() >= self._ask_again_at:
                freed = self._made_room(found.short, path)
                before, found = found, disk.space(path, self.floor)
                if freed is None:
                    pass  # still at work: recording pauses meanwhile, and the next look takes its result
                elif freed and found.free > before.free:
                    log.warning("disk below its floor: retention removed %s of the oldest footage without incidents",
                                disk.describe_bytes(freed))
                else:  # nothing it may take is on this volume (or removing it freed nothing): not asked every look
                    self._ask_again_at = time.monotonic() + MAKE_ROOM_AGAIN_S
            if found.short:
                return f"disk full: {found.describe()}"
        return None

    def _made_room(self, wanted: int, volume: Path) -> int | None:
        """Bytes retention freed on ``volume``, or None while it is still at work: it runs beside recording,
        which waits at most MAKE_ROOM_WAIT_S for it (the database may be slow or down: no camera's loop waits
        long on it)."""
        if self._freeing is None:
            self._freeing = in_background(lambda: self.make_room(wanted, volume))
        try:
            freed = self._freeing.result(timeout=MAKE_ROOM_WAIT_S) or 0
        except TimeoutError:
            return None
        except Exception as exc:  # noqa: BLE001 - retention failed: recording pauses instead
            log.warning("disk below its floor and retention could not free space: %s", exc)
            freed = 0
        self._freeing = None
        return freed
