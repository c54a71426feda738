"""Things that appear in a scene and stay: the static-object cue behind unattended-object incidents.

A detector trained on COCO sees a bag on the floor only now and then, or never (small, dark, half hidden).
What a person notices is that something new is there and does not move. This is the dual-background method
(Porikli, Ivanov and Haga, 2008): two OpenCV MOG2 background models over the analysed frames, one learning
over minutes and one over seconds. A pixel that differs from the long-term background but already belongs to
the short-term one has changed and then stayed still. Evidence accumulates per pixel while that holds and
drains when it does not, so a passer-by who pauses for a second leaves nothing, while an object that stays
for ``confirm_seconds`` becomes a static region, followed from sample to sample until it goes.

Cameras change their exposure when someone dark or bright walks in, which changes every pixel at once;
each frame's brightness is first matched to a slow reference (the median ratio, so the new object itself
does not sway it), and a change covering most of the frame resets the evidence instead of becoming a region.

Something that was there when the video began and then left leaves a "ghost" in the long-term
background: a still change too, but one that took edges away rather than bringing them; it is not kept.

The cue is class-agnostic: a person standing still or a car that parks is static too. The incident rules
tell them apart with the detector's boxes (events/incidents.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from video_analysis.vision.detections import box_iou

WORK_WIDTH = 320  # pixels: the models run on a small copy of each frame


@dataclass(frozen=True)
class StaticSettings:
    long_seconds: float = 300.0  # the long-term background's memory
    short_seconds: float = 2.0  # the short-term background's memory
    confirm_seconds: float = 4.0  # still this long before a change counts as a static region
    min_area: float = 0.0008  # of the frame: smaller regions are noise
    max_area: float = 0.15  # of the frame: larger ones are lighting or camera changes
    variance_threshold: float = 25.0  # MOG2's squared Mahalanobis distance for "differs"


@dataclass
class StaticRegion:
    """Something that appeared and stayed still: where (pixels of the full frame) and for how long."""

    first_t: float  # when it appeared (its first still sample, before confirmation)
    last_t: float  # the last sample it was still seen
    xyxy: tuple[float, float, float, float]
    samples: int = 0  # samples it was seen on after confirmation

    def as_dict(self) -> dict:
        return {"first_t": round(self.first_t, 3), "last_t": round(self.last_t, 3),
                "box": [round(v, 1) for v in self.xyxy], "samples": self.samples}


def _edges(image: np.ndarray) -> np.ndarray:
    """Gradient magnitude of the grey picture: an object brings its edges, a lighting change mostly does not."""
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY).astype(np.float32)
    magnitude = cv2.magnitude(cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=3), cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=3))
    return np.clip(magnitude / 4.0, 0, 255).astype(np.uint8)


@dataclass
class StaticObjectFinder:
    """Fed the analysed frames in order (``add``); ``regions()`` lists what appeared and stayed."""

    sample_fps: float
    settings: StaticSettings = field(default_factory=StaticSettings)

    def __post_init__(self):
        s = self.settings
        rate = max(self.sample_fps, 0.1)
        self._long = cv2.createBackgroundSubtractorMOG2(history=max(2, int(s.long_seconds * rate)),
                                                        varThreshold=s.variance_threshold, detectShadows=False)
        # MOG2 takes a new colour into the background once its weight passes 1 - backgroundRatio (0.1 by
        # default: after a tenth of the history). At 0.6 the long-term model keeps a left object foreground for
        # about half of ``long_seconds``.
        self._long.setBackgroundRatio(0.6)
        self._short = cv2.createBackgroundSubtractorMOG2(history=max(2, int(s.short_seconds * rate)),
                                                         varThreshold=s.variance_threshold, detectShadows=False)
        self._long_rate = 1.0 / max(2.0, s.long_seconds * rate)
        self._short_rate = 1.0 / max(2.0, s.short_seconds * rate)
        self._confirm = max(2, int(round(s.confirm_seconds * rate)))
        self._evidence: np.ndarray | None = None
        self._scale = 1.0
        self._open: list[StaticRegion] = []
        self._closed: list[StaticRegion] = []
        self._last_t = 0.0
        self._reference: np.ndarray | None = None  # slow mean of the gain-corrected frames, for the gain
        self._size: tuple[int, int] | None = None

    def add(self, image: np.ndarray, t: float) -> None:
        height, width = image.shape[:2]
        if self._size is None:  # the working size is fixed by the first frame, whatever later frames are
            self._scale = width / WORK_WIDTH
            self._size = (WORK_WIDTH, max(1, round(height / self._scale)))
        small = cv2.resize(image, self._size, interpolation=cv2.INTER_AREA)
        small = self._match_exposure(cv2.GaussianBlur(small, (5, 5), 0).astype(np.float32))
        small = _edges(small)
        changed = self._long.apply(small, learningRate=self._long_rate) > 0
        moving = self._short.apply(small, learningRate=self._short_rate) > 0
        still = changed & ~moving
        if self._evidence is None or self._evidence.shape != still.shape:
            self._evidence = np.zeros(still.shape, np.int32)
        if still.mean() > 0.5:  # most of the picture changed at once: the camera, not the scene
            self._evidence[:] = 0
            self._track([], t)
            return
        # Evidence grows while a pixel stays changed-and-still, and drains twice as fast otherwise.
        self._evidence = np.where(still, self._evidence + 1, np.maximum(self._evidence - 2, 0))
        self._track(self._components(self._evidence >= self._confirm, small), t)
        self._last_t = t

    def _match_exposure(self, small: np.ndarray) -> np.ndarray:
        """The frame scaled so its brightness matches the reference: the median of per-pixel ratios is the
        camera's gain change, whatever part of the scene something new covers."""
        if self._reference is None or float(self._reference.mean()) < 8.0:  # none yet, or a black start
            self._reference = small.copy()
        else:
            lit = (self._reference > 16) & (small > 16)  # black pixels say nothing of the gain
            ratio = float(np.median(self._reference[lit] / small[lit])) if lit.sum() > 0.1 * lit.size else 1.0
            small = np.clip(small * min(2.0, max(0.5, ratio)), 0, 255)
            self._reference += (small - self._reference) * 0.05
        return small.astype(np.uint8)

    def _components(self, mask: np.ndarray, edges: np.ndarray) -> list[np.ndarray]:
        """Boxes of the still regions that something brought: a region whose edges are in the long-term
        background but gone from the frame is a ghost of something that left (or was there when the video
        began), not an object that appeared."""
        mask = cv2.morphologyEx(mask.astype(np.uint8), cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8))
        mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
        count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        area = mask.shape[0] * mask.shape[1]
        background = None
        boxes = []
        for label, (x, y, w, h, pixels) in enumerate(stats[1:count], start=1):
            if not self.settings.min_area * area <= pixels <= self.settings.max_area * area:
                continue
            if background is None:
                background = self._long.getBackgroundImage()
            inside = labels[y:y + h, x:x + w] == label
            if edges[y:y + h, x:x + w][inside].mean() <= background[y:y + h, x:x + w][inside].mean():
                continue
            boxes.append(np.array([x, y, x + w, y + h], np.float64) * self._scale)
        return boxes

    def _track(self, boxes: list[np.ndarray], t: float) -> None:
        seen = set()
        for box in boxes:
            overlaps = box_iou(box, np.array([r.xyxy for r in self._open]))[0] if self._open else np.zeros(0)
            best = int(np.argmax(overlaps)) if len(overlaps) else None
            if best is not None and best not in seen and overlaps[best] >= 0.3:
                region = self._open[best]
                region.last_t, region.samples = t, region.samples + 1
                region.xyxy = tuple(float(v) for v in box)
                seen.add(best)
            else:
                appeared = t - (self._confirm - 1) / max(self.sample_fps, 0.1)
                self._open.append(StaticRegion(max(0.0, appeared), t, tuple(float(v) for v in box), 1))
                seen.add(len(self._open) - 1)
        grace = 2.0  # seconds a region may go unseen (someone walks in front of it) before it is closed
        still_open = []
        for region in self._open:
            (still_open if t - region.last_t <= grace else self._closed).append(region)
        self._open = still_open

    def regions(self, min_seconds: float = 0.0) -> list[StaticRegion]:
        found = sorted(self._closed + self._open, key=lambda r: r.first_t)
        return [r for r in found if r.last_t - r.first_t >= min_seconds]
