"""Choosing which frames to analyse by video time (about N a second, in even steps), robust to variable rates."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from video_analysis.vision.frames import Frame


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


def sampled(frames: Iterable[Frame], sample_fps: float | None, video_fps: float = 0.0) -> Iterator[Frame]:
    """About ``sample_fps`` frames per second of video time (None/0: every frame)."""
    sampler = TimeSampler(sample_fps, video_fps)
    return (frame for frame in frames if sampler.keep(frame.timestamp))
