"""Stage outputs in PostgreSQL: what each stage writes for one partition, and what later stages read back.

Every partition's rows are written through `writer.replace_partition_rows` (COPY, replaced per partition
under that partition's lock, in the caller's transaction); the tables of distinct descriptions shared by
all partitions (`descriptions`, `description_vectors`) are kept beside them under their own locks.
Reads return typed rows (psycopg's `dict_row`), never positional tuples.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import psycopg
from psycopg.rows import dict_row

from video_analysis.events.track_facts import SceneEvidence, TrackFacts
from video_analysis.store import vector_index
from video_analysis.store.writer import replace_partition_rows
from video_analysis.vision.detections import Detections
from video_analysis.vision.images import crop_key
from video_analysis.vision.scene import StaticRegion
from video_analysis.vision.tracking import TrackSummary

# Embedding kinds that describe tracks: they go when the tracks they describe are replaced.
TRACK_EMBEDDING_KINDS = ("track_text", "track_image")


@dataclass(frozen=True)
class ModelStamp:
    """Which model produced a row: every stage output carries it."""

    name: str
    version: str


def replace_detections(conn: psycopg.Connection, partition_key: str, detections: Detections,
                       class_names: dict[int, str], model: ModelStamp) -> int:
    names = [class_names.get(int(c), str(int(c))) for c in detections.class_id]
    rows = (
        (int(detections.frame_index[i]), float(detections.timestamp[i]), names[i], float(detections.confidence[i]),
         *(float(v) for v in detections.xyxy[i]), model.name, model.version)
        for i in range(len(detections))
    )
    return replace_partition_rows(conn, "detections", partition_key, (
        "frame_index", "t", "class_name", "confidence", "x1", "y1", "x2", "y2", "model_name", "model_version"), rows)


def replace_static_objects(conn: psycopg.Connection, partition_key: str, regions: list[StaticRegion]) -> int:
    rows = ((i, r.first_t, r.last_t, *r.xyxy, r.samples) for i, r in enumerate(regions, start=1))
    return replace_partition_rows(conn, "static_objects", partition_key, (
        "object_id", "first_t", "last_t", "x1", "y1", "x2", "y2", "samples"), rows)


def replace_sighting_crops(conn: psycopg.Connection, partition_key: str, crops: dict[tuple, bytes]) -> int:
    """Crops keyed as `passes.crop_key` makes them: (frame index, x1, y1, x2, y2)."""
    rows = ((key[0], *key[1:], jpeg) for key, jpeg in crops.items())
    return replace_partition_rows(conn, "sighting_crops", partition_key,
                                  ("frame_index", "x1", "y1", "x2", "y2", "jpeg"), rows)


def load_sighting_crops(conn: psycopg.Connection, partition_key: str) -> dict[tuple, bytes]:
    with conn.cursor(row_factory=dict_row) as cursor:
        rows = cursor.execute("SELECT frame_index, x1, y1, x2, y2, jpeg FROM sighting_crops WHERE partition_key = %s",
                              (partition_key,)).fetchall()
    return {crop_key(r["frame_index"], (r["x1"], r["y1"], r["x2"], r["y2"])): bytes(r["jpeg"]) for r in rows}


def load_scene_evidence(conn: psycopg.Connection, partition_key: str, classes: Sequence[str]) -> SceneEvidence:
    """What the scene rules read: the static regions, and the sightings of ``classes`` (people, vehicles,
    objects that may be left) as the detector reported them, whether or not they became tracks."""
    with conn.cursor(row_factory=dict_row) as cursor:
        regions = [StaticRegion(r["first_t"], r["last_t"], (r["x1"], r["y1"], r["x2"], r["y2"]), r["samples"])
                   for r in cursor.execute("""SELECT first_t, last_t, x1, y1, x2, y2, samples FROM static_objects
                                              WHERE partition_key = %s ORDER BY object_id""", (partition_key,))]
        rows = cursor.execute(
            """SELECT t, class_name, confidence, x1, y1, x2, y2 FROM detections
               WHERE partition_key = %s AND class_name = ANY(%s) ORDER BY t""",
            (partition_key, list(classes))).fetchall()
    return SceneEvidence(
        regions,
        times=np.array([r["t"] for r in rows], np.float64),
        classes=np.array([r["class_name"] for r in rows], object),
        confidence=np.array([r["confidence"] for r in rows], np.float32),
        xyxy=np.array([(r["x1"], r["y1"], r["x2"], r["y2"]) for r in rows], np.float32).reshape(len(rows), 4),
    )


def load_detections(conn: psycopg.Connection, partition_key: str) -> tuple[Detections, dict[int, str]]:
    """Detections of one video with class names mapped to dense ids (the tracker only needs ids)."""
    with conn.cursor(row_factory=dict_row) as cursor:
        rows = cursor.execute(
            """SELECT frame_index, t, class_name, confidence, x1, y1, x2, y2
               FROM detections WHERE partition_key = %s ORDER BY frame_index, confidence DESC""",
            (partition_key,),
        ).fetchall()
    if not rows:
        return Detections.empty(), {}
    names = sorted({r["class_name"] for r in rows})
    ids = {name: i for i, name in enumerate(names)}
    detections = Detections(
        xyxy=np.array([(r["x1"], r["y1"], r["x2"], r["y2"]) for r in rows], np.float32),
        confidence=np.array([r["confidence"] for r in rows], np.float32),
        class_id=np.array([ids[r["class_name"]] for r in rows], np.int32),
        frame_index=np.array([r["frame_index"] for r in rows], np.int32),
        timestamp=np.array([r["t"] for r in rows], np.float64),
    )
    return detections, dict(enumerate(names))


def replace_tracks(conn: psycopg.Connection, partition_key: str, tracks: list[TrackSummary],
                   class_names: dict[int, str], thumbnails: dict[int, bytes], model: ModelStamp) -> int:
    """Replace the video's tracks; their attributes (by cascade) and track embeddings go with the old ones.

    Track ids restart at 1 on every run, so an old attribute or vector left behind would describe a
    different object under the same id.
    """
    vector_index.lock_descriptions(conn)  # before the partition's lock, as the attributes stage takes them
    described = _descriptions_of(conn, partition_key)
    rows = (
        (t.track_id, class_names[t.class_id], t.first_t, t.last_t, t.frames_seen, t.mean_confidence, t.max_step_px,
         json.dumps(t.path), t.best_frame, t.best_t, *t.best_box, thumbnails.get(t.track_id), model.name,
         model.version)
        for t in tracks
    )
    written = replace_partition_rows(conn, "tracks", partition_key, (
        "track_id", "class_name", "first_t", "last_t", "frames_seen", "mean_confidence", "max_step_px", "path",
        "best_frame", "best_t", "best_x1", "best_y1", "best_x2", "best_y2", "thumbnail_jpeg", "model_name",
        "model_version"), rows)
    conn.execute("DELETE FROM embeddings WHERE partition_key = %s AND kind = ANY(%s)",
                 (partition_key, list(TRACK_EMBEDDING_KINDS)))
    forget_descriptions(conn, described)  # the old tracks' attributes went by cascade
    return written


def _descriptions_of(conn: psycopg.Connection, partition_key: str) -> list[str]:
    """The md5 of each distinct description the partition's tracks have."""
    return [digest for digest, in conn.execute(
        "SELECT DISTINCT md5(description) FROM track_attributes WHERE partition_key = %s", (partition_key,))]


