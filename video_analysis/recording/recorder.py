"""`reelgraph record`: each camera's stream cut into segments and published where uploads land.

One thread per camera, each on its own: a camera that fails never stops another. Analysis runs elsewhere
(the upload sensor finds the published segments), so nothing it does can stall recording.

A segment is published only when closed: renamed into the inbox (same file system, so atomic), or uploaded
to S3 (multipart for large files) and then removed. A segment that cannot be published stays in the spool
and is retried with the next one, and at the next start.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from datetime import datetime
from pathlib import Path

from video_analysis.recording.cameras import Camera
from video_analysis.recording.health import HealthBoard, utc
from video_analysis.recording.segments import (
    SegmentWriter,
    leftovers,
    next_boundary,
    playable_packets,
    published_name,
    remove_quietly,
    segment_key,
    segment_name,
    spool_name,
)
from video_analysis.recording.streams import StreamLost, StreamReader
from video_analysis.runtime.object_store import LocalFolderStore, ObjectStore
from video_analysis.runtime.redact import redact
from video_analysis.store.cameras import LeftBehind

log = logging.getLogger(__name__)

BACKOFF_FIRST_S = 1.0
BACKOFF_MAX_S = 10.0
# Last-packet times reach the health board at most this often (they change with every packet).
PACKET_REPORT_S = 1.0


class Publisher:
    """Moves closed segments to where the pipeline looks: the local inbox or the S3 bucket."""

    def __init__(self, store: ObjectStore, spool_root: Path):
        self.store = store
        self.spool_root = Path(spool_root)
        self._pending: dict[str, list[Path]] = {}
        self._lock = threading.Lock()

    def spool(self, camera: str) -> Path:
        """Where a camera's segments are written: beside their final place in the inbox (an atomic rename
        publishes them), or a local folder for S3."""
        if isinstance(self.store, LocalFolderStore):
            folder = self.store.root / "cameras" / camera
        else:
            folder = self.spool_root / camera
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def publish(self, camera: str, path: Path) -> str | None:
        """Publish this segment and any waiting before it; returns its key, or None when it must wait."""
        with self._lock:
            queue = self._pending.setdefault(camera, [])
            queue.append(path)
            published = None
            while queue:
                key = self._publish_one(camera, queue[0])
                if key is None:
                    return None
                queue.pop(0)
                published = key
            return published

    def _publish_one(self, camera: str, path: Path) -> str | None:
        key = segment_key(camera, published_name(path) or path.name)
        try:
            if isinstance(self.store, LocalFolderStore):
                os.replace(path, self.store.root / key)
            else:
                self.store.put(path, key)
                remove_quietly(path)
        except Exception as exc:  # noqa: BLE001 - the store may be away: keep the file, retry with the next
            log.error("%s: cannot publish %s (%s); kept in %s and retried with the next segment", camera, key,
                      redact(str(exc)), path.parent)
            return None
        log.info("%s: published %s", camera, key)
        return key


class CameraRecorder(threading.Thread):
    """One camera: connect, cut, publish, reconnect with backoff; gaps reported to the health board."""

    def __init__(self, camera: Camera, publisher: Publisher, board: HealthBoard, stop: threading.Event,
                 left_behind: LeftBehind | None = None):
        super().__init__(name=f"camera-{camera.name}", daemon=True)
        self.camera = camera
        self.publisher = publisher
        self.board = board
        self.stop = stop
        self.left_behind = left_behind or LeftBehind()
        self.spool = publisher.spool(camera.name)
        self.names: set[str] = set()
        self.published = 0
        self.transport = "tcp"  # RTSP: UDP once the server refused TCP

    def run(self) -> None:
        self._salvage()
        backoff = BACKOFF_FIRST_S
        # a gap an earlier recorder left open goes on until our first packet
        gap: tuple[datetime, str] | None = self.left_behind.open_gap
        earlier = self.left_behind.last_packet_at
        last_packet: float | None = earlier.timestamp() if earlier else None
        while not self.stop.is_set():
            try:
                received, reason = self._record_connection(gap)
            except Exception as exc:  # noqa: BLE001 - anything else (a full disk) is logged and retried too
                log.exception("%s: recording failed", self.camera.name)
                received, reason = None, f"recording failed: {redact(str(exc))}"
            if received is not None:
                last_packet, gap, backoff = received, None, BACKOFF_FIRST_S
            if self.stop.is_set():
                break
            if gap is None:
                begun = utc(last_packet) if last_packet is not None else utc(time.time())
                gap = (begun, reason)
                self.board.gap_opened(self.camera.name, begun, reason)
            self.board.update(self.camera.name, state="reconnecting", last_error=reason)
            log.warning("%s: %s; reconnecting in %.0f s", self.camera.name, reason, backoff)
            self.stop.wait(backoff)
            backoff = min(BACKOFF_MAX_S, backoff * 2)
        if gap is not None:
            self.board.update(self.camera.name, state="stopped")
        else:
            self.board.update(self.camera.name, state="stopped", last_error=None)

    def _salvage(self) -> None:
        """Publish what a killed recorder left half-written (it plays up to its last fragment)."""
        for path in leftovers(self.spool):
            if playable_packets(path) == 0:
                log.warning("%s: removed %s, left by an earlier recorder with nothing playable", self.camera.name,
                            path.name)
                remove_quietly(path)
                continue
            log.warning("%s: publishing %s, cut short when an earlier recorder stopped", self.camera.name, path.name)
            self.names.add(published_name(path) or path.name)
            self._published(self.publisher.publish(self.camera.name, path))

    def _published(self, key: str | None) -> None:
        if key:
            self.published += 1
            self.board.update(self.camera.name, last_segment_at=utc(time.time()), last_segment_key=key)

    def _record_connection(self, gap: tuple[datetime, str] | None) -> tuple[float | None, str]:
        """Record until the stream is lost or we are stopped: (the last packet's wall time, why it ended)."""
        name = self.camera.name
        self.board.update(name, state="connecting")
        try:
            reader = StreamReader(self.camera, self.stop, self.transport)
            self.transport = reader.transport
        except StreamLost as exc:
            return None, str(exc)
        writer: SegmentWriter | None = None
        last: float | None = None
        reported = 0.0
        reason = "the recorder stopped"
        try:
            for timed in reader.packets():
                if last is None:
                    self._first_packet(timed.wall, gap, reader.clock)
                last = timed.wall
                if writer is None or (timed.keyframe and timed.wall >= writer.planned_end):
                    if writer is not None:
                        self._finish(writer)
                        writer = None
                    if not timed.keyframe:
                        continue  # a segment starts at a keyframe, to play on its own
                    writer = self._open_segment(reader, timed.wall)
                writer.write(timed.packet, timed.wall)
                if timed.wall - reported >= PACKET_REPORT_S:
                    reported = timed.wall
                    self.board.update(name, last_packet_at=utc(timed.wall))
        except StreamLost as exc:
            reason = str(exc)
        finally:
            if writer is not None:
                self._finish(writer)
            reader.close()
        if last is not None:
            self.board.update(name, last_packet_at=utc(last))
        return last, reason

    def _first_packet(self, wall: float, gap: tuple[datetime, str] | None, clock: str) -> None:
        name = self.camera.name
        if gap is not None:
            self.board.gap_closed(name, gap[0], utc(wall))
            log.info("%s: stream back after %.0f s", name, wall - gap[0].timestamp())
        else:
            earlier = self.left_behind.last_packet_at
            if earlier and wall - earlier.timestamp() > 2 * self.camera.stall_seconds:
                self.board.gap_opened(name, earlier, "the recorder was not running", ended=utc(wall))
        self.left_behind = LeftBehind()
        self.board.update(name, state="recording", clock=clock, last_error=None)
        log.info("%s: recording (segment times from the %s clock)", name, clock)

    def _open_segment(self, reader: StreamReader, wall: float) -> SegmentWriter:
        name = segment_name(wall, self.names)
        self.names.add(name)
        end = next_boundary(wall, self.camera.segment_seconds)
        return SegmentWriter(self.spool / spool_name(name), reader.stream, wall, end)

    def _finish(self, writer: SegmentWriter) -> None:
        path = writer.close()
        if writer.packets == 0:
            remove_quietly(path)
            return
        self._published(self.publisher.publish(self.camera.name, path))


class Recorder:
    """Every camera of the cameras file, recorded until ``stop`` is set."""

    def __init__(self, cameras: list[Camera], publisher: Publisher, board: HealthBoard):
        self.cameras = cameras
        self.publisher = publisher
        self.board = board

    def run(self, stop: threading.Event) -> dict[str, int]:
        """Record until ``stop``; each camera finishes and publishes its open segment. Returns segments
        published per camera."""
        previous = self.board.left_behind()
        self.board.start()
        threads = [CameraRecorder(c, self.publisher, self.board, stop, previous.get(c.name)) for c in self.cameras]
        for thread in threads:
            thread.start()
        reported: set[str] = set()
        while not stop.wait(1.0):
            for thread in threads:
                if not thread.is_alive() and thread.camera.name not in reported:  # run() catches everything
                    reported.add(thread.camera.name)
                    log.error("%s: its recording thread ended; restart `reelgraph record`", thread.camera.name)
        for thread in threads:
            thread.join(timeout=thread.camera.stall_seconds + 20)
        self.board.close()
        return {t.camera.name: t.published for t in threads}
