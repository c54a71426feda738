"""What the recorder tells the database about its cameras, without ever waiting on the database.

Camera threads report into memory; one writer thread flushes every few seconds. When the database is away,
the newest state per camera and every gap event wait in memory and go out with the next flush that works:
recording never stalls on a health report.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timezone

from video_analysis.recording.cameras import Camera
from video_analysis.runtime.redact import redact
from video_analysis.store import cameras as camera_store
from video_analysis.store.cameras import CameraRow

log = logging.getLogger(__name__)

FLUSH_SECONDS = 2.0


def utc(wall: float) -> datetime:
    return datetime.fromtimestamp(wall, tz=timezone.utc)


class HealthBoard:
    """In-memory camera states and gap events, flushed to the database by a background thread."""

    def __init__(self, connect: Callable, cameras: list[Camera]):
        self._connect = connect  # () -> a psycopg connection (autocommit off)
        self._lock = threading.Lock()
        self._rows = {c.name: CameraRow(c.name, c.shown_url, c.segment_seconds, "connecting") for c in cameras}
        self._started = set(self._rows)
        self._gap_events: list[tuple] = []
        self._stop = threading.Event()
        self._failing = False
        self._thread = threading.Thread(target=self._run, name="camera-health", daemon=True)

    def left_behind(self) -> dict[str, camera_store.LeftBehind]:
        """Where an earlier recorder left each camera (to list the gap while none was running)."""
        try:
            with self._connect() as conn:
                return {name: camera_store.left_behind(conn, name) for name in self._rows}
        except Exception as exc:  # noqa: BLE001 - best effort: without it, that gap is not listed
            log.warning("camera health: cannot read earlier state (%s)", redact(str(exc)))
            return {}

    def start(self) -> None:
        self._thread.start()

    def update(self, camera: str, **changes) -> None:
        with self._lock:
            if camera in self._rows:
                self._rows[camera] = replace(self._rows[camera], **changes)

    def gap_opened(self, camera: str, started: datetime, reason: str, ended: datetime | None = None) -> None:
        with self._lock:
            self._gap_events.append(("open", camera, started, reason, ended))

    def gap_closed(self, camera: str, ended: datetime) -> None:
        """The camera records again: every gap still open for it ends here."""
        with self._lock:
            self._gap_events.append(("close", camera, None, None, ended))

    def forget(self, camera: str) -> None:
        """Another recorder reports this camera: this one says nothing about it."""
        with self._lock:
            self._rows.pop(camera, None)
            self._started.discard(camera)

    def close(self) -> None:
        """Stop the writer after one last flush."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=15)
        else:
            self.flush()

    def _run(self) -> None:
        while not self._stop.wait(FLUSH_SECONDS):
            self.flush()
        self.flush()

    def flush(self) -> bool:
        with self._lock:
            rows, started, events = list(self._rows.values()), set(self._started), list(self._gap_events)
        try:
            with self._connect() as conn, conn.transaction():
                for row in rows:
                    camera_store.save_camera(conn, row, started=row.name in started)
                for kind, camera, begun, reason, ended in events:
                    if kind == "open":
                        camera_store.open_gap(conn, camera, begun, reason, ended)
                    else:
                        camera_store.close_open_gaps(conn, camera, ended)
        except Exception as exc:  # noqa: BLE001 - the database may be away; recording goes on
            if not self._failing:
                log.warning("camera health: the database is unavailable (%s); reports wait in memory",
                            redact(str(exc)))
            self._failing = True
            return False
        if self._failing:
            log.info("camera health: the database is back; %d gap events written", len(events))
        self._failing = False
        with self._lock:
            self._started -= started
            del self._gap_events[:len(events)]
        return True
