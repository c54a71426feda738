"""Stream sampled frames from a video with decoding overlapped with whatever consumes them.

Memory stays flat however long the video is: a bounded queue holds at most a few batches, and
frames that are not sampled are only grabbed (demuxed and decoded, never converted or copied).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

_END = object()


@dataclass(frozen=True)
class Frame:
    index: int
    timestamp: float
    image: np.ndarray  # BGR


def sample_step(fps: float, sample_fps: float | None) -> int:
    """Every n-th frame so that about ``sample_fps`` frames per second are kept (None/0: every frame)."""
    if not sample_fps or sample_fps <= 0 or sample_fps >= fps:
        return 1
    return max(1, round(fps / sample_fps))


def iter_frames(path: Path, sample_fps: float | None = None, queue_size: int = 32) -> Iterator[Frame]:
    """Sampled frames in order, decoded on a background thread."""
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise ValueError(f"cannot open {path}")
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    step = sample_step(fps, sample_fps)
    frames: queue.Queue = queue.Queue(maxsize=queue_size)
    stop = threading.Event()

    def decode():
        index = 0
        try:
            while not stop.is_set() and capture.grab():
                if index % step == 0:
                    ok, image = capture.retrieve()
                    if ok:
                        frames.put(Frame(index, index / fps, image))
                index += 1
        except BaseException as exc:  # surfaced in the consumer
            frames.put(exc)
        finally:
            frames.put(_END)

    worker = threading.Thread(target=decode, name="frame-decoder", daemon=True)
    worker.start()
    try:
        while (item := frames.get()) is not _END:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while worker.is_alive():  # drain so the decoder is never stuck on a full queue
            try:
                frames.get(timeout=0.1)
            except queue.Empty:
                pass
        worker.join()
        capture.release()


def batched(frames: Iterator[Frame], size: int) -> Iterator[list[Frame]]:
    batch: list[Frame] = []
    for frame in frames:
        batch.append(frame)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def read_frames(path: Path, indices: set[int]) -> dict[int, np.ndarray]:
    """The given frames only, in one sequential pass (for best-frame thumbnails)."""
    wanted, found = set(indices), {}
    capture = cv2.VideoCapture(str(path))
    try:
        index, last = 0, max(wanted, default=-1)
        while index <= last and capture.grab():
            if index in wanted:
                ok, image = capture.retrieve()
                if ok:
                    found[index] = image
            index += 1
    finally:
        capture.release()
    return found