def forget_description_vectors(conn: psycopg.Connection, pairs: list[tuple[str, str]]) -> None:
    """Drop the vectors of those (model name, md5 of description) that no track's embedding has any more."""
    if pairs:
        conn.execute(
            """DELETE FROM description_vectors d USING unnest(%s::text[], %s::text[]) AS old (model_name, hash)
               WHERE d.model_name = old.model_name AND md5(d.content) = old.hash
                 AND NOT EXISTS (SELECT 1 FROM embeddings e WHERE e.kind = 'track_text'
                                   AND e.model_name = old.model_name AND md5(e.content) = old.hash)""",
            ([model for model, _ in pairs], [digest for _, digest in pairs]))


def forget_descriptions(conn: psycopg.Connection, hashes: list[str]) -> None:
    """Drop from table ``descriptions`` those of ``hashes`` no track has any more (they would take places
    among the descriptions search walks, and find nothing)."""
    if hashes:
        conn.execute("""DELETE FROM descriptions d USING unnest(%s::text[]) AS old (hash)
                        WHERE md5(d.content) = old.hash AND NOT EXISTS (
                            SELECT 1 FROM track_attributes a WHERE md5(a.description) = old.hash)""", (hashes,))


@dataclass(frozen=True)
class StoredTrack:
    summary: TrackSummary
    class_name: str
    thumbnail_jpeg: bytes | None


