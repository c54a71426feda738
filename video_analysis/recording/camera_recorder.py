"""One camera's recording loop: connect, cut the stream into segments, reconnect with backoff, report gaps."""

from __future__ import annotations

import logging
import os
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from video_analysis.recording.cameras import Camera
from video_analysis.recording.health import HealthBoard, utc
from video_analysis.recording.publisher import Publisher
from video_analysis.recording.room_keeper import RoomKeeper
from video_analysis.recording.segments import (
    SegmentWriter,
    leftovers,
    next_boundary,
    playable_packets,
    published_name,
    remove_quietly,
    segment_name,
    spool_name,
)
from video_analysis.recording.streams import StreamLost, StreamReader
from video_analysis.runtime.object_store import ObjectStore
from video_analysis.runtime.redact import redact
from video_analysis.store.cameras import LeftBehind

log = logging.getLogger(__name__)

BACKOFF_FIRST_S = 1.0
BACKOFF_MAX_S = 10.0
# Last-packet times reach the health board at most this often (they change with every packet).
PACKET_REPORT_S = 1.0
# At a restart, a longer span since the last packet an earlier recorder reported is a gap.
RESTART_GAP_S = 1.0


def failure_reason(exc: Exception) -> str:
    """What went wrong, for a gap's reason and the status page: an OS or FFmpeg error names its file by name
    alone (the spool's absolute path says nothing to the reader), secrets masked."""
    filename, strerror = getattr(exc, "filename", None), getattr(exc, "strerror", None)
    if filename and strerror:
        names = [Path(os.fsdecode(f)).name for f in (filename, getattr(exc, "filename2", None)) if f]
        return redact(f"{strerror} ({' -> '.join(names)})")
    return redact(str(exc))


@dataclass
class _Connection:
    """Where one connection to the camera stands: its reader, the segment being written, packets so far."""

    reader: StreamReader
    writer: SegmentWriter | None = None
    packets: int = 0
    reported: float = 0.0  # when the last packet's time was last reported to the health board


