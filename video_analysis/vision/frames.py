"""Decoding a video into timestamped frames on FFmpeg (through PyAV), in order, corrupt packets skipped.

- Times come from each frame's presentation timestamp, never ``index / fps``, so variable-frame-rate
  video gets true times.
- A packet that fails to decode is counted and skipped; decoding goes on after the damage. What decoded
  is summarised in a `DecodeReport` (decode_report.py) that decides whether a recording is complete or partial.
- Frames are turned to their displayed orientation (the display matrix), so boxes are in what a person sees.
- `iter_frames` decodes on a background thread through a queue bounded by bytes (32 frames of 8K would
  be 3 GB), so memory stays flat however long or large the video.

Opening a file and its stream metadata are in video_streams.py, choosing frames by time in sampling.py,
seeking to a few given times in seeking.py.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from video_analysis.vision.decode_report import DecodeReport
from video_analysis.vision.sampling import TimeSampler
from video_analysis.vision.video_streams import ffmpeg_reason, nominal_fps, open_video, time_origin

DEFAULT_QUEUE_BYTES = 256 * 1024 * 1024


@dataclass(frozen=True)
class Frame:
    index: int  # position among the frames that decoded
    timestamp: float  # seconds from the start of the video stream (PTS)
    image: np.ndarray  # BGR, displayed orientation


def displayed_image(image: np.ndarray, frame) -> np.ndarray:
    """The picture as displayed: PyAV's ``rotation`` is the counter-clockwise turn the display matrix asks for."""
    turns = int(round((getattr(frame, "rotation", 0) or 0) / 90.0)) % 4
    return np.ascontiguousarray(np.rot90(image, k=turns)) if turns else image


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
                yield Frame(index - 1, round(t, 6), displayed_image(image, frame))
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
            stopped(ffmpeg_reason(exc))
            return
        yield packet


def _timestamp(frame, time_base, origin, previous_t, fps) -> float:
    pts = frame.pts if frame.pts is not None else getattr(frame, "dts", None)
    if pts is not None and time_base:
        return float((pts - origin) * time_base)
    if previous_t is None:
        return 0.0
    return previous_t + (1.0 / fps if fps > 0 else 0.04)


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