def load_tracks(conn: psycopg.Connection, partition_key: str) -> list[StoredTrack]:
    with conn.cursor(row_factory=dict_row) as cursor:
        rows = cursor.execute(
            """SELECT track_id, class_name, first_t, last_t, frames_seen, mean_confidence, path, best_frame,
                      best_t, best_x1, best_y1, best_x2, best_y2, max_step_px, thumbnail_jpeg
               FROM tracks WHERE partition_key = %s ORDER BY track_id""",
            (partition_key,),
        ).fetchall()
    return [
        StoredTrack(
            TrackSummary(track_id=r["track_id"], class_id=-1, first_t=r["first_t"], last_t=r["last_t"],
                         frames_seen=r["frames_seen"], mean_confidence=r["mean_confidence"], path=r["path"],
                         best_frame=r["best_frame"],
                         best_box=(r["best_x1"], r["best_y1"], r["best_x2"], r["best_y2"]),
                         max_step_px=r["max_step_px"], best_t=r["best_t"]),
            r["class_name"], r["thumbnail_jpeg"])
        for r in rows
    ]


def replace_attributes(conn: psycopg.Connection, partition_key: str, attributes: list, profile: str,
                       extras: dict[int, dict] | None = None) -> int:
    """Replace the partition's attributes, and keep table ``descriptions`` holding each distinct description
    some track has (search matches words there, then finds the tracks)."""
    vector_index.lock_descriptions(conn)
    described = _descriptions_of(conn, partition_key)
    rows = (
        (a.track_id, a.class_name, a.upper_color, a.lower_color, a.color, a.apparent_height, a.speed_px_s,
         a.speed_heights_s, a.motion, a.heading, a.displacement_px, a.dwell_s, a.zones,
         json.dumps((extras or {}).get(a.track_id, {})), a.description, profile)
        for a in attributes
    )
    written = replace_partition_rows(conn, "track_attributes", partition_key, (
        "track_id", "class_name", "upper_color", "lower_color", "color", "apparent_height", "speed_px_s",
        "speed_heights_s", "motion", "heading", "displacement_px", "dwell_s", "zones", "extras", "description",
        "profile"), rows)
    forget_descriptions(conn, described)
    conn.execute("""INSERT INTO descriptions (content)
                    SELECT DISTINCT ON (md5(description)) description FROM track_attributes
                     WHERE partition_key = %s ORDER BY md5(description)
                    ON CONFLICT DO NOTHING""", (partition_key,))
    return written


def load_descriptions(conn: psycopg.Connection, partition_key: str) -> list[tuple[int, str]]:
    """(track_id, description) of every described track, in track order."""
    with conn.cursor(row_factory=dict_row) as cursor:
        rows = cursor.execute("SELECT track_id, description FROM track_attributes WHERE partition_key = %s "
                              "ORDER BY track_id", (partition_key,)).fetchall()
    return [(r["track_id"], r["description"]) for r in rows]


