"""Frames at a few given times (thumbnails, keyframes) by seeking, without decoding the whole video."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from contextlib import ExitStack
from pathlib import Path

import av
import numpy as np

from video_analysis.vision.frames import displayed_image
from video_analysis.vision.video_streams import open_video, time_origin

log = logging.getLogger(__name__)

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
                    return displayed_image(frame.to_ndarray(format="bgr24"), frame)
                except (av.FFmpegError, ValueError):
                    return None
