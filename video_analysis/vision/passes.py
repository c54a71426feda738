"""Passes over one video: detect on sampled frames, track the detections, crop each track's best sighting."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from video_analysis.vision.detections import Detections
from video_analysis.vision.detectors import Detector
from video_analysis.vision.frames import DecodeReport, batched, effective_sample_fps, frames_at, iter_frames
from video_analysis.vision.images import draw_boxes, make_thumbnail
from video_analysis.vision.scene import StaticObjectFinder, StaticRegion
from video_analysis.vision.tracking import (
    DEFAULT_TRACKER,
    TrackerSettings,
    TrackSummary,
    assign_tracks,
    summarize_tracks,
)

TRACK_THUMBNAIL_PX = 128
# Frames analysed per second of video, by default. Chosen on ground truth with the tracker's settings
# (benchmarks/quality.py): at 2 fps people move further than their own width between samples and tracks
# split; at 6 (every 4th frame of 25 fps) the offline detector and tracker hold identities.
DEFAULT_SAMPLE_FPS = 6.0
# Static regions shorter than this are not kept: no rule asks about things left for only seconds.
STATIC_MIN_SECONDS = 10.0


@dataclass(frozen=True)
class DetectionPass:
    detections: Detections
    sampled_frames: list[int]  # indexes of the frames the detector saw (the tracker steps through each)
    sample_fps: float  # frames analysed per second of video
    decode: DecodeReport  # what decoded: frames, errors, covered time, gaps
    seconds: float
    preview_jpeg: bytes | None  # the busiest sampled frame with its boxes drawn
    static_objects: list[StaticRegion]  # what appeared and stayed still, whatever the detector saw

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
    rate = effective_sample_fps(sample_fps, fps) if fps > 0 else (sample_fps or 0.0)
    scene = StaticObjectFinder(rate or 1.0)
    parts: list[Detections] = []
    sampled: list[int] = []
    busiest: tuple[int, np.ndarray | None, Detections | None] = (-1, None, None)
    for batch in batched(iter_frames(path, sample_fps, report=report), batch_size):
        found = detector.detect(batch)
        parts.append(found)
        sampled.extend(frame.index for frame in batch)
        for frame in batch:
            scene.add(frame.image, frame.timestamp)
            mine = found[found.frame_index == frame.index]
            if len(mine) > busiest[0]:
                busiest = (len(mine), frame.image, mine)
    preview = None
    if busiest[1] is not None:
        boxes = busiest[2]
        labels = [f"{detector.class_names.get(int(c), c)} {conf:.2f}"
                  for c, conf in zip(boxes.class_id, boxes.confidence, strict=True)]
        preview = make_thumbnail(draw_boxes(busiest[1], boxes.xyxy, labels), width=320)
    return DetectionPass(Detections.concat(parts), sampled, rate, report, time.perf_counter() - started, preview,
                         scene.regions(min_seconds=STATIC_MIN_SECONDS))


def track_video(detections: Detections, frames: list[int], effective_fps: float,
                settings: TrackerSettings = DEFAULT_TRACKER) -> list[TrackSummary]:
    return summarize_tracks(assign_tracks(detections, frames, effective_fps, settings))


def track_thumbnails(path: Path, tracks: list[TrackSummary], size: int = TRACK_THUMBNAIL_PX) -> dict[int, bytes]:
    """A small JPEG crop of each track at its best sighting, by seeking to those times (no full decode)."""
    images = frames_at(path, {t.best_t for t in tracks})
    crops = {}
    for track in tracks:
        image = images.get(track.best_t)
        if image is None:
            continue
        x1, y1, x2, y2 = (int(round(v)) for v in track.best_box)
        crop = image[max(0, y1):max(y1 + 1, y2), max(0, x1):max(x1 + 1, x2)]
        if crop.size == 0:
            continue
        scale = size / max(crop.shape[:2])
        crops[track.track_id] = make_thumbnail(crop, width=max(1, round(crop.shape[1] * scale)))
    return crops
