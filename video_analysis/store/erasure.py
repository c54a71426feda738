"""Erasure on request: a video's footage and every fact derived from it, gone, with an audit record.

What goes, for each video (every version of its key): the object in the store and its cached copy; its rows in
every table (detections, tracks, their attributes and crops, embeddings, static objects, the summary with its
incidents, stage records: all hang off ``videos`` with ON DELETE CASCADE); the descriptions and description
vectors no other track has any more (search walks those); and the daily reports of the days it fell on,
recomputed without it. The audit record (table ``erasures``) holds counts, camera names and the span of
recording times: never a key, a file name or anything the footage showed.

Footage goes first, then the rows in one transaction: a crash in between leaves rows whose footage is gone,
which the same request, run again, finds and finishes. A request that matches nothing changes nothing.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

import psycopg
from psycopg.types.json import Jsonb

from video_analysis.runtime.object_store import ObjectInfo, ObjectStore, ObjectStoreError
from video_analysis.store import outputs, reports, vector_index

# The tables whose rows belong to one video (each has partition_key), counted for the audit record.
DERIVED_TABLES = ("detections", "tracks", "track_attributes", "embeddings", "static_objects", "sighting_crops",
                  "counting_events", "counting_hours", "scene_frames", "summaries", "stage_runs")


@dataclass(frozen=True)
class ErasedVideo:
    partition_key: str
    obj: ObjectInfo
    camera: str | None
    recorded_at: datetime | None


@dataclass
class Erasure:
    videos: list[ErasedVideo]
    asked_for: str
    rows: Counter = field(default_factory=Counter)
    footage_bytes: int = 0
    footage_removed: int = 0
    audit_id: int | None = None

    def describe(self) -> str:
        rows = ", ".join(f"{n} {table}" for table, n in sorted(self.rows.items()) if n) or "no derived rows"
        return (f"{len(self.videos)} video(s), {self.footage_removed} footage object(s) "
                f"({self.footage_bytes / 2**20:.1f} MiB), {rows}")


def select_videos(conn: psycopg.Connection, videos: list[str] = (), camera: str | None = None,
                  since: datetime | None = None, until: datetime | None = None) -> list[ErasedVideo]:
    """The videos a request names: partition keys or object keys (every version of a key), or a camera's
    recordings in [since, until)."""
    if videos and camera:
        raise ValueError("name videos, or a camera and a time range, not both")
    if not videos and not camera:
        raise ValueError("name the videos (partition keys or object keys), or a camera with --since/--until")
    if videos:
        where, params = "partition_key = ANY(%(names)s) OR object_key = ANY(%(names)s)", {"names": list(videos)}
    else:
        where = ("camera = %(camera)s AND (%(since)s::timestamptz IS NULL OR recorded_at >= %(since)s) "
                 "AND (%(until)s::timestamptz IS NULL OR recorded_at < %(until)s)")
        params = {"camera": camera, "since": since, "until": until}
    rows = conn.execute(
        f"""SELECT partition_key, object_key, version, size_bytes, last_modified, source, bucket, etag, camera,
                   recorded_at FROM videos WHERE {where} ORDER BY recorded_at NULLS FIRST, partition_key""",
        params).fetchall()
    return [ErasedVideo(key, ObjectInfo(object_key, version, size or 0, modified, source, bucket, etag), cam, at)
            for key, object_key, version, size, modified, source, bucket, etag, cam, at in rows]


def count_rows(conn: psycopg.Connection, keys: list[str]) -> Counter:
    found = Counter({"videos": len(keys)})
    for table in DERIVED_TABLES:
        found[table] = conn.execute(f"SELECT count(*) FROM {table} WHERE partition_key = ANY(%s)",  # noqa: S608
                                    (keys,)).fetchone()[0]
    return found


def erase(conn: psycopg.Connection, store: ObjectStore, videos: list[ErasedVideo], asked_for: str,
          *, this_version_only: bool = False) -> Erasure:
    """Remove the footage, then every derived row and the descriptions left unused, recompute the daily
    reports of the days touched, and write the audit record (``conn`` in autocommit: the rows go in one
    transaction of their own). ``this_version_only`` (retention): footage whose key now holds a newer upload
    stays, with that upload; a request to forget takes the key's footage whatever its version."""
    erasure = Erasure(videos, asked_for)
    if not videos:
        return erasure
    keys = [v.partition_key for v in videos]
    for video in videos:
        if this_version_only and not holds_version(store, video.obj):
            continue
        if store.delete(video.obj):
            erasure.footage_removed += 1
            erasure.footage_bytes += video.obj.size
    with conn.transaction():
        vector_index.lock_indexes(conn)  # first, as every writer of vectors
        erasure.rows = count_rows(conn, keys)
        descriptions = [h for h, in conn.execute(
            "SELECT DISTINCT md5(description) FROM track_attributes WHERE partition_key = ANY(%s)", (keys,))]
        vectors = conn.execute(
            """SELECT DISTINCT model_name, md5(content) FROM embeddings
                WHERE partition_key = ANY(%s) AND kind = 'track_text' AND content IS NOT NULL""", (keys,)).fetchall()
        days = sorted({v.recorded_at.date() for v in videos if v.camera and v.recorded_at})
        # a newer version's `superseded_by` pointer at an erased one goes with it
        conn.execute("UPDATE videos SET superseded_by = NULL WHERE superseded_by = ANY(%s)", (keys,))
        conn.execute("DELETE FROM videos WHERE partition_key = ANY(%s)", (keys,))
        outputs.forget_descriptions(conn, descriptions)
        outputs.forget_description_vectors(conn, vectors)
        for day in days:
            reports.replace_daily_report(conn, day)
        recorded = sorted(v.recorded_at for v in videos if v.recorded_at)
        erasure.audit_id = conn.execute(
            """INSERT INTO erasures (asked_for, videos, cameras, recorded_from, recorded_until, footage_bytes,
                                     rows_removed)
               VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING id""",
            (asked_for, len(videos), sorted({v.camera for v in videos if v.camera}),
             recorded[0] if recorded else None, recorded[-1] if recorded else None, erasure.footage_bytes,
             Jsonb(dict(erasure.rows)))).fetchone()[0]
    return erasure


def holds_version(store: ObjectStore, obj: ObjectInfo) -> bool:
    """Whether the key still holds this version's bytes (not replaced by a newer upload, not gone)."""
    try:
        return store.head(obj.key).version == obj.version
    except ObjectStoreError:
        return False