class CameraRecorder(threading.Thread):
    """One camera: connect, cut, hand closed segments to its publisher, reconnect with backoff; gaps reported to
    the health board."""

    def __init__(self, camera: Camera, store: ObjectStore, spool: Path, board: HealthBoard, stop: threading.Event,
                 left_behind: LeftBehind | Future | None = None, stop_grace_s: float = 10.0,
                 room: RoomKeeper | None = None):
        super().__init__(name=f"camera-{camera.name}", daemon=True)
        self.room = room
        self.paused_since: float | None = None  # recording paused for want of disk space
        self.stop_grace_s = stop_grace_s
        self.camera = camera
        self.board = board
        self.stop = stop
        self.spool = spool
        self.names: set[str] = set()
        self.published = 0
        self.publisher = Publisher(store, camera.name, self._published)
        # Where an earlier recorder left the camera comes from the database, which may be slow to answer (its
        # migrations held by another process): recording starts at once, and what it says is taken in when it
        # comes (`_take_earlier`).
        self._earlier: Future | None = left_behind if isinstance(left_behind, Future) else None
        known = left_behind if isinstance(left_behind, LeftBehind) else LeftBehind()
        # a gap an earlier recorder left open goes on until our first packet
        self.gap: tuple[datetime, str] | None = known.open_gap
        self.last_packet: float | None = known.last_packet_at.timestamp() if known.last_packet_at else None
        self.connected_before = False
        self._first_wall: float | None = None  # our first packet's, while the earlier state was still unknown

    def _take_earlier(self) -> None:
        """Apply where an earlier recorder left the camera, once the database has said (in this thread)."""
        if self._earlier is None or not self._earlier.done():
            return
        try:
            earlier = self._earlier.result() or LeftBehind()
        except Exception:  # noqa: BLE001 - best effort, as HealthBoard.left_behind
            earlier = LeftBehind()
        self._earlier = None
        last = earlier.last_packet_at.timestamp() if earlier.last_packet_at else None
        if self._first_wall is None:  # not recording yet: as if known from the start
            if earlier.open_gap and (self.gap is None or earlier.open_gap[0] < self.gap[0]):
                self.gap = earlier.open_gap
            self.last_packet = self.last_packet if self.last_packet is not None else last
            return
        name = self.camera.name
        if earlier.open_gap is not None:
            if self.gap is None:  # (while a gap of our own is open, its close at reconnection ends both)
                self.board.gap_closed(name, utc(self._first_wall))  # the earlier recorder's gap ended at our start
        elif last is not None and self._first_wall - last > RESTART_GAP_S:
            self.board.gap_opened(name, utc(last), "the recorder was not running", ended=utc(self._first_wall))

    def run(self) -> None:
        self.publisher.start()
        try:
            self._salvage()
            self._record()
        finally:
            self.publisher.close(timeout_s=self.stop_grace_s)

    def _record(self) -> None:
        backoff = BACKOFF_FIRST_S
        while not self.stop.is_set():
            self._take_earlier()
            before = self.last_packet
            try:
                reason = self._record_connection()
            except Exception as exc:  # noqa: BLE001 - anything else (a full disk) is logged and retried too
                log.exception("%s: recording failed", self.camera.name)
                reason = f"recording failed: {failure_reason(exc)}"
            if self.last_packet != before:
                backoff = BACKOFF_FIRST_S  # it recorded: the next failure starts the backoff again
            if self.stop.is_set():
                break
            if self.gap is None:
                begun = utc(self.last_packet if self.last_packet is not None else time.time())
                self.gap = (begun, reason)
                self.board.gap_opened(self.camera.name, begun, reason)
            self.board.update(self.camera.name, state="reconnecting", last_error=reason)
            log.warning("%s: %s; reconnecting in %.0f s", self.camera.name, reason, backoff)
            self.stop.wait(backoff)
            backoff = min(BACKOFF_MAX_S, backoff * 2)
        self.board.update(self.camera.name, state="stopped")

    def _salvage(self) -> None:
        """Publish what a killed recorder left half-written (it plays up to its last fragment)."""
        for path in leftovers(self.spool):
            if playable_packets(path) == 0:
                log.warning("%s: removed %s, left by an earlier recorder with nothing playable", self.camera.name,
                            path.name)
                remove_quietly(path)
                continue
            log.warning("%s: publishing %s, left by an earlier recorder", self.camera.name, path.name)
            self.names.add(published_name(path) or path.name)
            self.publisher.submit(path)

    def _published(self, key: str) -> None:
        self.published += 1
        self.board.update(self.camera.name, last_segment_at=utc(time.time()), last_segment_key=key)
    def _record_connection(self) -> str:
        """Record until the stream is lost or we are stopped; returns why it ended."""
        name = self.camera.name
        # "connecting" until the stream first arrives; once it was lost, every attempt until packets flow
        # again is part of "reconnecting" (a status read mid-attempt must not look like a fresh start)
        self.board.update(name, state="connecting" if self.gap is None else "reconnecting")
        try:
            reader = StreamReader(self.camera, self.stop)
        except StreamLost as exc:
            return str(exc)
        self.paused_since = None  # (the reconnection closes every open gap: a disk still short pauses it anew)
        connection = _Connection(reader)
        reason = "the recorder stopped"
        try:
            try:
                for timed in reader.packets():
                    self._take_packet(connection, timed)
            except StreamLost as exc:
                reason = str(exc)
            finally:
                if connection.writer is not None:
                    self._finish(connection.writer, reader)
        finally:
            reader.close()
        if self.last_packet is not None and connection.packets:
            self.board.update(name, last_packet_at=utc(self.last_packet))
        return reason

    def _take_packet(self, connection: _Connection, timed) -> None:
        """One packet of the stream: the first of a connection ends a gap, a timestamp jump is recorded, a
        keyframe past the segment's end starts the next one, and the packet is written (unless paused)."""
        self._take_earlier()
        if connection.packets == 0:
            self._first_packet(timed.wall, connection.reader.clock)
        elif timed.jump:
            self._jumped(timed)
            if connection.writer is not None:
                connection.writer.continue_after_jump(timed.packet)
        connection.packets += 1
        self.last_packet = timed.wall
        if not self._room_to_write(connection, timed):
            return
        writer = connection.writer
        if writer is None or (timed.keyframe and timed.wall >= writer.planned_end):
            if writer is not None:
                self._finish(writer, connection.reader)
                connection.writer = None
            if not timed.keyframe:
                return  # a segment starts at a keyframe, to play on its own
            connection.writer = self._open_segment(connection.reader, timed)
        connection.writer.write(timed.packet, timed.wall)
        if timed.wall - connection.reported >= PACKET_REPORT_S:
            connection.reported = timed.wall
            self.board.update(self.camera.name, last_packet_at=utc(timed.wall))

    def _room_to_write(self, connection: _Connection, timed) -> bool:
        """False while the disk is below its floor (recording pauses; the segment being written is closed as it
        is, whole up to here); looked at only between segments and at keyframes."""
        if self.room is None or (connection.writer is not None and not timed.keyframe):
            return True
        full = self.room.short()
        if full:
            if connection.writer is not None:
                self._finish(connection.writer, connection.reader)
                connection.writer = None
            self._pause(full, timed.wall)
            return False
        if self.paused_since is not None:
            self._resume(timed.wall)
        return True

    def _pause(self, reason: str, wall: float) -> None:
        """Below the disk floor: no new segment is written (the stream stays connected) and a gap says why."""
        if self.paused_since is not None:
            return
        self.paused_since = wall
        log.error("%s: recording paused: %s; it resumes by itself when space returns", self.camera.name, reason)
        self.board.gap_opened(self.camera.name, utc(wall), reason)
        self.board.update(self.camera.name, state="paused", last_error=reason)

    def _resume(self, wall: float) -> None:
        log.warning("%s: disk space back above the floor: recording again after %.0f s paused", self.camera.name,
                    wall - self.paused_since)
        self.paused_since = None
        self.board.gap_closed(self.camera.name, utc(wall))
        self.board.update(self.camera.name, state="recording", last_error=None)

    def _jumped(self, timed) -> None:
        """The camera's timestamps jumped: recorded as a gap from the packet before to this one (the footage
        goes on, on the receive clock, but what the camera stamped in between cannot be trusted)."""
        before = self.last_packet if self.last_packet is not None else timed.wall
        self.board.gap_opened(self.camera.name, utc(before), f"the camera's timestamps jumped {timed.jump:+.0f} s",
                              ended=utc(max(timed.wall, before)))

    def _first_packet(self, wall: float, clock: str) -> None:
        name = self.camera.name
        if self._earlier is not None and not self.connected_before:
            self._first_wall = wall  # what an earlier recorder left is judged against this once it is known
        if self.gap is not None:
            self.board.gap_closed(name, utc(wall))
            log.info("%s: stream back after %.0f s", name, wall - self.gap[0].timestamp())
            self.gap = None
        elif not self.connected_before and self.last_packet and wall - self.last_packet > RESTART_GAP_S:
            self.board.gap_opened(name, utc(self.last_packet), "the recorder was not running", ended=utc(wall))
        self.connected_before = True
        self.board.update(name, state="recording", clock=clock, last_error=None)
        log.info("%s: recording (segment times from the %s clock)", name, clock)

    def _open_segment(self, reader: StreamReader, timed) -> SegmentWriter:
        name = segment_name(timed.wall, self.names)
        self.names.add(name)
        end = next_boundary(timed.wall, self.camera.segment_seconds)
        writer = SegmentWriter(self.spool / spool_name(name), reader.stream, timed.wall, end)
        writer.first_seconds = timed.seconds
        return writer

    def _finish(self, writer: SegmentWriter, reader: StreamReader) -> None:
        path = writer.close()
        if writer.packets == 0:
            remove_quietly(path)
            return
        settled = reader.wall_of(writer.first_seconds)
        if abs(settled - writer.start_wall) >= 1.0:
            # the receive clock settled after the segment began (a burst of buffered packets on connecting):
            # name the segment by when its first frame was live
            name = segment_name(settled, self.names)
            self.names.add(name)
            renamed = path.with_name(spool_name(name))
            os.replace(path, renamed)
            path = renamed
        self.publisher.submit(path)
