"""`reelgraph record`: each camera's stream cut into segments and published where uploads land.

One thread per camera, each on its own: a camera that fails never stops another. Analysis runs elsewhere
(the upload sensor finds the published segments), so nothing it does can stall recording.

A segment is published only when closed, by the camera's own publisher thread: renamed into the inbox (same
file system, so atomic), or uploaded to S3 (multipart for large files) and then removed. A segment that cannot
be published stays in the spool and is tried again, and at the next start.
"""

from __future__ import annotations

import fcntl
import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
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
from video_analysis.runtime import disk
from video_analysis.runtime.disk import DiskFloor
from video_analysis.runtime.object_store import LocalFolderStore, ObjectStore
from video_analysis.runtime.redact import redact
from video_analysis.store.cameras import LeftBehind

log = logging.getLogger(__name__)

BACKOFF_FIRST_S = 1.0
BACKOFF_MAX_S = 10.0
# Last-packet times reach the health board at most this often (they change with every packet).
PACKET_REPORT_S = 1.0
# A segment that could not be published is tried again after this long.
PUBLISH_RETRY_S = 30.0
# At a restart, a longer span since the last packet an earlier recorder reported is a gap.
RESTART_GAP_S = 1.0


def spool_folder(store: ObjectStore, spool_root: Path, camera: str) -> Path:
    """Where a camera's segments are written: beside their final place in the inbox (an atomic rename publishes
    them), or a local folder when they go to S3."""
    folder = store.root / "cameras" / camera if isinstance(store, LocalFolderStore) else Path(spool_root) / camera
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def failure_reason(exc: Exception) -> str:
    """What went wrong, for a gap's reason and the status page: an OS or FFmpeg error names its file by name
    alone (the spool's absolute path says nothing to the reader), secrets masked."""
    filename, strerror = getattr(exc, "filename", None), getattr(exc, "strerror", None)
    if filename and strerror:
        names = [Path(os.fsdecode(f)).name for f in (filename, getattr(exc, "filename2", None)) if f]
        return redact(f"{strerror} ({' -> '.join(names)})")
    return redact(str(exc))


def _publish_locally(path: Path, root: Path, key: str) -> str:
    """``path`` published under ``key`` in a local store without ever replacing a published segment: a hard
    link is created only where no file is (a segment of the same start, from a recorder restarted within the
    second, gets a suffix), then the spool's name is removed. Returns the key used."""
    stem, suffix = key.rsplit(".", 1) if "." in key.rsplit("/", 1)[-1] else (key, "")
    for attempt in range(1, 100):
        candidate = key if attempt == 1 else f"{stem}-{attempt}.{suffix}" if suffix else f"{stem}-{attempt}"
        try:
            os.link(path, root / candidate)
        except FileExistsError:
            continue
        os.unlink(path)
        return candidate
    raise FileExistsError(f"{key} and 98 more names like it are taken")


DEFAULT_STOP_GRACE_S = 120.0  # a 10-minute segment at 4 Mbit/s is 300 MB: minutes on a slow uplink


