"""Passes over one video: detect on sampled frames, track the detections, crop each track's best sighting.

The detection pass is the one full decode of a video, so everything that needs pixels happens there while
each frame is in memory: the static-object cue, and each track's best-sighting crop (the tracker runs along,
as the tracks stage will run it again over the stored boxes), so no stage seeks back into the file.
"""

from __future__ import annotations

import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from video_analysis.vision.decode_report import DecodeReport
from video_analysis.vision.detections import Detections
from video_analysis.vision.detectors import Detector
from video_analysis.vision.frames import batched, iter_frames
from video_analysis.vision.images import crop_key, decode_jpeg, draw_boxes, make_thumbnail
from video_analysis.vision.sampling import effective_sample_fps
from video_analysis.vision.scene import StaticObjectFinder, StaticRegion
from video_analysis.vision.seeking import frames_at
from video_analysis.vision.tracking import (
    DEFAULT_TRACKER,
    OnlineTracker,
    TrackerSettings,
    TrackSummary,
    appearance,
    assign_tracks,
    relink,
    sighting_score,
    summarize_tracks,
)

TRACK_THUMBNAIL_PX = 128
# Frames analysed per second of video, by default. Chosen on ground truth with the tracker's settings
# (benchmarks/quality.py): at 2 fps people move further than their own width between samples and tracks
# split; at 6 (every 4th frame of 25 fps) the offline detector and tracker hold identities.
DEFAULT_SAMPLE_FPS = 6.0
# Static regions shorter than this are not kept: no rule asks about things left for only seconds.
STATIC_MIN_SECONDS = 10.0
SCENE_FPS = 2.0  # frames a second the static-object cue looks at


class _SceneThread:
    """The static-object cue on a thread of its own, fed the frames in order: OpenCV and numpy release the GIL,
    so it runs while the detector works instead of after it (on a GPU the cue took 40% of the pass's time).
    At most ``backlog`` frames wait for it, so a slow cue holds the pass back rather than piling up frames."""

    def __init__(self, finder: StaticObjectFinder, backlog: int):
        self.finder, self.backlog = finder, max(1, backlog)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="static-object-cue")
        self._pending: deque[Future] = deque()

    def add(self, image: np.ndarray, t: float) -> None:
        self._pending.append(self._pool.submit(self.finder.add, image, t))
        while len(self._pending) > self.backlog:
            self._pending.popleft().result()  # re-raises the cue's error here

    def regions(self, min_seconds: float) -> list[StaticRegion]:
        try:
            while self._pending:
                self._pending.popleft().result()
            return self.finder.regions(min_seconds=min_seconds)
        finally:
            self.close()

    def close(self) -> None:
        for future in self._pending:
            future.cancel()
        self._pool.shutdown(wait=True)


def _crop(image: np.ndarray, xyxy, size: int = TRACK_THUMBNAIL_PX) -> np.ndarray | None:
    x1, y1, x2, y2 = (int(round(v)) for v in xyxy)
    crop = image[max(0, y1):max(y1 + 1, y2), max(0, x1):max(x1 + 1, x2)]
    if crop.size == 0:
        return None
    scale = size / max(crop.shape[:2])
    return cv2.resize(crop, (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale))),
                      interpolation=cv2.INTER_AREA if scale < 1.0 else cv2.INTER_LINEAR)


class BestSightings:
    """Each track's best sighting so far (``sighting_score``, first one on ties, as `summarize_tracks` picks),
    with a small crop of it; a track born on a frame competes from that frame, as its first sighting counts."""

    def __init__(self):
        self._best: dict[int, tuple[float, tuple, np.ndarray]] = {}
        self._confirmed: set[int] = set()
        self._born: set[int] = set()

    def offer(self, image: np.ndarray, detections: Detections, confirmed: np.ndarray, born: np.ndarray) -> None:
        """One analysed frame: its detections and the tracker's ids for them (`OnlineTracker.step`)."""
        self._confirmed.update(confirmed[confirmed >= 0].tolist())
        for track_id in self._born - self._confirmed:  # born last frame, not confirmed now: ByteTrack dropped it
            self._best.pop(track_id, None)
        self._born = set(born[born >= 0].tolist())
        ids = np.where(confirmed >= 0, confirmed, born)
        scores = sighting_score(detections.xyxy, detections.confidence)
        for row in np.flatnonzero(ids >= 0):
            track_id, score = int(ids[row]), float(scores[row])
            if track_id not in self._best or score > self._best[track_id][0]:
                crop = _crop(image, detections.xyxy[row])
                if crop is not None:
                    key = crop_key(detections.frame_index[row], detections.xyxy[row])
                    self._best[track_id] = (score, key, crop)

    def jpegs(self) -> dict[tuple, bytes]:
        """Crop key -> JPEG thumbnail, one per track the tracker confirmed (a one-frame flicker gets none)."""
        return {key: make_thumbnail(crop, width=crop.shape[1]) for track_id, (_, key, crop) in self._best.items()
                if track_id in self._confirmed}


