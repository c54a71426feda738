"""`reelgraph record`: each camera's stream cut into segments and published where uploads land.

One thread per camera, each on its own: a camera that fails never stops another. Analysis runs elsewhere
(the upload sensor finds the published segments), so nothing it does can stall recording.

A segment is published only when closed, by the camera's own publisher thread: renamed into the inbox (same
file system, so atomic), or uploaded to S3 (multipart for large files) and then removed. A segment that cannot
be published stays in the spool and is tried again, and at the next start.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from video_analysis.recording.background import in_background, one_camera
from video_analysis.recording.camera_recorder import CameraRecorder
from video_analysis.recording.cameras import Camera
from video_analysis.recording.health import HealthBoard
from video_analysis.recording.publisher import spool_folder
from video_analysis.recording.room_keeper import RoomKeeper
from video_analysis.recording.spool_lock import RecorderBusy, SpoolLock
from video_analysis.runtime.object_store import ObjectStore

log = logging.getLogger(__name__)

DEFAULT_STOP_GRACE_S = 120.0  # a 10-minute segment at 4 Mbit/s is 300 MB: minutes on a slow uplink


class Recorder:
    """Every camera of the cameras file, recorded until ``stop`` is set."""

    def __init__(self, cameras: list[Camera], store: ObjectStore, spool_root: Path, board: HealthBoard,
                 stop_grace_s: float = DEFAULT_STOP_GRACE_S, room: RoomKeeper | None = None):
        self.room = room
        self.cameras = cameras
        self.store = store
        self.spool_root = Path(spool_root)
        self.board = board
        self.stop_grace_s = stop_grace_s  # at stop, how long uploads in flight are waited for

    def run(self, stop: threading.Event) -> dict[str, int]:
        """Record until ``stop``; each camera finishes and publishes its open segment. Returns segments
        published per camera (an error when another recorder already records every camera)."""
        threads, locks = [], []
        # asked in the background: cameras start before any database call (a migration another process holds can
        # keep the database from answering for minutes)
        previous = in_background(self.board.left_behind)
        for camera in self.cameras:
            spool = spool_folder(self.store, self.spool_root, camera.name)
            lock = SpoolLock(spool)
            if not lock.acquire():
                log.error("%s: another recorder records this camera (%s is locked); this one leaves it",
                          camera.name, lock.path)
                self.board.forget(camera.name)
                continue
            locks.append(lock)
            threads.append(CameraRecorder(camera, self.store, spool, self.board, stop,
                                          one_camera(previous, camera.name), stop_grace_s=self.stop_grace_s,
                                          room=self.room))
        if not threads:
            raise RecorderBusy("every camera of the cameras file is recorded by another recorder")
        self.board.start()
        for thread in threads:
            thread.start()
        reported: set[str] = set()
        while not stop.wait(1.0):
            for thread in threads:
                if not thread.is_alive() and thread.camera.name not in reported:  # run() catches everything
                    reported.add(thread.camera.name)
                    log.error("%s: its recording thread ended; restart `reelgraph record`", thread.camera.name)
        for thread in threads:
            thread.join(timeout=thread.camera.stall_seconds + self.stop_grace_s + 5)
        self.board.close()
        return {t.camera.name: t.published for t in threads}
