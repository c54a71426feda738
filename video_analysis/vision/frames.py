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

import logging
import math
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import av
import numpy as np

log = logging.getLogger(__name__)

DEFAULT_QUEUE_BYTES = 256 * 1024 * 1024
# A jump between consecutive decoded frames longer than this many frame intervals (and than GAP_MIN_S)
# is a gap: footage that is missing or did not decode.
GAP_FRAME_INTERVALS = 5
GAP_MIN_S = 1.0
# Decoded frames may end this much before the container's duration and still count as complete.
COVERAGE_TOLERANCE_S = 1.0


def allowed_shortfall_s(fps: float) -> float:
    """How much less than its duration a complete recording may cover: 1 s, or two frame intervals."""
    return max(COVERAGE_TOLERANCE_S, 2.0 / fps) if fps > 0 else COVERAGE_TOLERANCE_S


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
    fps = nominal_fps(stream)
    duration = video_duration_s(container, stream)
    return StreamInfo(container=container.format.name.split(",")[0], codec=stream.codec_context.name, width=width,
                      height=height, rotation=rotation, fps=round(fps, 3), duration_s=duration,
                      header_frames=int(stream.frames or 0), has_audio=bool(container.streams.audio))


def video_duration_s(container, stream) -> float | None:
    """The video stream's own duration where stated (an audio track may run longer), else the container's."""
    if stream.duration is not None and stream.time_base and stream.duration > 0:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / 1_000_000
    return None


def _display(image: np.ndarray, frame) -> np.ndarray:
    """The picture as displayed: PyAV's ``rotation`` is the counter-clockwise turn the display matrix asks for."""
    turns = int(round((getattr(frame, "rotation", 0) or 0) / 90.0)) % 4
    return np.ascontiguousarray(np.rot90(image, k=turns)) if turns else image


def time_origin(stream) -> int:
    """The PTS that every time in this module counts from: the stream's start time (0 when unstated)."""
    return stream.start_time or 0


def nominal_fps(stream) -> float:
    """The stream's stated (average) frame rate; 0 when it states none or a non-finite one."""
    rate = stream.average_rate or stream.guessed_rate
    fps = float(rate) if rate else 0.0
    return fps if math.isfinite(fps) and fps > 0 else 0.0


def sampling_period_s(sample_fps: float | None, video_fps: float = 0.0) -> float:
    """Seconds between analysed frames (0: every frame). With the video's rate known, the period is a whole
    number of its frames, the nearest to ``sample_fps``: a tracker's motion model expects even steps, and
    6 fps of a 25 fps video taken as alternating 4- and 5-frame steps tracked worse than 6.25 fps taken
    as every 4th frame (benchmarks/README.md, Tracking quality)."""
    if not sample_fps or sample_fps <= 0:
        return 0.0
    if video_fps > 0:
        if sample_fps >= video_fps:
            return 0.0
        return math.floor(video_fps / sample_fps + 0.5) / video_fps
    return 1.0 / sample_fps


def effective_sample_fps(sample_fps: float | None, video_fps: float) -> float:
    """Frames analysed per second of video: ``sample_fps`` as `sampling_period_s` rounds it."""
    period = sampling_period_s(sample_fps, video_fps)
    return 1.0 / period if period else video_fps


class TimeSampler:
    """Keeps about ``fps`` frames per second of video time (None/0: every frame); robust to variable rates.

    With ``video_fps``, the period is a whole number of the video's frames (`sampling_period_s`)."""

    def __init__(self, fps: float | None, video_fps: float = 0.0):
        self.period = sampling_period_s(fps, video_fps)
        self.next_t: float | None = None

    def keep(self, t: float) -> bool:
        if not self.period:
            return True
        if self.next_t is not None and t < self.next_t - 1e-6:
            return False
        self.next_t = (t if self.next_t is None else self.next_t) + self.period
        while self.next_t <= t:
            self.next_t += self.period
        return True


def decode_stream(path: Path, report: DecodeReport | None = None, sample_fps: float | None = None) -> Iterator[Frame]:
    """Frames that decode, in order, with PTS times; bad packets are counted in ``report`` and skipped.

    With ``sample_fps``, only about that many frames per second of video time are converted to images and
    yielded (see `TimeSampler`); every frame is still decoded and counted in the report.
    """
    container, stream = open_video(path)
    time_base, origin = stream.time_base, time_origin(stream)
    fps = nominal_fps(stream)
    report = report if report is not None else DecodeReport(fps)
    sampler = TimeSampler(sample_fps, fps)
    index = 0
    previous_t: float | None = None
    def stopped(reason: str) -> None:
        report.stopped_early = reason

    try:
        for packet in readable_packets(container, stream, stopped):
            try:
                decoded = packet.decode()
            except av.FFmpegError:
                report.errors += 1
                continue
            for frame in decoded:
                t = _timestamp(frame, time_base, origin, previous_t, fps)
                if previous_t is not None and t <= previous_t - 1e-6:
                    continue  # a duplicate or out-of-order time after damage: keep time monotonic
                previous_t = t
                report.add(t)
                index += 1
                if not sampler.keep(t):
                    continue  # decoded and counted, never converted: the costly part is skipped
                try:
                    image = frame.to_ndarray(format="bgr24")
                except (av.FFmpegError, ValueError):  # a frame in a format that cannot be converted
                    report.errors += 1
                    continue
                yield Frame(index - 1, round(t, 6), _display(image, frame))
    finally:
        container.close()


