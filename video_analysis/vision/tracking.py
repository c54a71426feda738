"""Multi-object tracking with Ultralytics' ByteTrack over sampled frames, and per-track summaries.

The tracker is created per video (IDs restart at 1) and is stepped once per *sampled* frame,
including frames with no detections, so lost tracks age correctly. Its buffer is expressed in
seconds and converted to sampled frames, so tracking behaves the same at any sampling rate.

Two changes make ByteTrack hold at a few frames a second, where people move further than their own
width between samples (both chosen on ground truth, benchmarks/quality.py):

- Association by buffered IoU (C-BIoU, Yang et al., WACV 2023): boxes are widened by a share of their
  size before IoU, so a person who moved beside their predicted box still overlaps it.
- A track's first sighting keeps its id: ByteTrack confirms a new track on its second match and reports
  nothing for the first, which at 2 fps is a quarter or more of a short track's evidence.

After tracking, `relink` joins the fragments a person's track breaks into when the detector misses them
for a moment (occluded, turned away): a fragment lost inside the picture and one of the same class that
starts within seconds where its motion leads, looking the same (colour histograms of their best crops).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from video_analysis.vision.detections import Detections

MAX_PATH_POINTS = 64


@dataclass(frozen=True)
class TrackerSettings:
    # "bytetrack", or "botsort" (Ultralytics' BoT-SORT without appearance or camera-motion models, kept to
    # compare against: it tracked no better at the default rate, benchmarks/trackers.py)
    kind: str = "bytetrack"
    high_threshold: float = 0.5
    low_threshold: float = 0.1
    new_track_threshold: float = 0.6
    match_threshold: float = 0.8
    lost_seconds: float = 3.0
    min_frames: int = 2  # tracks seen in fewer sampled frames are dropped as flicker
    buffer: float = 0.5  # boxes widened by this share of their width and height on each side before IoU
    relink_seconds: float = 5.0  # fragments at most this far apart in time may be one object's
    relink_heights: float = 1.5  # ... when the later starts within this many box heights of where motion leads
    relink_appearance: float = 0.45  # ... and their crops' colour histograms are this close (Bhattacharyya)


DEFAULT_TRACKER = TrackerSettings()


_importing: threading.Thread | None = None  # the import started ahead, which a tracker built meanwhile waits for
_starting = threading.Lock()


def import_tracker_library() -> threading.Thread:
    """Starts importing the trackers' library (Ultralytics, and torch with it: ~2 s in a fresh process) on a
    thread of its own, for a step that loads its detector meanwhile; the first tracker built waits for it (two
    threads importing the same package at once can deadlock on its module locks: Python then raises
    `_DeadlockError` in one of them, which a detector that loads faster than the import made happen). Started
    once per process: a later call returns the same thread."""
    global _importing
    with _starting:
        if _importing is not None:
            return _importing
        thread = threading.Thread(target=_import_tracker_library, name="import-trackers", daemon=True)
        _importing = thread
        thread.start()
        return thread


def _wait_for_import_ahead() -> None:
    thread = _importing
    if thread is not None and thread is not threading.current_thread():
        thread.join()


def _import_tracker_library() -> None:
    try:
        import ultralytics.trackers.byte_tracker  # noqa: F401
    except Exception:  # noqa: BLE001 - imported again, and its error raised, where a tracker is built
        pass


def _widened(boxes: np.ndarray, buffer: float) -> list[np.ndarray]:
    size = boxes[:, 2:4] - boxes[:, 0:2]
    return list(np.concatenate([boxes[:, 0:2] - buffer * size, boxes[:, 2:4] + buffer * size], axis=1))


def _bytetrack(settings: TrackerSettings, sample_fps: float):
    _wait_for_import_ahead()
    from ultralytics.trackers.bot_sort import BOTSORT
    from ultralytics.trackers.byte_tracker import BYTETracker
    from ultralytics.trackers.utils import matching
    from ultralytics.utils import IterableSimpleNamespace

    if settings.kind not in ("bytetrack", "botsort"):
        raise ValueError(f"unknown tracker {settings.kind!r}: bytetrack or botsort")
    base = BOTSORT if settings.kind == "botsort" else BYTETracker

    class BufferedTracker(base):
        def get_dists(self, tracks, detections):
            if not settings.buffer or not tracks or not detections:
                return super().get_dists(tracks, detections)
            dists = matching.iou_distance(_widened(np.array([t.xyxy for t in tracks]), settings.buffer),
                                          _widened(np.array([d.xyxy for d in detections]), settings.buffer))
            return matching.fuse_score(dists, detections) if self.args.fuse_score else dists

    args = IterableSimpleNamespace(
        tracker_type=settings.kind,
        track_high_thresh=settings.high_threshold,
        track_low_thresh=settings.low_threshold,
        new_track_thresh=settings.new_track_threshold,
        track_buffer=max(1, round(settings.lost_seconds * sample_fps)),
        match_thresh=settings.match_threshold,
        fuse_score=True,
        # BoT-SORT's own parts, off: no appearance model offline, and the frames are not passed to the tracker
        gmc_method=None, proximity_thresh=0.5, appearance_thresh=0.25, with_reid=False,
    )
    return BufferedTracker(args)


class OnlineTracker:
    """The tracker stepped one analysed frame at a time: what `assign_tracks` runs over a stored video, and
    what the detection pass runs while each frame is still in memory (to keep each track's best crop)."""

    def __init__(self, sample_fps: float, settings: TrackerSettings = DEFAULT_TRACKER):
        self._tracker = _bytetrack(settings, sample_fps)

    def step(self, frame: Detections) -> tuple[np.ndarray, np.ndarray]:
        """(confirmed, born) track ids for the frame's rows, -1 where none: ``confirmed`` as ByteTrack reports
        them, ``born`` the ids of tracks that start on this frame and are not confirmed yet."""
        confirmed = np.full(len(frame), -1, dtype=np.int64)
        born = np.full(len(frame), -1, dtype=np.int64)
        output = self._tracker.update(frame)
        if len(output):
            # rows: x1, y1, x2, y2, track_id, score, cls, idx (idx: position within this frame's detections)
            confirmed[output[:, 7].astype(int)] = output[:, 4].astype(np.int64)
        for track in self._tracker.tracked_stracks:
            if not track.is_activated and track.frame_id == self._tracker.frame_id:
                born[int(track.idx)] = int(track.track_id)
        return confirmed, born


def assign_tracks(detections: Detections, sampled_frames: list[int], sample_fps: float,
                  settings: TrackerSettings = DEFAULT_TRACKER) -> Detections:
    """Detections with ``tracker_id`` filled (-1 for detections not in a confirmed track)."""
    tracker = OnlineTracker(sample_fps, settings)
    order = np.argsort(detections.frame_index, kind="stable")
    detections = detections[order]
    tracker_ids = np.full(len(detections), -1, dtype=np.int64)
    first_sighting: dict[int, int] = {}  # id of a track not yet confirmed -> its first detection's row
    starts = np.searchsorted(detections.frame_index, sampled_frames, side="left")
    ends = np.searchsorted(detections.frame_index, sampled_frames, side="right")
    for start, end in zip(starts, ends, strict=True):
        confirmed, born = tracker.step(detections[start:end])
        tracker_ids[start:end] = confirmed
        for row in np.flatnonzero(born >= 0):
            first_sighting.setdefault(int(born[row]), start + int(row))
    confirmed_ids = set(np.unique(tracker_ids[tracker_ids >= 0]).tolist())
    for track_id, row in first_sighting.items():
        if track_id in confirmed_ids and tracker_ids[row] < 0:
            tracker_ids[row] = track_id
    if settings.min_frames > 1:
        ids, counts = np.unique(tracker_ids[tracker_ids >= 0], return_counts=True)
        tracker_ids[np.isin(tracker_ids, ids[counts < settings.min_frames])] = -1
    return Detections(detections.xyxy, detections.confidence, detections.class_id, detections.frame_index,
                      detections.timestamp, tracker_ids)


def sighting_score(xyxy: np.ndarray, confidence: np.ndarray) -> np.ndarray:
    """How good a sighting is for a track's picture: confident and large."""
    areas = np.prod(xyxy[:, 2:4] - xyxy[:, 0:2], axis=1)
    return confidence * np.sqrt(np.maximum(areas, 1.0))


@dataclass(frozen=True)
class TrackSummary:
    track_id: int
    class_id: int
    first_t: float
    last_t: float
    frames_seen: int
    mean_confidence: float
    path: list[list[float]]  # [t, cx, cy, w, h] points (box centre and size), at most MAX_PATH_POINTS, in pixels
    best_frame: int
    best_box: tuple[float, float, float, float]
    max_step_px: float  # largest centre jump between consecutive sightings
    best_t: float | None = None  # seconds (PTS) of the best sighting: where its crop is taken


def summarize_tracks(tracked: Detections) -> list[TrackSummary]:
    summaries = []
    for track_id in np.unique(tracked.tracker_id[tracked.tracker_id >= 0]):
        part = tracked[tracked.tracker_id == track_id]
        classes, counts = np.unique(part.class_id, return_counts=True)
        centres = (part.xyxy[:, 0:2] + part.xyxy[:, 2:4]) / 2
        sizes = part.xyxy[:, 2:4] - part.xyxy[:, 0:2]
        best = int(np.argmax(sighting_score(part.xyxy, part.confidence)))
        keep = np.unique(np.linspace(0, len(part) - 1, min(len(part), MAX_PATH_POINTS)).astype(int))
        steps = np.linalg.norm(np.diff(centres, axis=0), axis=1) if len(part) > 1 else np.zeros(1)
        summaries.append(TrackSummary(
            track_id=int(track_id),
            class_id=int(classes[np.argmax(counts)]),
            first_t=float(part.timestamp.min()),
            last_t=float(part.timestamp.max()),
            frames_seen=len(part),
            mean_confidence=float(part.confidence.mean()),
            path=[[round(float(part.timestamp[i]), 3), round(float(centres[i, 0]), 1), round(float(centres[i, 1]), 1),
                   round(float(sizes[i, 0]), 1), round(float(sizes[i, 1]), 1)] for i in keep],
            best_frame=int(part.frame_index[best]),
            best_t=float(part.timestamp[best]),
            best_box=tuple(float(v) for v in part.xyxy[best]),
            max_step_px=float(steps.max()),
        ))
    return summaries


def appearance(crop_bgr: np.ndarray | None) -> np.ndarray | None:
    """A colour signature of a crop: hue-saturation histograms of its upper and lower halves (clothing),
    from the middle of the box (less background)."""
    import cv2

    if crop_bgr is None or crop_bgr.size == 0:
        return None
    height, width = crop_bgr.shape[:2]
    middle = crop_bgr[:, int(width * 0.2):max(int(width * 0.8), int(width * 0.2) + 1)]
    hsv = cv2.cvtColor(middle, cv2.COLOR_BGR2HSV)
    halves = (hsv[: height // 2], hsv[height // 2:]) if height >= 2 else (hsv, hsv)
    hists = [cv2.calcHist([half], [0, 1], None, [16, 4], [0, 180, 0, 256]).ravel() for half in halves]
    return np.concatenate([h / max(float(h.sum()), 1.0) for h in hists]).astype(np.float32)


def _appearance_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Bhattacharyya distance between two signatures (0 the same, 1 nothing in common), halves averaged."""
    half = len(a) // 2
    parts = [(a[:half], b[:half]), (a[half:], b[half:])]
    return float(np.mean([np.sqrt(max(0.0, 1.0 - float(np.sum(np.sqrt(x * y))))) for x, y in parts]))


def relink(tracked: Detections, signatures: dict[int, np.ndarray], frame_size: tuple[int, int] | None = None,
           settings: TrackerSettings = DEFAULT_TRACKER) -> Detections:
    """``tracked`` with the fragments of one object under one id (the earliest fragment's).

    A fragment joins an earlier one of the same class when the earlier was lost inside the picture (not at
    its edge), the later starts within ``relink_seconds``, within ``relink_heights`` box heights of where the
    earlier's last motion leads, and both have a signature (`appearance`) within ``relink_appearance``.
    The closest pairs are joined first, each fragment at most once on each side."""
    ids = np.unique(tracked.tracker_id[tracked.tracker_id >= 0])
    if len(ids) < 2:
        return tracked
    ends, starts = {}, {}
    for track_id in ids:
        part = tracked[tracked.tracker_id == track_id]
        order = np.argsort(part.timestamp, kind="stable")
        part = part[order]
        classes, counts = np.unique(part.class_id, return_counts=True)
        centres = (part.xyxy[:, :2] + part.xyxy[:, 2:]) / 2
        velocity = ((centres[-1] - centres[max(0, len(part) - 4)]) /
                    max(float(part.timestamp[-1] - part.timestamp[max(0, len(part) - 4)]), 1e-6)
                    if len(part) > 1 else np.zeros(2))
        ends[int(track_id)] = (float(part.timestamp[-1]), part.xyxy[-1], velocity, int(classes[np.argmax(counts)]))
        starts[int(track_id)] = (float(part.timestamp[0]), part.xyxy[0])

    def at_edge(box: np.ndarray) -> bool:
        """Lost with its centre near the border: it walked out. (A big box touching the border is often
        someone close to the camera, well inside the picture.)"""
        if frame_size is None:
            return False
        x, y = (box[:2] + box[2:]) / 2
        return min(x, frame_size[0] - x) < 0.08 * frame_size[0] or min(y, frame_size[1] - y) < 0.08 * frame_size[1]

    pairs = []
    for earlier, (end_t, end_box, velocity, cls) in ends.items():
        if at_edge(end_box) or earlier not in signatures:
            continue
        height = max(float(end_box[3] - end_box[1]), 1.0)
        for later, (start_t, start_box) in starts.items():
            gap = start_t - end_t
            if later == earlier or not 0 < gap <= settings.relink_seconds or ends[later][3] != cls \
                    or later not in signatures:
                continue
            led_to = (end_box[:2] + end_box[2:]) / 2 + velocity * gap
            apart = float(np.hypot(*(((start_box[:2] + start_box[2:]) / 2) - led_to))) / height
            looks = _appearance_distance(signatures[earlier], signatures[later])
            if apart <= settings.relink_heights and looks <= settings.relink_appearance:
                pairs.append((looks + apart / settings.relink_heights * settings.relink_appearance, earlier, later))
    joined_from, joined_to, root = set(), set(), {int(i): int(i) for i in ids}
    for _, earlier, later in sorted(pairs):
        if earlier in joined_from or later in joined_to:
            continue
        joined_from.add(earlier)
        joined_to.add(later)
        root[later] = earlier
    if not joined_to:
        return tracked

    def find(track_id: int) -> int:
        while root[track_id] != track_id:
            track_id = root[track_id]
        return track_id

    new_ids = np.array([find(int(i)) if i >= 0 else -1 for i in tracked.tracker_id], np.int64)
    return Detections(tracked.xyxy, tracked.confidence, tracked.class_id, tracked.frame_index, tracked.timestamp,
                      new_ids)
