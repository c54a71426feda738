"""Decoding on FFmpeg (through PyAV): frames with PTS timestamps, corrupt packets skipped, seeking by time.

- Times come from each frame's presentation timestamp, never ``index / fps``, so variable-frame-rate
  video gets true times.
- A packet that fails to decode is counted and skipped; decoding goes on after the damage. What decoded
  is summarised in a `DecodeReport` (frames, errors, covered time, gaps) that decides whether a
  recording is complete or partial.
- Frames are turned to their displayed orientation (the display matrix), so boxes are in what a person sees.
- `iter_frames` decodes on a background thread through a queue bounded by bytes (32 frames of 8K would
  be 3 GB), so memory stays flat however long or large the video.
- `frames_at` seeks to a few timestamps (thumbnails, keyframes) without decoding the whole video.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import av
import numpy as np

DEFAULT_QUEUE_BYTES = 256 * 1024 * 1024
# A jump between consecutive decoded frames longer than this many frame intervals (and than GAP_MIN_S)
# is a gap: footage that is missing or did not decode.
GAP_FRAME_INTERVALS = 5
GAP_MIN_S = 1.0


class DecodeError(ValueError):
    """The file cannot be opened as video at all; the message says why in words a user can act on."""


@dataclass(frozen=True)
class Frame:
    index: int  # position among the frames that decoded
    timestamp: float  # seconds from the start of the video stream (PTS)
    image: np.ndarray  # BGR, displayed orientation


@dataclass
class DecodeReport:
    """What a pass over a video actually decoded."""

    nominal_fps: float
    frames: int = 0
    errors: int = 0  # packets that failed to decode (skipped)
    first_t: float | None = None
    last_t: float | None = None
    gaps: list[tuple[float, float]] = field(default_factory=list)
    stopped_early: str | None = None  # the container could not be read past some point

    def add(self, t: float) -> None:
        if self.last_t is not None and t - self.last_t > self.gap_threshold_s:
            self.gaps.append((round(self.last_t, 3), round(t, 3)))
        self.first_t = t if self.first_t is None else min(self.first_t, t)
        self.last_t = t if self.last_t is None else max(self.last_t, t)
        self.frames += 1

    @property
    def gap_threshold_s(self) -> float:
        interval = 1.0 / self.nominal_fps if self.nominal_fps > 0 else 0.0
        return max(GAP_MIN_S, GAP_FRAME_INTERVALS * interval)

    @property
    def covered_s(self) -> float:
        """Seconds of the video that decoded: its span minus the gaps, plus the last frame's own duration."""
        if self.first_t is None:
            return 0.0
        interval = 1.0 / self.nominal_fps if self.nominal_fps > 0 else 0.0
        span = self.last_t - self.first_t + interval
        return max(0.0, span - sum(end - start for start, end in self.gaps))


@dataclass(frozen=True)
class StreamInfo:
    container: str
    codec: str
    width: int  # displayed
    height: int
    rotation: int  # counter-clockwise degrees the stored picture is turned for display (0, 90, 180, 270)
    fps: float  # nominal (average) rate; 0 when the file states none
    duration_s: float | None  # the container's duration
    header_frames: int  # what the container claims; a hint, never trusted
    has_audio: bool


def open_video(path: Path):
    """The opened container and its first video stream; DecodeError for anything that is not video."""
    try:
        container = av.open(str(path), metadata_errors="ignore")
    except (av.FFmpegError, UnicodeDecodeError) as exc:
        raise DecodeError(f"the file cannot be opened as a media container ({_ffmpeg_reason(exc)})") from exc
    if not container.streams.video:
        has_audio = bool(container.streams.audio)
        container.close()
        raise DecodeError("no video stream (audio only)" if has_audio else "no video stream")
    stream = container.streams.video[0]
    if stream.codec_context is None or not stream.codec_context.name:
        container.close()
        raise DecodeError("the video stream's codec is unknown")
    stream.thread_type = "AUTO"
    return container, stream


def stream_info(container, stream, rotation: int = 0) -> StreamInfo:
    """What the container says of its video stream; ``rotation`` comes from a decoded frame."""
    width, height = stream.codec_context.width, stream.codec_context.height
    if rotation in (90, 270):
        width, height = height, width
    rate = stream.average_rate or stream.guessed_rate
    fps = float(rate) if rate else 0.0
    if not math.isfinite(fps):
        fps = 0.0
    if container.duration is not None:
        duration = container.duration / 1_000_000
    elif stream.duration is not None and stream.time_base:
        duration = float(stream.duration * stream.time_base)
    else:
        duration = None
    return StreamInfo(container=container.format.name.split(",")[0], codec=stream.codec_context.name, width=width,
                      height=height, rotation=rotation, fps=round(fps, 3), duration_s=duration,
                      header_frames=int(stream.frames or 0), has_audio=bool(container.streams.audio))