def readable_packets(container, stream, stopped: Callable[[str], None]) -> Iterator:
    """The stream's packets up to where the container cannot be read further (truncated, damaged index);
    ``stopped`` hears why it ended early."""
    packets = container.demux(stream)
    while True:
        try:
            packet = next(packets)
        except StopIteration:
            return
        except av.FFmpegError as exc:
            stopped(_ffmpeg_reason(exc))
            return
        yield packet


def _timestamp(frame, time_base, origin, previous_t, fps) -> float:
    pts = frame.pts if frame.pts is not None else getattr(frame, "dts", None)
    if pts is not None and time_base:
        return float((pts - origin) * time_base)
    if previous_t is None:
        return 0.0
    return previous_t + (1.0 / fps if fps > 0 else 0.04)


def sampled(frames: Iterable[Frame], sample_fps: float | None, video_fps: float = 0.0) -> Iterator[Frame]:
    """About ``sample_fps`` frames per second of video time (None/0: every frame)."""
    sampler = TimeSampler(sample_fps, video_fps)
    return (frame for frame in frames if sampler.keep(frame.timestamp))


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


# How far ahead frames_at decodes forward instead of seeking (a camera's GOP is typically 1-2 s).
FORWARD_DECODE_S = 2.0
# Where a seek lands after its target (no keyframe index, long GOPs), frames_at seeks this much earlier.
SEEK_BACK_S = (0.0, 5.0, 30.0)


def frames_at(path: Path, times: Iterable[float], tolerance_s: float = 1e-3) -> dict[float, np.ndarray]:
    """The frames shown at the given times (seconds, as `decode_stream` reports them), by seeking.

    Each time maps to the first decoded frame at or after it. Where a seek lands past its target or on no
    decodable frame (a stream without a keyframe index, such as MPEG-TS with one keyframe in minutes), it is
    retried from a few seconds earlier, then by decoding from the start up to the target: never further
    than the last time asked for. A time past the end is left out (and logged).
    """
    wanted = sorted(set(times))
    found: dict[float, np.ndarray] = {}
    if not wanted:
        return found
    with ExitStack() as stack:
        cursor = FrameCursor(*_opened(stack, path))
        from_start: FrameCursor | None = None
        for target in wanted:
            image = _seek_and_read(cursor, target, tolerance_s)
            if image is None:
                if from_start is None:
                    from_start = FrameCursor(*_opened(stack, path))
                    from_start.read_from_start()
                image = from_start.first_at_or_after(target, tolerance_s)
            if image is not None:
                found[target] = image
    missing = [t for t in wanted if t not in found]
    if missing:
        log.warning("%s: no frame decodes at %d of %d requested times (first %.2f s)", path.name, len(missing),
                    len(wanted), missing[0])
    return found


def _opened(stack: ExitStack, path: Path):
    container, stream = open_video(path)
    stack.callback(container.close)
    return container, stream


def _seek_and_read(cursor: FrameCursor, target: float, tolerance_s: float) -> np.ndarray | None:
    for back in SEEK_BACK_S:
        near = cursor.position is not None and 0 <= target - cursor.position <= FORWARD_DECODE_S
        if back or not near:  # decode forward when the target is near (same GOP, most likely)
            cursor.seek(max(0.0, target - back))
            if cursor.position is None or cursor.position > target + tolerance_s:
                continue
        image = cursor.first_at_or_after(target, tolerance_s)
        if image is not None:
            return image
    return None


class FrameCursor:
    """Frames of one stream read forward from the last seek, remembering where decoding stands."""

    def __init__(self, container, stream):
        self.container, self.stream = container, stream
        self.origin = time_origin(stream)
        self.position: float | None = None  # time of the next frame (or of the last one read)
        self._frames: Iterator | None = None
        self._pending = None  # a frame read ahead by `seek`, not yet handed out

    def seek(self, target: float) -> None:
        """Seek to the keyframe at or before ``target``; `position` is where decoding landed."""
        self._pending, self.position = None, None
        try:
            self.container.seek(int(target / self.stream.time_base) + self.origin, stream=self.stream,
                                backward=True)
        except av.FFmpegError:
            self._frames = None
            return
        self._frames = self._decode()
        self._pending = self._next()
        if self._pending is not None:
            self.position = self._time(self._pending)

    def read_from_start(self) -> None:
        """Read from the first frame of a freshly opened container, without seeking."""
        self._pending, self.position = None, None
        self._frames = self._decode()

    def _decode(self):
        for packet in self.container.demux(self.stream):
            try:
                decoded = packet.decode()
            except av.FFmpegError:
                continue
            yield from decoded

    def _next(self):
        if self._frames is None:
            return None
        try:
            for frame in self._frames:
                if frame.pts is not None:
                    return frame
        except av.FFmpegError:
            pass
        self._frames = None
        return None

    def _time(self, frame) -> float:
        return float((frame.pts - self.origin) * self.stream.time_base)

    def first_at_or_after(self, target: float, tolerance_s: float = 1e-3) -> np.ndarray | None:
        """The image of the first frame at or after ``target``, decoding forward; None past the end."""
        while True:
            frame, self._pending = self._pending or self._next(), None
            if frame is None:
                return None
            self.position = self._time(frame)
            if self.position >= target - tolerance_s:
                try:
                    return _display(frame.to_ndarray(format="bgr24"), frame)
                except (av.FFmpegError, ValueError):
                    return None


def _ffmpeg_reason(exc: Exception) -> str:
    text = getattr(exc, "strerror", None) or str(exc)
    return text.split(": '")[0].strip() or type(exc).__name__
