"""detections: objects found in sampled frames of one video, by the registry's detector."""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

from video_analysis.runtime.object_store import ObjectStore
from video_analysis.stages import StageResult
from video_analysis.store import catalog, quality
from video_analysis.store.db import Database
from video_analysis.store.outputs import (
    ModelStamp,
    replace_detections,
    replace_sighting_crops,
    replace_static_objects,
)
from video_analysis.vision.detectors import Detector
from video_analysis.vision.passes import DEFAULT_SAMPLE_FPS, detect_video
from video_analysis.vision.tiling import tiles_for_camera, with_tiles
from video_analysis.vision.video_streams import DecodeError

log = logging.getLogger(__name__)

STAGE = "detections"


def run(db: Database, partition_key: str, store: ObjectStore, detector: Detector, model: ModelStamp, *,
        sample_fps: float | None = DEFAULT_SAMPLE_FPS, batch_size: int = 8, run_id: str | None = None,
        tiles: str | None = None, zones_file: Path | None = None) -> StageResult:
    """Detect on every sampled frame and replace the video's detections, stamped with the model; on tiles
    where the video's camera (zones file) or the default ``tiles`` asks for them."""
    with db.session() as conn:
        video = catalog.ready_video(conn, partition_key)
    tiles = tiles_for_camera(tiles, zones_file, video.camera)
    with store.local_copy(video.obj) as path:
        found = detect_video(path, with_tiles(detector, tiles), fps=video.fps, sample_fps=sample_fps,
                             batch_size=batch_size)
    if found.decode.frames == 0:  # the probe's few frames decoded, the full pass found none: nothing usable
        reason = "no frame decodes in a full pass over the video (corrupt, or an unsupported codec)"
        with db.session() as conn:
            catalog.mark_failed(conn, partition_key, reason)
        raise DecodeError(reason)
    with db.session() as conn:
        rows = replace_detections(conn, partition_key, found.detections, detector.class_names, model)
        replace_static_objects(conn, partition_key, found.static_objects)
        replace_sighting_crops(conn, partition_key, found.crops)
        decode = found.decode
        coverage = catalog.save_decode(conn, partition_key, frames=decode.frames, errors=decode.errors,
                                       covered_s=decode.covered_s, gaps=decode.gaps,
                                       stopped_early=decode.stopped_early)
        catalog.record_stage(conn, partition_key, STAGE, "done", row_count=rows, model_version=model.version,
                             run_id=run_id, details={"sampled_frames": found.sampled_frames,
                                                     "sample_fps": found.sample_fps, "model_name": model.name,
                                                     "tiles": tiles})
        findings = quality.detection_findings(conn, partition_key, video.width, video.height)
    findings.append(quality.Finding(
        "footage_complete", coverage.status == "ready",
        "; ".join(coverage.notes) or f"{coverage.covered_s:.1f} s of {coverage.duration_s:.1f} s decoded",
        warn_only=True))
    if coverage.status == "partial":
        log.warning("%s is partial: %s", partition_key, "; ".join(coverage.notes))
    log.info("%s: %d detections on %d frames (%.3f s/frame)", partition_key, rows, found.frames_processed,
             found.seconds_per_frame)
    per_class = Counter(detector.class_names.get(int(c), str(c)) for c in found.detections.class_id)
    metadata = {
        "per_class": dict(per_class.most_common()),
        "frames_processed": found.frames_processed,
        "status": coverage.status,
        "decoded_frames": coverage.decoded_frames,
        "decode_errors": coverage.decode_errors,
        "covered_s": coverage.covered_s,
        "duration_s": coverage.duration_s,
        "gaps": [list(gap) for gap in coverage.gaps],
        "seconds_per_frame": round(found.seconds_per_frame, 4),
        "static_objects": len(found.static_objects),
        "tiles": tiles,
    }
    if found.preview_jpeg:
        metadata["preview"] = found.preview_jpeg
    return StageResult(rows, metadata, findings)
