"""Detection on tiles: small, far objects in frames much larger than the detector's input.

A detector that squeezes a 1920x1080 frame into 300x300 (the SSD; 416x416 for PicoDet-S) sees a person 60
pixels tall as 17 pixels (23), below what it finds. ``TiledDetector`` runs the detector on the whole frame
and on an overlapping grid of tiles, each tile shrunk far less, then merges the boxes (the SAHI recipe: whole
frame for large objects, tiles for small ones). Cost grows with the tiles: a 2x2 grid is five detector calls a
frame. Whether it pays is measured per scene in benchmarks/README.md ("Small and far objects"); it is set per camera.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import yaml

from video_analysis.vision.detections import Detections, box_areas, box_intersections

if TYPE_CHECKING:  # settings read `parse_tiles`: no decoder or model runtime imported for that
    from video_analysis.vision.detectors import Detector
    from video_analysis.vision.frames import Frame

# Neighbouring tiles share this share of a tile's size, so an object cut by one tile's edge is whole in the next.
TILE_OVERLAP = 0.25
# A tile's box and another of its class overlapping this much (IoU) are one object seen twice: chosen among
# 0.3-0.5 on the wide views of benchmarks/README.md ("Small and far objects"), where a far person's box from the
# whole frame is loose and at 0.5 was counted again beside the tile's (swept with an earlier form of the merge;
# the final merge's figures are in that README).
SAME_IOU = 0.3
# A tile's box with this share of its area inside another box is a part of that object.
INSIDE_SHARE = 0.6
# A box from a tile larger than this share of the tile (width or height) is left to the whole frame, where the
# same object is at least this share of a tile's size, which the detector finds: a near person cut by tiles
# gives fragments, not a second box.
TILE_OBJECT_SHARE = 0.5
# A tile's box this close to an edge of the tile inside the frame is cut by it.
CUT_MARGIN_PX = 4.0
_TILES = re.compile(r"^\s*(\d)\s*x\s*(\d)\s*$")


def parse_tiles(text: str | bool | None) -> tuple[int, int] | None:
    """``"off"``, ``""`` or ``None`` -> no tiles; ``"COLSxROWS"`` (1-4 each, not 1x1) -> the grid. YAML reads
    an unquoted ``off`` or ``no`` as false: that is off too."""
    if text is None or text is False or str(text).strip().lower() in ("", "off", "no", "false", "none", "0", "1x1"):
        return None
    match = _TILES.match(str(text).lower())
    if not match or not (1 <= int(match[1]) <= 4 and 1 <= int(match[2]) <= 4):
        raise ValueError(f"tiles must be 'off' or COLSxROWS with 1-4 each (for example 2x2), not {text!r}")
    return int(match[1]), int(match[2])


def tile_boxes(width: int, height: int, grid: tuple[int, int], overlap: float = TILE_OVERLAP) -> np.ndarray:
    """(cols*rows, 4) pixel corners of an overlapping grid covering a width x height frame."""
    cols, rows = grid

    def spans(size: int, n: int) -> list[tuple[int, int]]:
        if n == 1:
            return [(0, size)]
        tile = size / (n - (n - 1) * overlap)  # n tiles of this size, each overlapping the next by `overlap`
        step = tile * (1 - overlap)
        return [(round(i * step), min(size, round(i * step + tile))) for i in range(n)]

    return np.array([(x1, y1, x2, y2) for y1, y2 in spans(height, rows) for x1, x2 in spans(width, cols)],
                    np.float32)


def merge_boxes(found: Detections, view: np.ndarray, cut: np.ndarray) -> Detections:
    """One box per object, from the boxes of the whole frame (``view`` 0) and of each tile (``view`` 1..n),
    same class only:

    - boxes of two views with IoU >= ``SAME_IOU`` are one object: the one not ``cut`` by a tile's inner edge
      is kept, then the better scored; a kept box stands for at most one box of each other view, so one loose
      box over a group does not take the place of several people;
    - a tile's box lying mostly (``INSIDE_SHARE``) inside a box of another view, and so much smaller than it
      (the IoU is below ``SAME_IOU``), is a piece of that object (a tile cut it, or saw only its upper half)
      and goes.

    Boxes of one view never remove each other: the detector has already chosen among them, and people in a
    group overlap."""
    order = np.lexsort((-found.confidence, cut))
    areas = box_areas(found.xyxy).astype(np.float64)
    inter = box_intersections(found.xyxy, found.xyxy)
    kept: list[int] = []
    stands_for: dict[int, set[int]] = {}  # kept box -> the views whose box it already stands for
    for i in order.tolist():
        duplicate, pieces = False, []
        for j in kept:
            if found.class_id[i] != found.class_id[j] or view[i] == view[j]:
                continue
            iou = inter[i, j] / max(areas[i] + areas[j] - inter[i, j], 1e-9)
            if iou >= SAME_IOU:
                if int(view[i]) in stands_for[j]:
                    continue
                duplicate = True
                stands_for[j].add(int(view[i]))
                break
            if view[i] != 0 and inter[i, j] >= INSIDE_SHARE * areas[i]:
                duplicate = True
                break
            if view[j] != 0 and inter[i, j] >= INSIDE_SHARE * areas[j]:
                pieces.append(j)  # kept first for its score, but a piece of this box
        if not duplicate:
            kept = [j for j in kept if j not in pieces]
            kept.append(i)
            stands_for[i] = set()
    return found[np.sort(np.array(kept, int))]


class TiledDetector:
    """``detector`` on each whole frame and on a ``grid`` of overlapping tiles of it, boxes merged."""

    def __init__(self, detector: Detector, grid: tuple[int, int], overlap: float = TILE_OVERLAP):
        self.detector = detector
        self.grid = grid
        self.overlap = overlap
        self.class_names = detector.class_names

    def detect(self, frames: list[Frame]) -> Detections:
        from video_analysis.vision.frames import Frame

        if not frames:
            return Detections.empty()
        # One batch of every view (whole frames and tiles), each view numbered by its position in the batch.
        views, owner, windows = [], [], []
        for frame in frames:
            h, w = frame.image.shape[:2]
            for x1, y1, x2, y2 in [(0, 0, w, h), *tile_boxes(w, h, self.grid, self.overlap).astype(int).tolist()]:
                views.append(Frame(len(views), frame.timestamp, frame.image[y1:y2, x1:x2]))
                owner.append(frame.index)
                windows.append((x1, y1, x2, y2, w, h))
        found = self.detector.detect(views)
        merged = []
        for first in range(0, len(views), 1 + self.grid[0] * self.grid[1]):
            parts, cuts, views_of = [], [], []
            for view in range(first, first + 1 + self.grid[0] * self.grid[1]):
                mine = found[found.frame_index == view]
                x1, y1, x2, y2, w, h = windows[view]
                if view != first:  # a tile keeps small objects only: the whole frame sees larger ones well
                    size = mine.xyxy[:, 2:4] - mine.xyxy[:, 0:2]
                    mine = mine[(size[:, 0] <= TILE_OBJECT_SHARE * (x2 - x1))
                                & (size[:, 1] <= TILE_OBJECT_SHARE * (y2 - y1))]
                xyxy = mine.xyxy + np.array([x1, y1, x1, y1], np.float32)
                # an edge of the tile inside the frame cuts whatever touches it: another view has it whole
                inner = np.array([x1 > 0, y1 > 0, x2 < w, y2 < h])
                edge = np.array([x1, y1, x2, y2], np.float32)
                cuts.append(((np.abs(xyxy - edge) <= CUT_MARGIN_PX) & inner).any(axis=1))
                views_of.append(np.full(len(mine), view - first))
                parts.append(Detections(xyxy, mine.confidence, mine.class_id,
                                        np.full(len(mine), owner[view], np.int32), mine.timestamp))
            merged.append(merge_boxes(Detections.concat(parts), np.concatenate(views_of), np.concatenate(cuts)))
        return Detections.concat(merged)


def with_tiles(detector: Detector, tiles: str | None) -> Detector:
    """The detector, on tiles when ``tiles`` names a grid (`parse_tiles`)."""
    grid = parse_tiles(tiles)
    return detector if grid is None else TiledDetector(detector, grid)


def _camera_tiles(config: Path | None) -> dict[str, str]:
    """Each camera's grid from the zones file, checked (a camera set to null is left to the default)."""
    if config is None or not Path(config).exists():
        return {}
    overrides = (yaml.safe_load(Path(config).read_text()) or {}).get("detector_tiles") or {}
    if not isinstance(overrides, dict):
        raise ValueError(f"{config}: detector_tiles is a mapping of camera names to a grid, like `gate: 3x2`")
    grids = {}
    for camera, tiles in overrides.items():
        if tiles is None:
            continue
        try:
            grid = parse_tiles(tiles)
        except ValueError as exc:
            raise ValueError(f"{config}: detector_tiles of {camera!r}: {exc}") from exc
        grids[str(camera)] = "off" if grid is None else f"{grid[0]}x{grid[1]}"
    return grids


def tiles_for_camera(default: str | None, config: Path | None, camera: str | None) -> str:
    """The tiles a camera's footage is detected on: its own in the zones file
    (``detector_tiles: {<camera>: 3x2, "*": "off"}``, ``"*"`` for cameras not listed), else ``default``."""
    overrides = _camera_tiles(config)
    chosen = overrides.get(camera) if camera in overrides else overrides.get("*")
    return chosen if chosen is not None else (default or "off")


def tiles_fingerprint(default: str | None, config: Path | None) -> str:
    """Short hash of the default grid and every camera's own, or "" while every grid is off: part of the
    detections' code version, so turning tiles on (or changing a grid) marks every video's detections stale,
    and a deployment without tiles keeps its version. A zones file that cannot be read hashes as "invalid"
    (the code location still loads; the detections step says what is wrong)."""
    try:
        cameras = _camera_tiles(config)
        grid = parse_tiles(default)
    except (ValueError, yaml.YAMLError, OSError):
        return "invalid"
    if grid is None and all(tiles == "off" for tiles in cameras.values()):
        return ""
    spec = json.dumps({"default": default or "off", "cameras": cameras}, sort_keys=True)
    return hashlib.sha1(spec.encode()).hexdigest()[:8]