@dataclass(frozen=True)
class DetectionPass:
    detections: Detections
    sampled_frames: list[int]  # indexes of the frames the detector saw (the tracker steps through each)
    sample_fps: float  # frames analysed per second of video
    decode: DecodeReport  # what decoded: frames, errors, covered time, gaps
    seconds: float
    preview_jpeg: bytes | None  # the busiest sampled frame with its boxes drawn
    static_objects: list[StaticRegion]  # what appeared and stayed still, whatever the detector saw
    crops: dict[tuple, bytes]  # best sighting of each track (`crop_key`) -> JPEG thumbnail

    @property
    def frames_processed(self) -> int:
        return len(self.sampled_frames)

    @property
    def seconds_per_frame(self) -> float:
        return self.seconds / max(1, self.frames_processed)


def detect_video(path: Path, detector: Detector, *, fps: float, sample_fps: float | None = DEFAULT_SAMPLE_FPS,
                 batch_size: int = 8) -> DetectionPass:
    """Run the detector on sampled frames: the one full decode of a video, on its own thread while the model
    works. Damaged packets are skipped and counted in the pass's decode report."""
    started = time.perf_counter()
    report = DecodeReport(fps)
    # Frames analysed per second; where the video states no rate, 1 stands in (the tracker's buffer and the
    # tracks stage, which reads this rate back, then agree).
    rate = (effective_sample_fps(sample_fps, fps) if fps > 0 else (sample_fps or 0.0)) or 1.0
    # The static-object cue works in seconds, not frames: 2 frames a second are enough for it, and cost a
    # third of running it on every analysed frame at the default rate.
    scene_rate = min(rate, SCENE_FPS)
    scene, scene_next_t = _SceneThread(StaticObjectFinder(scene_rate), backlog=batch_size), 0.0
    tracker, sightings = OnlineTracker(rate), BestSightings()
    parts: list[Detections] = []
    sampled: list[int] = []
    busiest: tuple[int, np.ndarray | None, Detections | None] = (-1, None, None)
    try:
        for batch in batched(iter_frames(path, sample_fps, report=report), batch_size):
            for frame in batch:  # first, so the cue works while the detector does
                if frame.timestamp >= scene_next_t - 1e-6:
                    scene.add(frame.image, frame.timestamp)
                    scene_next_t = frame.timestamp + 1.0 / scene_rate
            found = detector.detect(batch)
            parts.append(found)
            sampled.extend(frame.index for frame in batch)
            for frame in batch:
                mine = found[found.frame_index == frame.index]
                sightings.offer(frame.image, mine, *tracker.step(mine))
                if len(mine) > busiest[0]:
                    busiest = (len(mine), frame.image, mine)
        static_objects = scene.regions(min_seconds=STATIC_MIN_SECONDS)
    finally:
        scene.close()
    preview = None
    if busiest[1] is not None:
        boxes = busiest[2]
        labels = [f"{detector.class_names.get(int(c), c)} {conf:.2f}"
                  for c, conf in zip(boxes.class_id, boxes.confidence, strict=True)]
        preview = make_thumbnail(draw_boxes(busiest[1], boxes.xyxy, labels), width=320)
    return DetectionPass(Detections.concat(parts), sampled, rate, report, time.perf_counter() - started, preview,
                         static_objects, sightings.jpegs())


def track_detections(detections: Detections, frames: list[int], effective_fps: float,
                     settings: TrackerSettings = DEFAULT_TRACKER, crops: dict[tuple, bytes] | None = None,
                     frame_size: tuple[int, int] | None = None) -> Detections:
    """Detections with track ids: the tracker over the analysed frames, then its fragments re-linked by
    motion and by the appearance of the crops the detection pass kept (none given: no re-linking)."""
    tracked = assign_tracks(detections, frames, effective_fps, settings)
    if not crops:
        return tracked
    signatures = {}
    for fragment in summarize_tracks(tracked):
        signature = appearance(decode_jpeg(crops.get(crop_key(fragment.best_frame, fragment.best_box))))
        if signature is not None:
            signatures[fragment.track_id] = signature
    return relink(tracked, signatures, frame_size, settings)


def track_video(detections: Detections, frames: list[int], effective_fps: float,
                settings: TrackerSettings = DEFAULT_TRACKER, crops: dict[tuple, bytes] | None = None,
                frame_size: tuple[int, int] | None = None) -> list[TrackSummary]:
    return summarize_tracks(track_detections(detections, frames, effective_fps, settings, crops, frame_size))


def track_thumbnails(path: Path | None, tracks: list[TrackSummary], crops: dict[tuple, bytes] | None = None,
                     size: int = TRACK_THUMBNAIL_PX) -> dict[int, bytes]:
    """A small JPEG crop of each track at its best sighting: the one the detection pass kept (``crops``), or,
    for a track it has none of, one taken by seeking to that time (no full decode)."""
    crops = crops or {}
    thumbnails = {t.track_id: crops[key] for t in tracks if (key := crop_key(t.best_frame, t.best_box)) in crops}
    missing = [t for t in tracks if t.track_id not in thumbnails]
    if not missing or path is None:
        return thumbnails
    images = frames_at(path, {t.best_t for t in missing})
    for track in missing:
        image = images.get(track.best_t)
        crop = _crop(image, track.best_box, size) if image is not None else None
        if crop is not None:
            thumbnails[track.track_id] = make_thumbnail(crop, width=crop.shape[1])
    return thumbnails