def person_colour_counts(conn: psycopg.Connection, partition_key: str) -> Counter:
    """How often each clothing colour (upper or lower) occurs among the video's people."""
    with conn.cursor(row_factory=dict_row) as cursor:
        rows = cursor.execute(
            "SELECT unnest(ARRAY[upper_color, lower_color]) AS colour FROM track_attributes "
            "WHERE partition_key = %s AND class_name = 'person'", (partition_key,)).fetchall()
    return Counter(r["colour"] for r in rows if r["colour"])


def track_facts(conn: psycopg.Connection, partition_key: str) -> list[TrackFacts]:
    """What the incident rules need of each track: times, path, size, motion and zones."""
    with conn.cursor(row_factory=dict_row) as cursor:
        rows = cursor.execute(
            """SELECT t.track_id, t.class_name, t.first_t, t.last_t, t.path, t.best_y2 - t.best_y1 AS box_height,
                      a.motion, a.speed_heights_s, a.zones, a.upper_color, a.lower_color
               FROM tracks t JOIN track_attributes a USING (partition_key, track_id)
               WHERE t.partition_key = %s ORDER BY t.first_t""",
            (partition_key,),
        ).fetchall()
    return [TrackFacts(**{**r, "zones": tuple(r["zones"])}) for r in rows]


def replace_embeddings(conn: psycopg.Connection, partition_key: str, kind: str, model: ModelStamp | None,
                       items: list[tuple[int | None, str | None]], vectors: np.ndarray | None) -> int:
    """Replace one kind of embedding for a video; items are (track_id, content) per vector row.

    With no model (the profile has none for this kind) the kind's old rows are removed and none written.
    """
    from pgvector import Vector

    vector_index.lock_indexes(conn)  # before any row: see lock_indexes
    if model is None or not items:
        items, vectors = [], np.zeros((0, 1), np.float32)
    dim = int(vectors.shape[1])
    rows = ((track_id, content, model.name, model.version, dim, Vector(vector))
            for (track_id, content), vector in zip(items, vectors, strict=True))
    replaced = conn.execute(  # the descriptions this partition held, some perhaps held by no other track
        "SELECT DISTINCT model_name, md5(content) FROM embeddings WHERE partition_key = %s AND kind = 'track_text' "
        "AND content IS NOT NULL", (partition_key,)).fetchall() if kind == "track_text" else []
    written = replace_partition_rows(
        conn, "embeddings", partition_key, ("track_id", "content", "model_name", "model_version", "dim", "embedding"),
        rows, scope={"kind": kind}, binary_types=["int4", "text", "text", "text", "int4", "vector"])
    forget_description_vectors(conn, replaced)  # a description no track has any more is not searched
    if kind == "track_text" and written:
        # Each description's vector once, for search's index over distinct descriptions (two runs adding
        # the same descriptions at once are kept apart by the index lock taken above).
        conn.execute(
            """INSERT INTO description_vectors (model_name, content, model_version, dim, embedding)
               SELECT DISTINCT ON (md5(content)) model_name, content, model_version, dim, embedding
                 FROM embeddings WHERE partition_key = %s AND kind = 'track_text' AND content IS NOT NULL
                ORDER BY md5(content)
               ON CONFLICT (model_name, md5(content)) DO UPDATE
                  SET model_version = excluded.model_version, dim = excluded.dim, embedding = excluded.embedding
                WHERE description_vectors.model_version <> excluded.model_version""",
            (partition_key,))
    return written


def replace_summary(conn: psycopg.Connection, partition_key: str, *, safety_score: int, incidents: list[dict],
                    summary: str, facts: dict, generator: str) -> None:
    replace_partition_rows(
        conn, "summaries", partition_key,
        ("safety_score", "incident_count", "incidents", "summary", "facts", "generator"),
        [(safety_score, len(incidents), json.dumps(incidents), summary, json.dumps(facts), generator)])
