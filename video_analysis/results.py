"""Stage outputs in PostgreSQL: each stage replaces its rows for one partition in one transaction.

Writes go through COPY (fast for the tens of thousands of rows a long video yields); the delete and
the copy share the caller's transaction, so a re-run never duplicates and a crash writes nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import psycopg

from video_analysis.detections import Detections
from video_analysis.tracking import TrackSummary


@dataclass(frozen=True)
class ModelStamp:
    name: str
    version: str


def replace_detections(conn: psycopg.Connection, partition_key: str, detections: Detections,
                       class_names: dict[int, str], model: ModelStamp) -> int:
    conn.execute("DELETE FROM detections WHERE partition_key = %s", (partition_key,))
    names = [class_names.get(int(c), str(int(c))) for c in detections.class_id]
    with conn.cursor().copy(
        "COPY detections (partition_key, frame_index, t, class_name, confidence, x1, y1, x2, y2, "
        "model_name, model_version) FROM STDIN"
    ) as copy:
        for i in range(len(detections)):
            x1, y1, x2, y2 = (float(v) for v in detections.xyxy[i])
            copy.write_row((partition_key, int(detections.frame_index[i]), float(detections.timestamp[i]), names[i],
                            float(detections.confidence[i]), x1, y1, x2, y2, model.name, model.version))
    return len(detections)


def load_detections(
    conn: psycopg.Connection, partition_key: str
) -> tuple[Detections, dict[int, str], ModelStamp | None]:
    """Detections of one video with class names mapped to dense ids (the tracker only needs ids)."""
    rows = conn.execute(
        """SELECT frame_index, t, class_name, confidence, x1, y1, x2, y2, model_name, model_version
           FROM detections WHERE partition_key = %s ORDER BY frame_index, confidence DESC""",
        (partition_key,),
    ).fetchall()
    if not rows:
        return Detections.empty(), {}, None
    names = sorted({r[2] for r in rows})
    ids = {name: i for i, name in enumerate(names)}
    detections = Detections(
        xyxy=np.array([r[4:8] for r in rows], np.float32),
        confidence=np.array([r[3] for r in rows], np.float32),
        class_id=np.array([ids[r[2]] for r in rows], np.int32),
        frame_index=np.array([r[0] for r in rows], np.int32),
        timestamp=np.array([r[1] for r in rows], np.float64),
    )
    return detections, dict(enumerate(names)), ModelStamp(rows[0][8], rows[0][9])


def replace_tracks(conn: psycopg.Connection, partition_key: str, tracks: list[TrackSummary],
                   class_names: dict[int, str], thumbnails: dict[int, bytes], model: ModelStamp) -> int:
    conn.execute("DELETE FROM tracks WHERE partition_key = %s", (partition_key,))
    with conn.cursor().copy(
        "COPY tracks (partition_key, track_id, class_name, first_t, last_t, frames_seen, mean_confidence, "
        "max_step_px, path, best_frame, best_x1, best_y1, best_x2, best_y2, thumbnail_jpeg, model_name, "
        "model_version) FROM STDIN"
    ) as copy:
        for track in tracks:
            copy.write_row((partition_key, track.track_id, class_names[track.class_id], track.first_t, track.last_t,
                            track.frames_seen, track.mean_confidence, track.max_step_px, json.dumps(track.path),
                            track.best_frame, *track.best_box, thumbnails.get(track.track_id), model.name,
                            model.version))
    return len(tracks)


@dataclass(frozen=True)
class StoredTrack:
    summary: TrackSummary
    class_name: str
    thumbnail_jpeg: bytes | None


def load_tracks(conn: psycopg.Connection, partition_key: str) -> list[StoredTrack]:
    rows = conn.execute(
        """SELECT track_id, class_name, first_t, last_t, frames_seen, mean_confidence, path, best_frame,
                  best_x1, best_y1, best_x2, best_y2, max_step_px, thumbnail_jpeg
           FROM tracks WHERE partition_key = %s ORDER BY track_id""",
        (partition_key,),
    ).fetchall()
    return [
        StoredTrack(TrackSummary(track_id=r[0], class_id=-1, first_t=r[2], last_t=r[3], frames_seen=r[4],
                                 mean_confidence=r[5], path=r[6], best_frame=r[7], best_box=tuple(r[8:12]),
                                 max_step_px=r[12]), r[1], r[13])
        for r in rows
    ]


def replace_attributes(conn: psycopg.Connection, partition_key: str, attributes: list, profile: str,
                       extras: dict[int, dict] | None = None) -> int:
    conn.execute("DELETE FROM track_attributes WHERE partition_key = %s", (partition_key,))
    with conn.cursor().copy(
        "COPY track_attributes (partition_key, track_id, class_name, upper_color, lower_color, color, "
        "apparent_height, speed_px_s, speed_heights_s, motion, heading, displacement_px, dwell_s, zones, extras, "
        "description, profile) FROM STDIN"
    ) as copy:
        for a in attributes:
            copy.write_row((partition_key, a.track_id, a.class_name, a.upper_color, a.lower_color, a.color,
                            a.apparent_height, a.speed_px_s, a.speed_heights_s, a.motion, a.heading,
                            a.displacement_px, a.dwell_s, a.zones, json.dumps((extras or {}).get(a.track_id, {})),
                            a.description, profile))
    return len(attributes)


def replace_embeddings(conn: psycopg.Connection, partition_key: str, kind: str, model: ModelStamp | None,
                       items: list[tuple[int | None, str | None]], vectors: np.ndarray | None) -> int:
    """Replace one kind of embedding for a video; items are (track_id, content) per vector row.

    With no model (the profile has none for this kind) the kind's old rows are removed and none written.
    """
    from pgvector import Vector

    conn.execute("DELETE FROM embeddings WHERE partition_key = %s AND kind = %s", (partition_key, kind))
    if model is None or not items:
        return 0
    dim = int(vectors.shape[1])
    with conn.cursor().copy(
        "COPY embeddings (partition_key, kind, track_id, content, model_name, model_version, dim, embedding) "
        "FROM STDIN WITH (FORMAT BINARY)"
    ) as copy:
        copy.set_types(["text", "text", "int4", "text", "text", "text", "int4", "vector"])
        for (track_id, content), vector in zip(items, vectors, strict=True):
            copy.write_row((partition_key, kind, track_id, content, model.name, model.version, dim, Vector(vector)))
    return len(items)


def replace_summary(conn: psycopg.Connection, partition_key: str, *, safety_score: int, incidents: list[dict],
                    summary: str, facts: dict, generator: str) -> None:
    conn.execute("DELETE FROM summaries WHERE partition_key = %s", (partition_key,))
    conn.execute(
        """INSERT INTO summaries (partition_key, safety_score, incident_count, incidents, summary, facts, generator)
           VALUES (%s, %s, %s, %s, %s, %s, %s)""",
        (partition_key, safety_score, len(incidents), json.dumps(incidents), summary, json.dumps(facts), generator),
    )
