"""The stored facts the event rules read: a video's tracks, the scene's evidence, and where a track's feet were
every half second."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from video_analysis.vision.attributes import feet_points

PEOPLE = "person"
VEHICLES = ("bicycle", "car", "motorcycle", "bus", "truck")


@dataclass(frozen=True)
class TrackFacts:
    track_id: int
    class_name: str
    first_t: float
    last_t: float
    path: list[list[float]]  # [t, cx, cy, w, h] (box centre and size; [t, cx, cy] in paths stored before sizes were)
    box_height: float
    motion: str = "walking"
    speed_heights_s: float = 0.0
    zones: tuple[str, ...] = ()
    upper_color: str | None = None
    lower_color: str | None = None


@dataclass(frozen=True)
class SceneEvidence:
    """What the scene rules read besides tracks: the static regions (objects with ``first_t``, ``last_t``,
    ``xyxy``), and the detector's sightings (time, class, confidence, box), tracked or not."""

    static_regions: list
    times: np.ndarray
    classes: np.ndarray
    confidence: np.ndarray
    xyxy: np.ndarray

    @classmethod
    def empty(cls) -> SceneEvidence:
        return cls([], np.zeros(0), np.zeros(0, object), np.zeros(0, np.float32), np.zeros((0, 4), np.float32))

    def sightings(self, classes) -> tuple[np.ndarray, np.ndarray]:
        """(times, boxes) of the sightings of these classes."""
        mask = np.isin(self.classes, list(classes))
        return self.times[mask], self.xyxy[mask]


STEP_S = 0.5  # seconds between the positions a track's stored path is filled in at


def feet_rows(track: TrackFacts, step_s: float = STEP_S) -> np.ndarray:
    """Rows of [t, feet x, feet y, box height] every ``step_s`` over the track's life, between its stored path
    points by straight lines. A stored path keeps at most 64 points however long the track, so a person who
    sat by a bag for half an hour has points minutes apart: rules that ask where someone was at a moment
    read this instead."""
    if not track.path:
        return np.zeros((0, 4))
    feet = np.array(feet_points(track.path, track.box_height), np.float64).reshape(-1, 2)
    known = np.array([[p[0], fx, fy, p[4] if len(p) > 4 else track.box_height]
                      for p, (fx, fy) in zip(track.path, feet, strict=True)], np.float64)
    known = known[np.argsort(known[:, 0], kind="stable")]
    times = np.union1d(np.arange(known[0, 0], known[-1, 0], step_s), known[:, 0])
    return np.stack([times] + [np.interp(times, known[:, 0], known[:, i]) for i in (1, 2, 3)], axis=1)


