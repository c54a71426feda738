"""Per-track attributes that need no extra model: clothing colours, size, motion, dwell and zones.

Colours come from the track's best-frame crop. Only the central part of each body region is used
(torso for "upper", legs for "lower", the middle 60% of the width), which keeps floor and walls out;
the dominant colour is the largest k-means cluster in Lab space, named from a fixed palette.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import yaml

from video_analysis.vision.tracking import TrackSummary
from video_analysis.wording import count

# Named colours in RGB; a pixel cluster takes the name of the nearest one in Lab space.
PALETTE = {
    "black": (20, 20, 20), "white": (240, 240, 240), "gray": (128, 128, 128), "red": (200, 30, 30),
    "orange": (240, 130, 30), "yellow": (235, 220, 50), "green": (40, 150, 60), "blue": (40, 70, 200),
    "navy": (25, 30, 90), "purple": (120, 50, 150), "pink": (235, 130, 180), "brown": (110, 70, 40),
    "beige": (215, 195, 160),
}
_PALETTE_LAB = cv2.cvtColor(np.array([list(PALETTE.values())], np.uint8), cv2.COLOR_RGB2LAB)[0].astype(np.float32)
_PALETTE_NAMES = list(PALETTE)

# Speed in body heights per second: people walk at roughly 0.5-1.2, run at 1.8 and above.
RUNNING_HEIGHTS_PER_S = 1.8
STATIONARY_HEIGHTS_PER_S = 0.15
HEADINGS = ["east", "south-east", "south", "south-west", "west", "north-west", "north", "north-east"]


@dataclass(frozen=True)
class Zone:
    name: str
    polygon: list[tuple[float, float]]  # normalised [0, 1] image coordinates
    restricted: bool = False
    # Loitering here: after this many seconds (None: the rules' loiter_seconds); 0 exempts the zone (a desk, a
    # till, a queue: people who work or wait there are not loitering).
    loiter_seconds: float | None = None
    capacity: int | None = None  # more people at once than this in the zone is crowding

    def pixel_polygon(self, width: float, height: float) -> np.ndarray:
        return np.array([[x * width, y * height] for x, y in self.polygon], np.float32)

    def contains(self, points: list[tuple[float, float]], width: float, height: float) -> np.ndarray:
        """Which of the (x, y) pixel points lie inside the zone (its edge counts as inside)."""
        polygon = self.pixel_polygon(width, height)
        return np.array([cv2.pointPolygonTest(polygon, (float(x), float(y)), False) >= 0 for x, y in points], bool)


@dataclass(frozen=True)
class TrackAttributes:
    track_id: int
    class_name: str
    upper_color: str | None
    lower_color: str | None
    color: str | None  # whole-object colour for non-person tracks
    apparent_height: float  # best box height as a fraction of the frame height
    speed_px_s: float
    speed_heights_s: float
    motion: str  # stationary | walking | running | moving
    heading: str | None
    displacement_px: float
    dwell_s: float
    zones: list[str] = field(default_factory=list)
    description: str = ""


def load_zones(path: Path | None, camera: str | None) -> list[Zone]:
    """Zones for one camera from a YAML file: ``cameras: {<camera> | "*": [{name, polygon, restricted,
    loiter_seconds, capacity}]}``.

    Polygons are in normalised image coordinates, so one file serves cameras of any resolution.
    """
    if path is None or not Path(path).exists():
        return []
    spec = yaml.safe_load(Path(path).read_text()) or {}
    cameras = spec.get("cameras", {})
    entries = [*cameras.get("*", []), *(cameras.get(camera, []) if camera else [])]
    zones = []
    for e in entries:
        if "line" in e:
            continue  # a counting line (events/counting.py), not an area
        loiter = e.get("loiter_seconds")
        if loiter is not None and (isinstance(loiter, bool) or not isinstance(loiter, int | float) or loiter < 0):
            raise ValueError(f"{path}: zone {e.get('name')!r}: loiter_seconds must be a number of seconds >= 0 "
                             f"(0 exempts the zone), not {loiter!r}")
        capacity = e.get("capacity")
        if capacity is not None and (isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1):
            raise ValueError(f"{path}: zone {e.get('name')!r}: capacity must be a whole number of people >= 1, "
                             f"not {capacity!r}")
        zones.append(Zone(name=e["name"], polygon=[tuple(p) for p in e["polygon"]],
                          restricted=bool(e.get("restricted")), loiter_seconds=loiter, capacity=capacity))
    return zones


def dominant_color(pixels_bgr: np.ndarray, clusters: int = 3) -> str | None:
    """Name of the largest colour cluster among the given pixels (None when too few)."""
    pixels = pixels_bgr.reshape(-1, 3)
    if len(pixels) < 12:
        return None
    lab = cv2.cvtColor(pixels.reshape(-1, 1, 3).astype(np.uint8), cv2.COLOR_BGR2LAB).reshape(-1, 3).astype(np.float32)
    k = min(clusters, len(lab))
    criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 20, 1.0)
    # Deterministic start: k groups by lightness rank. Random seeding (KMEANS_PP_CENTERS) draws from OpenCV's
    # process-wide generator, so a re-run could name another colour for the same pixels.
    initial = np.empty(len(lab), np.int32)
    initial[np.argsort(lab[:, 0], kind="stable")] = np.arange(len(lab)) * k // len(lab)
    _, labels, centres = cv2.kmeans(lab, k, initial.reshape(-1, 1), criteria, 1, cv2.KMEANS_USE_INITIAL_LABELS)
    largest = centres[np.bincount(labels.ravel(), minlength=k).argmax()]
    return _PALETTE_NAMES[int(np.linalg.norm(_PALETTE_LAB - largest, axis=1).argmin())]


def clothing_colors(crop_bgr: np.ndarray) -> tuple[str | None, str | None]:
    h, w = crop_bgr.shape[:2]
    x0, x1 = int(w * 0.2), max(int(w * 0.8), int(w * 0.2) + 1)
    upper = crop_bgr[int(h * 0.18):int(h * 0.5), x0:x1]
    lower = crop_bgr[int(h * 0.58):int(h * 0.9), x0:x1]
    return dominant_color(upper), dominant_color(lower)


def _heading(dx: float, dy: float) -> str:
    angle = math.degrees(math.atan2(dy, dx)) % 360  # image y grows downwards: 90 degrees is "south"
    return HEADINGS[int((angle + 22.5) // 45) % 8]


def feet_points(path: list[list[float]], box_height: float = 0.0) -> list[tuple[float, float]]:
    """Where a track stood at each path point: the bottom middle of its box (paths stored before boxes' sizes
    were kept have centres only: ``box_height`` stands in for the size)."""
    return [(float(p[1]), float(p[2]) + (p[4] if len(p) > 4 else box_height) / 2) for p in path]


def _zones_visited(path: list[list[float]], zones: list[Zone], width: int, height: int,
                   box_height: float = 0.0) -> list[str]:
    names = []
    for zone in zones:
        polygon = np.array([[x * width, y * height] for x, y in zone.polygon], np.float32)
        if any(cv2.pointPolygonTest(polygon, feet, False) >= 0 for feet in feet_points(path, box_height)):
            names.append(zone.name)
    return names


def motion_of(track: TrackSummary, is_person: bool) -> tuple[float, float, float, str, str | None]:
    """(speed px/s, speed body-heights/s, displacement px, motion class, heading) from the path."""
    path = np.array(track.path, np.float64)
    box_height = max(1.0, track.best_box[3] - track.best_box[1])
    if len(path) < 2 or path[-1, 0] <= path[0, 0]:
        return 0.0, 0.0, 0.0, "stationary", None
    steps = np.diff(path, axis=0)
    dt = np.maximum(steps[:, 0], 1e-6)
    step_speeds = np.linalg.norm(steps[:, 1:3], axis=1) / dt
    speed = float(np.median(step_speeds))  # median: robust to a single jittery box
    relative = speed / box_height
    displacement = float(np.linalg.norm(path[-1, 1:3] - path[0, 1:3]))
    if relative < STATIONARY_HEIGHTS_PER_S:
        motion = "stationary"
    elif is_person and relative >= RUNNING_HEIGHTS_PER_S:
        motion = "running"
    else:
        motion = "walking" if is_person else "moving"
    moved = motion != "stationary" and displacement > box_height * 0.5
    heading = _heading(*(path[-1, 1:3] - path[0, 1:3])) if moved else None
    return speed, relative, displacement, motion, heading


def describe(attrs: TrackAttributes) -> str:
    """One readable sentence per track: what full-text search and text embeddings see."""
    subject = attrs.class_name
    if attrs.class_name == "person" and (attrs.upper_color or attrs.lower_color):
        parts = [f"a {attrs.upper_color} top" if attrs.upper_color else None,
                 f"{attrs.lower_color} trousers" if attrs.lower_color else None]
        subject = f"person wearing {' and '.join(p for p in parts if p)}"
    elif attrs.color:
        subject = f"{attrs.color} {attrs.class_name}"
    moving = attrs.motion if attrs.heading is None else f"{attrs.motion} {attrs.heading}"
    text = f"{subject}, {moving}, on screen for {count(round(attrs.dwell_s), 'second')}"
    if attrs.zones:
        text += f", in {', '.join(attrs.zones)}"
    return text


def track_attributes(track: TrackSummary, class_name: str, crop_bgr: np.ndarray | None, width: int, height: int,
                     zones: list[Zone]) -> TrackAttributes:
    speed, relative, displacement, motion, heading = motion_of(track, class_name == "person")
    upper = lower = color = None
    if crop_bgr is not None and crop_bgr.size:
        if class_name == "person":
            upper, lower = clothing_colors(crop_bgr)
        else:
            h, w = crop_bgr.shape[:2]
            color = dominant_color(crop_bgr[int(h * 0.2):int(h * 0.8), int(w * 0.2):int(w * 0.8)])
    attrs = TrackAttributes(
        track_id=track.track_id, class_name=class_name, upper_color=upper, lower_color=lower, color=color,
        apparent_height=round((track.best_box[3] - track.best_box[1]) / height, 4),
        speed_px_s=round(speed, 2), speed_heights_s=round(relative, 3), motion=motion, heading=heading,
        displacement_px=round(displacement, 1), dwell_s=round(track.last_t - track.first_t, 2),
        zones=_zones_visited(track.path, zones, width, height, track.best_box[3] - track.best_box[1]),
    )
    return TrackAttributes(**{**attrs.__dict__, "description": describe(attrs)})

