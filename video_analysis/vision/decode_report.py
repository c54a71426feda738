"""What one pass over a video decoded (frames, errors, covered time, gaps): decides complete versus partial."""

from __future__ import annotations

from dataclasses import dataclass, field

# A jump between consecutive decoded frames longer than this many frame intervals (and than GAP_MIN_S)
# is a gap: footage that is missing or did not decode.
GAP_FRAME_INTERVALS = 5
GAP_MIN_S = 1.0
# Decoded frames may end this much before the container's duration and still count as complete.
COVERAGE_TOLERANCE_S = 1.0


def allowed_shortfall_s(fps: float) -> float:
    """How much less than its duration a complete recording may cover: 1 s, or two frame intervals."""
    return max(COVERAGE_TOLERANCE_S, 2.0 / fps) if fps > 0 else COVERAGE_TOLERANCE_S


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