def _display(image: np.ndarray, frame) -> np.ndarray:
    """The picture as displayed: PyAV's ``rotation`` is the counter-clockwise turn the display matrix asks for."""
    turns = int(round((getattr(frame, "rotation", 0) or 0) / 90.0)) % 4
    return np.ascontiguousarray(np.rot90(image, k=turns)) if turns else image


def decode_stream(path: Path, report: DecodeReport | None = None, sample_fps: float | None = None) -> Iterator[Frame]:
    """Frames that decode, in order, with PTS times; bad packets are counted in ``report`` and skipped.

    With ``sample_fps``, only about that many frames per second of video time are converted to images and
    yielded (see `sampled`); every frame is still decoded and counted in the report.
    """
    container, stream = open_video(path)
    time_base = stream.time_base
    start = stream.start_time if stream.start_time is not None else None
    nominal = float(stream.average_rate or stream.guessed_rate or 0) or 0.0
    report = report if report is not None else DecodeReport(nominal)
    index = 0
    previous_t: float | None = None
    period = 1.0 / sample_fps if sample_fps and sample_fps > 0 else 0.0
    next_t: float | None = None
    try:
        packets = container.demux(stream)
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                break
            except av.FFmpegError as exc:  # the container cannot be read further (truncated, damaged index)
                report.stopped_early = _ffmpeg_reason(exc)
                break
            try:
                decoded = packet.decode()
            except av.FFmpegError:
                report.errors += 1
                continue
            for frame in decoded:
                t = _timestamp(frame, time_base, start, previous_t, nominal)
                if start is None and frame.pts is not None:
                    start = frame.pts
                    t = 0.0
                if previous_t is not None and t <= previous_t - 1e-6:
                    continue  # a duplicate or out-of-order time after damage: keep time monotonic
                previous_t = t
                report.add(t)
                index += 1
                if period:
                    if next_t is not None and t < next_t - 1e-6:
                        continue  # decoded and counted, never converted: the costly part is skipped
                    next_t = (t if next_t is None else next_t) + period
                    while next_t <= t:
                        next_t += period
                image = frame.to_ndarray(format="bgr24")
                yield Frame(index - 1, round(t, 6), _display(image, frame))
    finally:
        container.close()


def _timestamp(frame, time_base, start, previous_t, nominal_fps) -> float:
    pts = frame.pts if frame.pts is not None else getattr(frame, "dts", None)
    if pts is not None and time_base:
        return float((pts - (start or 0)) * time_base)
    if previous_t is None:
        return 0.0
    return previous_t + (1.0 / nominal_fps if nominal_fps > 0 else 0.04)


def sampled(frames: Iterable[Frame], sample_fps: float | None) -> Iterator[Frame]:
    """About ``sample_fps`` frames per second of video time (None/0: every frame); robust to variable rates."""
    if not sample_fps or sample_fps <= 0:
        yield from frames
        return
    period = 1.0 / sample_fps
    next_t = None
    for frame in frames:
        if next_t is None or frame.timestamp >= next_t - 1e-6:
            yield frame
            next_t = (frame.timestamp if next_t is None else next_t) + period
            while next_t <= frame.timestamp:
                next_t += period


class _ByteBoundedQueue:
    """A FIFO that blocks producers once the items it holds reach ``max_bytes`` (at least one item fits)."""

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self.items: deque = deque()
        self.bytes = 0
        self.cond = threading.Condition()

    def put(self, item, size: int, stop: threading.Event) -> None:
        with self.cond:
            while self.items and self.bytes + size > self.max_bytes and not stop.is_set():
                self.cond.wait(0.1)
            self.items.append((item, size))
            self.bytes += size
            self.cond.notify_all()

    def get(self):
        with self.cond:
            while not self.items:
                self.cond.wait()
            item, size = self.items.popleft()
            self.bytes -= size
            self.cond.notify_all()
            return item


_END = object()


