"""One columnar detections type that every detector backend produces and the tracker consumes.

Numpy arrays of equal length, boolean-mask indexable (supervision-style). It also exposes the
``conf``/``cls``/``xywh`` views that Ultralytics' trackers read, so it feeds BYTETracker directly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # for annotations only: the type stays importable without the decoder
    from video_analysis.vision.frames import Frame


@dataclass(frozen=True)
class Detections:
    xyxy: np.ndarray  # (N, 4) float32 pixel corners
    confidence: np.ndarray  # (N,) float32 in [0, 1]
    class_id: np.ndarray  # (N,) int32, index into the detector's class names
    frame_index: np.ndarray  # (N,) int32, frame number in the source video
    timestamp: np.ndarray  # (N,) float64 seconds from the start
    tracker_id: np.ndarray = field(default=None)  # (N,) int64, -1 where untracked

    def __post_init__(self):
        if self.tracker_id is None:
            object.__setattr__(self, "tracker_id", np.full(len(self.confidence), -1, dtype=np.int64))

    @classmethod
    def empty(cls) -> Detections:
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int32),
                   np.zeros(0, np.int32), np.zeros(0, np.float64))

    @classmethod
    def concat(cls, parts: list[Detections]) -> Detections:
        parts = [p for p in parts if len(p)]
        if not parts:
            return cls.empty()
        return cls(*(np.concatenate([getattr(p, name) for p in parts]) for name in _FIELDS))

    @classmethod
    def from_frames(cls, frames: list[Frame], boxes: list[np.ndarray], scores: list[np.ndarray],
                    classes: list[np.ndarray]) -> Detections:
        """One frame's boxes, scores and class ids per frame (as a detector backend finds them), stacked."""
        parts = []
        for frame, xyxy, conf, cls_ids in zip(frames, boxes, scores, classes, strict=True):
            n = len(conf)
            parts.append(cls(
                xyxy=xyxy.astype(np.float32).reshape(n, 4), confidence=conf.astype(np.float32),
                class_id=cls_ids.astype(np.int32), frame_index=np.full(n, frame.index, np.int32),
                timestamp=np.full(n, frame.timestamp, np.float64)))
        return cls.concat(parts)

    def __len__(self) -> int:
        return len(self.confidence)

    def __getitem__(self, index) -> Detections:
        return Detections(*(getattr(self, name)[index] for name in _FIELDS))

    # Views read by ultralytics.trackers.BYTETracker.
    @property
    def conf(self) -> np.ndarray:
        return self.confidence

    @property
    def cls(self) -> np.ndarray:
        return self.class_id

    @property
    def xywh(self) -> np.ndarray:
        wh = self.xyxy[:, 2:4] - self.xyxy[:, 0:2]
        return np.concatenate([self.xyxy[:, 0:2] + wh / 2, wh], axis=1)


_FIELDS = ("xyxy", "confidence", "class_id", "frame_index", "timestamp", "tracker_id")


def box_areas(xyxy: np.ndarray) -> np.ndarray:
    """Areas of (N, 4) corner boxes (zero for inverted ones)."""
    return np.prod(np.clip(xyxy[..., 2:4] - xyxy[..., 0:2], 0, None), axis=-1)


def box_intersections(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection areas of corner boxes, [len(a), len(b)]."""
    a, b = np.asarray(a, np.float64).reshape(-1, 4), np.asarray(b, np.float64).reshape(-1, 4)
    lo = np.maximum(a[:, None, :2], b[None, :, :2])
    hi = np.minimum(a[:, None, 2:], b[None, :, 2:])
    return np.prod(np.clip(hi - lo, 0, None), axis=2)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of corner boxes, [len(a), len(b)] (0 where both are empty)."""
    a, b = np.asarray(a, np.float64).reshape(-1, 4), np.asarray(b, np.float64).reshape(-1, 4)
    inter = box_intersections(a, b)
    union = box_areas(a)[:, None] + box_areas(b)[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)
