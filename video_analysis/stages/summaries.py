"""summaries: incidents, a 0-100 safety score and a readable summary per video, from tracks and attributes."""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

import numpy as np

from video_analysis.events.counting import crossings, load_lines, visits
from video_analysis.events.crowding import peak_people
from video_analysis.events.incident_record import incidents_json
from video_analysis.events.incident_rules import IncidentRules
from video_analysis.events.incident_summary import safety_score, summary_text
from video_analysis.events.incidents import detect_incidents
from video_analysis.events.track_facts import PEOPLE, VEHICLES
from video_analysis.runtime.object_store import ObjectStore
from video_analysis.stages import StageResult
from video_analysis.store import catalog, quality, vector_index
from video_analysis.store.counting import likely_repeats, replace_counting
from video_analysis.store.db import Database
from video_analysis.store.outputs import (
    ModelStamp,
    StoredTrack,
    load_scene_evidence,
    load_tracks,
    person_colour_counts,
    replace_embeddings,
    replace_summary,
    track_facts,
)
from video_analysis.store.writer import replace_partition_rows
from video_analysis.vision.attributes import load_zones
from video_analysis.vision.narration import narrate
from video_analysis.vision.scenes import box_at, draw_scene
from video_analysis.vision.seeking import frames_at

STAGE = "summaries"
log = logging.getLogger(__name__)


def run(db: Database, partition_key: str, store: ObjectStore, text_embedder, text_model: ModelStamp, *,
        rules: IncidentRules, zones_file: Path | None = None, summarizer=None, summarizer_name: str | None = None,
        summarizer_absent: str | None = None, run_id: str | None = None) -> StageResult:
    """Apply the incident rules, score the video and write its summary (and the summary's text vector).

    With a vision-language ``summarizer``, its text replaces the template when its JSON output validates.
    """
    with db.session() as conn:
        video = catalog.ready_video(conn, partition_key)
        facts = track_facts(conn, partition_key)
        colours = person_colour_counts(conn, partition_key)
        scene = load_scene_evidence(conn, partition_key, (PEOPLE, *VEHICLES, *rules.unattended_classes))
        normal = catalog.camera_normal_people(conn, video.camera, partition_key, rules.crowd_history_videos)
        repeats = likely_repeats(conn, partition_key)
    zones = load_zones(zones_file, video.camera)
    restricted = {z.name for z in zones if z.restricted}
    incidents = detect_incidents(facts, restricted, rules, scene, (video.width, video.height), zones=zones,
                                 normal_people=normal)
    score = safety_score(incidents, rules)
    partial_s = video.footage_s if video.status == "partial" else None
    text = summary_text(video.duration_s, video.camera, facts, incidents, score, colours, partial_s, repeats)
    lines = load_lines(zones_file, video.camera)
    scenes = incident_scenes(store, video.obj, partition_key, db, incidents, zones, lines)
    generator, vlm_note = "template", f"absent ({summarizer_absent}); the templated summary stands"
    if summarizer is not None:
        with db.session() as conn:
            stored = load_tracks(conn, partition_key)
        with store.local_copy(video.obj) as path:
            frames = keyframes(path, stored)
        narrated, vlm_note = narrate(summarizer, frames, {"incidents": incidents_json(incidents),
                                                          "safety_score": score}, text)
        if narrated:
            text, generator = narrated, summarizer_name or "vision-language model"
    with db.session() as conn:
        vector_index.lock_indexes(conn)  # first, as every writer of vectors: see lock_indexes
        replace_counting(conn, partition_key, crossings(facts, lines, video.width, video.height),
                         visits(facts, zones, video.width, video.height))
        if scenes is not None:  # footage that could not be read leaves the scenes kept before
            replace_partition_rows(conn, "scene_frames", partition_key,
                                   ("scene", "incident_type", "start_t", "track_ids", "t", "thumbnail_jpeg"), scenes)
        replace_summary(conn, partition_key, safety_score=score, incidents=incidents_json(incidents), summary=text,
                        facts={"tracks": Counter(f.class_name for f in facts), "rules": rules.__dict__,
                               "peak_people": peak_people(facts), "normal_people": normal},
                        generator=generator)
        replace_embeddings(conn, partition_key, "summary_text", text_model, [(None, text)], text_embedder.embed([text]))
        catalog.record_stage(conn, partition_key, STAGE, "done", row_count=1, run_id=run_id,
                             details={"safety_score": score, "incident_count": len(incidents)})
        findings = quality.summary_findings(conn, partition_key)
    return StageResult(1, {
        "safety_score": score,
        "incident_count": len(incidents),
        "incidents": incidents_json(incidents),
        "summary": text,
        "generator": generator,
        "vlm": vlm_note,
    }, findings)


def keyframes(video_path: Path, tracks: list[StoredTrack], count: int = 4) -> list[np.ndarray]:
    """Best frames of the longest tracks: what a vision-language model looks at."""
    longest = sorted(tracks, key=lambda t: t.summary.last_t - t.summary.first_t, reverse=True)[:count]
    frames = frames_at(video_path, {t.summary.best_t for t in longest if t.summary.best_t is not None})
    return [frames[t] for t in sorted(frames)]


def incident_scenes(store: ObjectStore, obj, partition_key: str, db: Database, incidents, zones,
                    lines) -> list[tuple] | None:
    """Each incident's scene: the frame at its first moment of evidence (its start without one), with the boxes
    of its tracks and the zones and lines drawn; rows (index, type, start, tracks, moment, JPEG). Footage that
    cannot be read (gone to retention, damaged) gives None: the summary is written without new scenes, and the
    scenes kept before stay (cards without one show a track's crop)."""
    if not incidents:
        return []
    moments = [(i.evidence_t[0] if i.evidence_t else i.start_t) for i in incidents]
    try:
        with store.local_copy(obj) as path:
            frames = frames_at(path, moments)
    except Exception as error:  # noqa: BLE001 - a scene is an illustration: its absence is logged, not fatal
        log.warning("no incident scenes for %s: %s", partition_key, error)
        return None
    with db.session() as conn:
        paths = {t.summary.track_id: t.summary.path for t in load_tracks(conn, partition_key)}
    rows = []
    for index, (incident, moment) in enumerate(zip(incidents, moments, strict=True)):
        frame = frames.get(moment)
        if frame is None:
            continue
        boxes = {track: box for track in incident.track_ids
                 if (box := box_at(paths.get(track, []), moment)) is not None}
        caption = f"{incident.type.replace('_', ' ')} at {moment:.0f} s"
        rows.append((index, incident.type, incident.start_t, list(incident.track_ids), moment,
                     draw_scene(frame, boxes, zones, lines, caption)))
    return rows
