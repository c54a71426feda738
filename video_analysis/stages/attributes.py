"""attributes: what each track looks like and how it moves: colours, size, speed, heading, dwell, zones."""

from __future__ import annotations

from collections import Counter
from contextlib import nullcontext
from pathlib import Path

import cv2

from video_analysis.runtime.object_store import ObjectStore
from video_analysis.stages import StageResult
from video_analysis.store import catalog
from video_analysis.store.db import Database
from video_analysis.store.outputs import StoredTrack, load_tracks, replace_attributes
from video_analysis.vision.attributes import TrackAttributes, Zone, load_zones, track_attributes
from video_analysis.vision.images import decode_jpeg
from video_analysis.vision.seeking import frames_at

STAGE = "attributes"


def run(db: Database, partition_key: str, store: ObjectStore, *, profile: str, zones_file: Path | None = None,
        classifiers: dict | None = None, depth=None, run_id: str | None = None) -> StageResult:
    """Describe every track; ``classifiers`` (age, gender) and ``depth`` are the full profile's extras."""
    with db.session() as conn:
        video = catalog.ready_video(conn, partition_key)
        stored = load_tracks(conn, partition_key)
    zones = load_zones(zones_file, video.camera)
    with store.local_copy(video.obj) if depth is not None and stored else nullcontext() as video_path:
        extras = model_attributes(stored, classifiers or {}, depth, video_path)
    found = with_model_facts(attributes_for(stored, video.width, video.height, zones), extras)
    with db.session() as conn:
        rows = replace_attributes(conn, partition_key, found, profile=profile, extras=extras)
        catalog.record_stage(conn, partition_key, STAGE, "done", row_count=rows, run_id=run_id)
    colours = Counter(c for a in found for c in (a.upper_color, a.lower_color, a.color) if c)
    return StageResult(rows, {
        "colours": dict(colours.most_common()),
        "motion": dict(Counter(a.motion for a in found)),
        "zones_configured": [z.name for z in zones],
        "examples": [{"track": a.track_id, "description": a.description} for a in found[:5]],
    })


def attributes_for(tracks: list[StoredTrack], width: int, height: int, zones: list[Zone]) -> list[TrackAttributes]:
    return [track_attributes(t.summary, t.class_name, decode_jpeg(t.thumbnail_jpeg), width, height, zones)
            for t in tracks]


def model_attributes(tracks: list[StoredTrack], classifiers: dict, depth=None, video_path=None) -> dict[int, dict]:
    """Per-track extras from full-profile models: {"age": {label, score}, "gender": ..., "relative_depth": x}."""
    extras: dict[int, dict] = {t.summary.track_id: {} for t in tracks}
    people = [t for t in tracks if t.class_name == "person" and t.thumbnail_jpeg]
    crops = [cv2.cvtColor(decode_jpeg(t.thumbnail_jpeg), cv2.COLOR_BGR2RGB) for t in people]
    for name, classifier in classifiers.items():
        for track, (label, score) in zip(people, classifier.classify(crops), strict=True):
            extras[track.summary.track_id][name] = {"label": label, "score": score}
    if depth is not None and video_path is not None and tracks:
        by_time: dict[float, list[StoredTrack]] = {}
        for track in tracks:
            if track.summary.best_t is not None:
                by_time.setdefault(track.summary.best_t, []).append(track)
        frames = frames_at(video_path, by_time)
        for t, members in by_time.items():
            if t in frames:
                values = depth.relative_depth(frames[t], [m.summary.best_box for m in members])
                for member, value in zip(members, values, strict=True):
                    extras[member.summary.track_id]["relative_depth"] = value
    return extras


def with_model_facts(attributes: list[TrackAttributes], extras: dict[int, dict]) -> list[TrackAttributes]:
    """Descriptions mention apparent gender and age when a model provided them (so search can use them)."""
    updated = []
    for attrs in attributes:
        facts = extras.get(attrs.track_id, {})
        words = [facts[k]["label"] for k in ("gender", "age") if k in facts]
        description = f"{attrs.description}, apparently {' '.join(words)}" if words else attrs.description
        updated.append(TrackAttributes(**{**attrs.__dict__, "description": description}))
    return updated
