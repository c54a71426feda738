"""The pipeline's detector and tracker run over a MOTChallenge sequence, as the stages run them.

``track_footage`` is the detections stage's pass and the tracks stage's tracker and evidence policy on
one video; ``track_public_detections`` is the tracker alone on a sequence's public detections. Either
gives the person tracks as MOT boxes and the frames they were judged on (the frames analysed).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from video_analysis.evaluation.mot import Boxes, Sequence
from video_analysis.vision.detections import Detections
from video_analysis.vision.detectors import Detector
from video_analysis.vision.evidence import TrackPolicy
from video_analysis.vision.passes import detect_video, track_detections
from video_analysis.vision.tracking import DEFAULT_TRACKER, TrackerSettings, assign_tracks, summarize_tracks

SCORED_CLASS = "person"  # what the sequences label


@dataclass(frozen=True)
class TrackingRun:
    tracked: Boxes  # person tracks the policy keeps, on the frames analysed (1-based)
    frames: list[int]  # the frames analysed, 1-based
    detect_seconds: float
    track_seconds: float

    @property
    def seconds_per_frame(self) -> float:
        return (self.detect_seconds + self.track_seconds) / max(1, len(self.frames))


def _kept_person_boxes(tracked: Detections, class_names: dict[int, str], policy: TrackPolicy) -> Boxes:
    kept = {t.track_id for t in summarize_tracks(tracked)
            if class_names.get(t.class_id) == SCORED_CLASS and policy.keeps(SCORED_CLASS, t.frames_seen,
                                                                           t.mean_confidence)}
    rows = tracked[np.isin(tracked.tracker_id, list(kept))]
    xywh = np.concatenate([rows.xyxy[:, :2], rows.xyxy[:, 2:] - rows.xyxy[:, :2]], axis=1).astype(float)
    return Boxes(rows.frame_index.astype(int) + 1, rows.tracker_id.astype(int), xywh, rows.confidence.astype(float))


def track_footage(sequence: Sequence, detector: Detector, *, sample_fps: float | None, policy: TrackPolicy,
                  settings: TrackerSettings = DEFAULT_TRACKER) -> TrackingRun:
    """Detect and track the sequence's video exactly as the detections and tracks stages do."""
    if sequence.video is None:
        raise FileNotFoundError(f"{sequence.folder} has no video file to run the detector on")
    found = detect_video(sequence.video, detector, fps=sequence.fps, sample_fps=sample_fps)
    started = time.perf_counter()
    tracked = track_detections(found.detections, found.sampled_frames, found.sample_fps, settings, found.crops,
                               (sequence.width, sequence.height))
    boxes = _kept_person_boxes(tracked, detector.class_names, policy)
    return TrackingRun(boxes, [i + 1 for i in found.sampled_frames], found.seconds, time.perf_counter() - started)


def track_public_detections(sequence: Sequence, *, every: int = 1, policy: TrackPolicy,
                            settings: TrackerSettings = DEFAULT_TRACKER) -> TrackingRun:
    """The tracker alone on the sequence's public detections, on every ``every``-th frame."""
    public = sequence.public_detections
    if public is None:
        raise FileNotFoundError(f"{sequence.folder} has no det/det.txt")
    frames = list(range(1, sequence.frames + 1, every))
    public = public.on_frames(np.array(frames))
    # Public detection scores are not probabilities on every benchmark (ACF gives any positive number):
    # rescale them into [0, 1] so the tracker's thresholds mean what they mean for our detectors.
    scores = public.confidence.astype(np.float32)
    if len(scores) and (scores.max() > 1 or scores.min() < 0):
        lo, hi = np.percentile(scores, 1), np.percentile(scores, 99)
        scores = np.clip((scores - lo) / max(hi - lo, 1e-6), 0.0, 1.0)
    xyxy = np.concatenate([public.xywh[:, :2], public.xywh[:, :2] + public.xywh[:, 2:]], axis=1)
    detections = Detections(xyxy.astype(np.float32), scores, np.zeros(len(public), np.int32),
                            (public.frame - 1).astype(np.int32), (public.frame - 1) / sequence.fps)
    started = time.perf_counter()
    tracked = assign_tracks(detections, [f - 1 for f in frames], sequence.fps / every, settings)
    boxes = _kept_person_boxes(tracked, {0: SCORED_CLASS}, policy)
    return TrackingRun(boxes, frames, 0.0, time.perf_counter() - started)
