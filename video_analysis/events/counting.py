"""Counting from tracks: crossings of lines (each way), and visits to zones (entry, exit, dwell), read from
where each track's feet were every half second. Stored per video as facts (table `counting_events`), so counts
over any hour, camera or zone are sums over rows, and a changed zones file is recounted without detecting
again.

A line in the zones file, beside the zones (normalised image coordinates, like polygons)::

    cameras:
      lobby:
        - {name: door, line: [[0.42, 0.95], [0.58, 0.95]], in: left}   # left of the line from a to b is inside

A crossing goes "in" when the feet pass from the right of a->b to its left (``in: left``; ``in: right`` the
other way round), "out" the other way.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from video_analysis.events.track_facts import TrackFacts, feet_rows
from video_analysis.vision.attributes import Zone


@dataclass(frozen=True)
class CountingLine:
    name: str
    a: tuple[float, float]  # normalised [0, 1] image coordinates
    b: tuple[float, float]
    inward: str = "left"  # the side of a->b that is "in"


@dataclass(frozen=True)
class Crossing:
    line: str
    track_id: int
    class_name: str
    t: float  # seconds into the video
    direction: str  # "in" | "out"


@dataclass(frozen=True)
class Visit:
    zone: str
    track_id: int
    class_name: str
    start_t: float  # first moment inside (the track's first moment when it was already inside)
    end_t: float  # last moment inside

    @property
    def seconds(self) -> float:
        return self.end_t - self.start_t


def load_lines(path: Path | None, camera: str | None) -> list[CountingLine]:
    """The camera's counting lines from the zones file (entries with ``line``), and the ``"*"`` ones."""
    if path is None or not Path(path).exists():
        return []
    spec = (yaml.safe_load(Path(path).read_text()) or {}).get("cameras", {}) or {}
    found = []
    for entry in [*spec.get("*", []), *(spec.get(camera, []) if camera else [])]:
        if "line" not in entry:
            continue
        points = entry["line"]
        if not str(entry.get("name") or "").strip():
            raise ValueError(f"{path}: a line without a name: {entry!r}")
        if (not isinstance(points, list) or len(points) != 2
                or not all(isinstance(p, list | tuple) and len(p) == 2 for p in points)):
            raise ValueError(f"{path}: line {entry.get('name')!r}: two points [[x, y], [x, y]], not {points!r}")
        inward = entry.get("in", "left")
        if inward not in ("left", "right"):
            raise ValueError(f"{path}: line {entry.get('name')!r}: `in` is left or right, not {inward!r}")
        found.append(CountingLine(str(entry["name"]), tuple(map(float, points[0])), tuple(map(float, points[1])),
                                  inward))
    return found


def _side(a: np.ndarray, b: np.ndarray, points: np.ndarray) -> np.ndarray:
    """>0 left of a->b (in image coordinates, y down: "left" as drawn on the picture), <0 right."""
    d = b - a
    return -(d[0] * (points[:, 1] - a[1]) - d[1] * (points[:, 0] - a[0]))


def _settled(side: np.ndarray) -> np.ndarray:
    """Signs with each 0 (feet exactly on the line) taken as the side they were on before: standing on the line
    is not a crossing, and stepping over it through a point on it is one."""
    side = side.copy()
    for i in range(1, len(side)):
        if side[i] == 0:
            side[i] = side[i - 1]
    nonzero = np.nonzero(side)[0]
    if len(nonzero):
        side[:nonzero[0]] = side[nonzero[0]]
    return side


def crossings(tracks: list[TrackFacts], lines: list[CountingLine], width: int, height: int) -> list[Crossing]:
    """Every time a track's feet pass over a line segment, and which way."""
    scale = np.array([width, height], np.float64)
    found = []
    for line in lines:
        a, b = np.array(line.a) * scale, np.array(line.b) * scale
        for track in tracks:
            rows = feet_rows(track)
            if len(rows) < 2:
                continue
            feet = rows[:, 1:3]
            side = _settled(np.sign(_side(a, b, feet)))
            for i in np.nonzero(side[:-1] * side[1:] < 0)[0]:
                p, q = feet[i], feet[i + 1]
                # the step crosses the infinite line; it counts where it crosses between a and b
                ends = np.sign(_side(p, q, np.stack([a, b])))
                if ends[0] * ends[1] > 0:
                    continue
                going_left = side[i + 1] > 0
                direction = "in" if going_left == (line.inward == "left") else "out"
                found.append(Crossing(line.name, track.track_id, track.class_name,
                                      round(float((rows[i, 0] + rows[i + 1, 0]) / 2), 2), direction))
    return sorted(found, key=lambda c: (c.t, c.line, c.track_id))


def visits(tracks: list[TrackFacts], zones: list[Zone], width: int, height: int) -> list[Visit]:
    """Each stay of a track inside a zone, from its first moment there to its last (a step outside ends it)."""
    found = []
    for zone in zones:
        for track in tracks:
            rows = feet_rows(track)
            if not len(rows):
                continue
            inside = zone.contains([tuple(p) for p in rows[:, 1:3]], width, height)
            start = None
            for i, now in enumerate(inside):
                if now and start is None:
                    start = i
                if start is not None and (not now or i == len(inside) - 1):
                    end = i if now else i - 1
                    found.append(Visit(zone.name, track.track_id, track.class_name, round(float(rows[start, 0]), 2),
                                       round(float(rows[end, 0]), 2)))
                    start = None
    return sorted(found, key=lambda v: (v.start_t, v.zone, v.track_id))


def occupancy(visits_: list[Visit], step_s: float = 1.0) -> dict[str, tuple[int, float, float]]:
    """Per zone: (peak people at once, when it peaked, mean people while anyone was there)."""
    result = {}
    for zone in sorted({v.zone for v in visits_}):
        mine = [v for v in visits_ if v.zone == zone]
        start, end = min(v.start_t for v in mine), max(v.end_t for v in mine)
        times = np.arange(start, end + step_s, step_s)
        counts = np.array([sum(v.start_t <= t <= v.end_t for v in mine) for t in times])
        peak = int(counts.max())
        result[zone] = (peak, round(float(times[int(counts.argmax())]), 2), round(float(counts[counts > 0].mean()), 2))
    return result
