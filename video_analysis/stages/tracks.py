"""tracks: objects followed across sampled frames with ByteTrack, one row per track."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from video_analysis.runtime.object_store import ObjectStore
from video_analysis.stages import MissingUpstreamError, StageResult
from video_analysis.store import catalog, quality
from video_analysis.store.db import Database
from video_analysis.store.outputs import ModelStamp, load_detections, load_sighting_crops, replace_tracks
from video_analysis.vision.evidence import TrackPolicy, policy_for_camera
from video_analysis.vision.images import crop_key
from video_analysis.vision.passes import track_thumbnails, track_video

STAGE = "tracks"


def run(db: Database, partition_key: str, store: ObjectStore, *, policy: TrackPolicy | None = None,
        zones_file: Path | None = None, run_id: str | None = None) -> StageResult:
    """Track the stored detections and replace the video's tracks, whatever this run finds (even none).

    Only tracks the policy keeps (the camera's classes, enough evidence) are stored; the rest are counted.
    """
    with db.session() as conn:
        video = catalog.ready_video(conn, partition_key)
        detections, class_names = load_detections(conn, partition_key)
        detection_pass = catalog.stage_record(conn, partition_key, "detections")
        crops = load_sighting_crops(conn, partition_key)
    if detection_pass is None:
        raise MissingUpstreamError(f"{partition_key}: detections have not been materialized")
    tracked = track_video(detections, detection_pass.details["sampled_frames"], detection_pass.details["sample_fps"],
                          crops=crops, frame_size=(video.width, video.height) if video.width and video.height else None)
    policy = policy_for_camera(policy or TrackPolicy(None, 1, 0.0), zones_file, video.camera)
    kept = [policy.keeps(class_names[t.class_id], t.frames_seen, t.mean_confidence) for t in tracked]
    found = [t for t, keep in zip(tracked, kept, strict=True) if keep]
    dropped = Counter(class_names[t.class_id] for t, keep in zip(tracked, kept, strict=True) if not keep)
    thumbnails = track_thumbnails(None, found, crops) if found else {}
    if len(thumbnails) < len(found):  # crops the detection pass did not keep: seek to them
        with store.local_copy(video.obj) as path:
            thumbnails = track_thumbnails(path, found, crops)
    model = ModelStamp(detection_pass.details.get("model_name", "unknown"), detection_pass.model_version or "unknown")
    with db.session() as conn:
        rows = replace_tracks(conn, partition_key, found, class_names, thumbnails, model)
        catalog.record_stage(conn, partition_key, STAGE, "done", row_count=rows, model_version=model.version,
                             run_id=run_id)
        findings = quality.track_findings(conn, partition_key, video.width, video.height)
    per_class = Counter(class_names[t.class_id] for t in found)
    examples = [{"track": t.track_id, "class": class_names[t.class_id], "from_s": round(t.first_t, 1),
                 "to_s": round(t.last_t, 1), "frames": t.frames_seen} for t in found[:5]]
    return StageResult(rows, {"per_class": dict(per_class.most_common()), "examples": examples,
                              "left_out": dict(dropped.most_common()), "policy": policy.describe(),
                              "crops_from_detection_pass": sum(1 for t in found
                                                               if crop_key(t.best_frame, t.best_box) in crops)},
                       findings)