def iter_frames(path: Path, sample_fps: float | None = None, *, report: DecodeReport | None = None,
                max_queue_bytes: int = DEFAULT_QUEUE_BYTES) -> Iterator[Frame]:
    """Sampled frames in order, decoded on a background thread while the caller works on earlier ones."""
    container, stream = open_video(path)  # fail here, in the caller, for files that are not video
    container.close()
    queue = _ByteBoundedQueue(max_queue_bytes)
    stop = threading.Event()

    def decode():
        try:
            for frame in decode_stream(path, report, sample_fps):
                if stop.is_set():
                    break
                queue.put(frame, frame.image.nbytes, stop)
        except BaseException as exc:  # surfaced in the consumer
            queue.put(exc, 0, stop)
        finally:
            queue.put(_END, 0, stop)

    worker = threading.Thread(target=decode, name="frame-decoder", daemon=True)
    worker.start()
    try:
        while (item := queue.get()) is not _END:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while worker.is_alive():  # drain so the decoder is never stuck on a full queue
            with queue.cond:
                queue.items.clear()
                queue.bytes = 0
                queue.cond.notify_all()
            worker.join(0.1)


def batched(frames: Iterator[Frame], size: int) -> Iterator[list[Frame]]:
    batch: list[Frame] = []
    for frame in frames:
        batch.append(frame)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def frames_at(path: Path, times: Iterable[float], tolerance_s: float = 0.05) -> dict[float, np.ndarray]:
    """The frames shown at the given times (seconds), by seeking: a few frames without a full decode.

    Each time maps to the first decoded frame at or after it (within ``tolerance_s`` before it). Where a
    seek lands past the last keyframe (streams without an index, such as MPEG-TS with long GOPs), the
    remaining times are read in one sequential pass that stops at the last of them.
    """
    wanted = sorted(set(times))
    found: dict[float, np.ndarray] = {}
    if not wanted:
        return found
    container, stream = open_video(path)
    try:
        decoded = _FrameCursor(container, stream)
        for target in wanted:
            # Decode forward when the target is near (same GOP, most likely); seek when it is far ahead.
            if decoded.position is None or not 0 <= target - decoded.position <= FORWARD_DECODE_S:
                decoded.seek(target)
            image = decoded.first_at_or_after(target, tolerance_s)
            if image is not None:
                found[target] = image
    finally:
        container.close()
    missing = [t for t in wanted if t not in found]
    if missing:
        pending = list(missing)
        for frame in decode_stream(path):
            while pending and frame.timestamp >= pending[0] - tolerance_s:
                found[pending.pop(0)] = frame.image
            if not pending:
                break
    return found


# How far ahead frames_at decodes forward instead of seeking (a camera's GOP is typically 1-2 s).
FORWARD_DECODE_S = 2.0


class _FrameCursor:
    """Frames of one stream read forward from the last seek, remembering where decoding stands."""

    def __init__(self, container, stream):
        self.container, self.stream = container, stream
        self.start = stream.start_time or 0
        self.position: float | None = None
        self.frames = None

    def seek(self, target: float) -> None:
        try:
            self.container.seek(int(target / self.stream.time_base) + self.start, stream=self.stream, backward=True)
        except av.FFmpegError:
            self.frames, self.position = None, None
            return
        self.frames, self.position = self._decode(), None

    def _decode(self):
        for packet in self.container.demux(self.stream):
            try:
                decoded = packet.decode()
            except av.FFmpegError:
                continue
            yield from decoded

    def first_at_or_after(self, target: float, tolerance_s: float) -> np.ndarray | None:
        if self.frames is None:
            return None
        try:
            for frame in self.frames:
                if frame.pts is None:
                    continue
                self.position = float((frame.pts - self.start) * self.stream.time_base)
                if self.position >= target - tolerance_s:
                    return _display(frame.to_ndarray(format="bgr24"), frame)
        except av.FFmpegError:
            pass
        self.frames = None
        return None


def _seek_frame(container, stream, target: float, tolerance_s: float) -> np.ndarray | None:
    time_base = stream.time_base
    start = stream.start_time or 0
    try:
        container.seek(int(target / time_base) + start, stream=stream, backward=True)
        for packet in container.demux(stream):
            try:
                decoded = packet.decode()
            except av.FFmpegError:
                continue
            for frame in decoded:
                if frame.pts is not None and float((frame.pts - start) * time_base) >= target - tolerance_s:
                    return _display(frame.to_ndarray(format="bgr24"), frame)
    except av.FFmpegError:
        return None
    return None


def _ffmpeg_reason(exc: Exception) -> str:
    text = getattr(exc, "strerror", None) or str(exc)
    return text.split(": '")[0].strip() or type(exc).__name__