class Publisher(threading.Thread):
    """Publishes one camera's closed segments, in order, on a thread of its own: a slow upload or a store that is
    away never holds up reading any camera's stream. A segment that cannot be published waits and is tried
    again; whatever is still waiting when the recorder stops is published by its next start."""

    def __init__(self, store: ObjectStore, camera: str, on_published):
        super().__init__(name=f"publish-{camera}", daemon=True)
        self.store = store
        self.camera = camera
        self.on_published = on_published  # (key) -> None
        self._queue: queue.Queue[Path | None] = queue.Queue()
        self._pending: list[Path] = []
        self._stopping = False

    def submit(self, path: Path) -> None:
        self._queue.put(path)

    def close(self, timeout_s: float) -> None:
        self._queue.put(None)
        self.join(timeout_s)
        if self.is_alive():
            log.warning("%s: segments still being published at stop stay in the spool for the next start",
                        self.camera)

    def run(self) -> None:
        while True:
            try:
                item = self._queue.get(timeout=PUBLISH_RETRY_S if self._pending else None)
            except queue.Empty:
                item = ...  # time to try the waiting ones again
            if item is None:
                self._stopping = True
            elif item is not ...:
                self._pending.append(item)
            # in order, but one that cannot be published (a permission the store refuses for it alone) holds up
            # none after it: it waits for the next round
            self._pending = [path for path in self._pending if not self._publish(path)]
            if self._stopping:
                return

    def _publish(self, path: Path) -> bool:
        key = segment_key(self.camera, published_name(path) or path.name)
        try:
            if isinstance(self.store, LocalFolderStore):
                key = _publish_locally(path, self.store.root, key)
            else:
                self.store.put(path, key)
                remove_quietly(path)
        except FileNotFoundError:
            log.error("%s: %s is gone from the spool before it was published", self.camera, path.name)
            return True
        except Exception as exc:  # noqa: BLE001 - the store may be away: keep the file, try again
            log.error("%s: cannot publish %s (%s); kept in %s and tried again", self.camera, key,
                      redact(str(exc)), path.parent)
            return self._stopping  # at stop, leave it for the next start
        log.info("%s: published %s", self.camera, key)
        self.on_published(key)
        return True


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
            self._freeing = _in_background(lambda: self.make_room(wanted, volume))
        try:
            freed = self._freeing.result(timeout=MAKE_ROOM_WAIT_S) or 0
        except TimeoutError:
            return None
        except Exception as exc:  # noqa: BLE001 - retention failed: recording pauses instead
            log.warning("disk below its floor and retention could not free space: %s", exc)
            freed = 0
        self._freeing = None
        return freed


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
        writer: SegmentWriter | None = None
        self.paused_since = None  # (the reconnection closes every open gap: a disk still short pauses it anew)
        first = first_of_connection = True
        reported = 0.0
        reason = "the recorder stopped"
        try:
            try:
                for timed in reader.packets():
                    self._take_earlier()
                    if first:
                        self._first_packet(timed.wall, reader.clock)
                        first = False
                    if timed.jump and not first_of_connection:
                        self._jumped(timed)
                        if writer is not None:
                            writer.continue_after_jump(timed.packet)
                    first_of_connection = False
                    self.last_packet = timed.wall
                    if self.room is not None and (writer is None or timed.keyframe):
                        full = self.room.short()
                        if full:
                            if writer is not None:  # what it holds is whole up to here: published as it is
                                self._finish(writer, reader)
                                writer = None
                            self._pause(full, timed.wall)
                            continue
                        if self.paused_since is not None:
                            self._resume(timed.wall)
                    if writer is None or (timed.keyframe and timed.wall >= writer.planned_end):
                        if writer is not None:
                            self._finish(writer, reader)
                            writer = None
                        if not timed.keyframe:
                            continue  # a segment starts at a keyframe, to play on its own
                        writer = self._open_segment(reader, timed)
                    writer.write(timed.packet, timed.wall)
                    if timed.wall - reported >= PACKET_REPORT_S:
                        reported = timed.wall
                        self.board.update(name, last_packet_at=utc(timed.wall))
            except StreamLost as exc:
                reason = str(exc)
            finally:
                if writer is not None:
                    self._finish(writer, reader)
        finally:
            reader.close()
        if self.last_packet is not None and not first:
            self.board.update(name, last_packet_at=utc(self.last_packet))
        return reason

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


def _in_background(call) -> Future:
    """``call()`` on a daemon thread: a stop never waits for it (a database held by a migration answers in
    minutes, and the process must exit at SIGTERM all the same)."""
    future: Future = Future()

    def run():
        try:
            future.set_result(call())
        except Exception as exc:  # noqa: BLE001 - handed to whoever reads the future
            future.set_exception(exc)

    threading.Thread(target=run, name="earlier-state", daemon=True).start()
    return future


def _one(everyone: Future, camera: str) -> Future:
    """The future state of one camera, from the future state of every camera."""
    one: Future = Future()
    everyone.add_done_callback(lambda done: one.set_result(
        (done.result() or {}).get(camera) if done.exception() is None else None))
    return one


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
        previous = _in_background(self.board.left_behind)
        for camera in self.cameras:
            spool = spool_folder(self.store, self.spool_root, camera.name)
            lock = SpoolLock(spool)
            if not lock.acquire():
                log.error("%s: another recorder records this camera (%s is locked); this one leaves it",
                          camera.name, lock.path)
                self.board.forget(camera.name)
                continue
            locks.append(lock)
            threads.append(CameraRecorder(camera, self.store, spool, self.board, stop, _one(previous, camera.name),
                                          stop_grace_s=self.stop_grace_s, room=self.room))
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


class RecorderBusy(RuntimeError):
    """Another recorder holds every camera."""
