"""The ``videos`` catalogue: one row per object version, mapping partition keys back to objects.

Every write here is a single statement or runs inside the caller's transaction, so a failure
never leaves a video half-described.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg.rows import class_row, dict_row
from psycopg.types.json import Jsonb

from video_analysis.runtime.keys import facts_from_key
from video_analysis.runtime.object_store import ObjectInfo
from video_analysis.vision.decode_report import allowed_shortfall_s
from video_analysis.vision.probe import VideoProbe

# When a video's footage began: its recording time from the key, else when it was uploaded. Every time filter
# of search and every count over time is written on this one expression (``v`` is the video).
RECORDED_AT = "coalesce(v.recorded_at, v.last_modified)"


class UnknownVideoError(LookupError):
    """No video is registered under that partition key."""


def register(conn: psycopg.Connection, obj: ObjectInfo) -> bool:
    """Record an object version; returns False when it was already registered (no duplicate row)."""
    facts = facts_from_key(obj.key)
    _lock_object(conn, obj.source, obj.bucket, obj.key)
    cursor = conn.execute(
        """INSERT INTO videos (partition_key, source, bucket, object_key, version, etag, size_bytes,
                               last_modified, camera, recorded_at)
           VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
           ON CONFLICT (partition_key) DO NOTHING""",
        (obj.partition_key, obj.source, obj.bucket, obj.key, obj.version, obj.etag, obj.size,
         obj.last_modified, facts.camera, facts.recorded_at),
    )
    if cursor.rowcount != 1:
        return False
    _refresh_superseded(conn, obj.partition_key)
    return True


def _lock_object(conn: psycopg.Connection, source: str, bucket: str | None, key: str) -> None:
    """Serialise changes to one key's versions (the sensor and a bulk registration may meet)."""
    conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 7))", (f"{source}:{bucket}:{key}",))


# The versions of one key that came before its newest usable (ready or partial) version are superseded by
# it. "Newest" is by registration: the store only ever lists a key's current bytes, and a modification
# time can go backwards (cp -p, rsync -a, a camera's clock). Until a newer upload proves usable, the older
# version stands, so a bad re-upload never hides good footage.
_REFRESH_SUPERSEDED = """
WITH this AS (SELECT source, bucket, object_key FROM videos WHERE partition_key = %(key)s),
versions AS (
    SELECT v.partition_key, v.status, v.registered_at FROM videos v, this
     WHERE v.source = this.source AND v.bucket IS NOT DISTINCT FROM this.bucket AND v.object_key = this.object_key),
newest AS (
    SELECT partition_key, registered_at FROM versions WHERE status IN ('ready', 'partial')
     ORDER BY registered_at DESC, partition_key DESC LIMIT 1)
UPDATE videos v
   SET superseded_by = CASE WHEN n.registered_at > versions.registered_at THEN n.partition_key END
  FROM versions LEFT JOIN newest n ON true
 WHERE v.partition_key = versions.partition_key
   AND v.superseded_by IS DISTINCT FROM (CASE WHEN n.registered_at > versions.registered_at THEN n.partition_key END)
"""


def _refresh_superseded(conn: psycopg.Connection, partition_key: str) -> None:
    found = conn.execute("SELECT source, bucket, object_key FROM videos WHERE partition_key = %s",
                         (partition_key,)).fetchone()
    if found is not None:
        _lock_object(conn, *found)
        conn.execute(_REFRESH_SUPERSEDED, {"key": partition_key})


def footage_states(conn: psycopg.Connection, partition_keys) -> dict[str, tuple[str, datetime | None]]:
    """Where each video's footage is (hot, cold or expired) and since when."""
    return {key: (footage, at) for key, footage, at in conn.execute(
        "SELECT partition_key, footage, footage_at FROM videos WHERE partition_key = ANY(%s)",
        (list(partition_keys),))}


def object_for(conn: psycopg.Connection, partition_key: str) -> ObjectInfo:
    with conn.cursor(row_factory=class_row(ObjectInfo)) as cursor:
        obj = cursor.execute(
            """SELECT object_key AS key, version, size_bytes AS size, last_modified, source, bucket, etag
               FROM videos WHERE partition_key = %s""",
            (partition_key,),
        ).fetchone()
    if obj is None:
        raise UnknownVideoError(f"no video is registered for partition {partition_key!r}")
    return obj


def save_probe(conn: psycopg.Connection, partition_key: str, probe: VideoProbe) -> None:
    """Record what the probe found; a recording that stops early is `partial` from the start.

    Re-probing the same bytes keeps what the full decode found (frames, errors, gaps, and the status it
    decided), since the probe alone cannot see damage in the middle of a file.
    """
    previous = conn.execute(
        "SELECT sha256, decoded_frames IS NOT NULL AND status IN ('ready', 'partial') FROM videos "
        "WHERE partition_key = %s", (partition_key,)).fetchone()
    if previous is not None and previous[0] == probe.sha256 and previous[1]:
        conn.execute(
            """UPDATE videos SET error = NULL, attempts = attempts + 1, probed_at = now(), container = %s,
                      codec = %s, fps = %s, width = %s, height = %s, rotation = %s, frame_count = %s,
                      header_frame_count = %s, duration_s = %s, thumbnail_jpeg = %s
               WHERE partition_key = %s""",
            (probe.container, probe.codec, probe.fps, probe.width, probe.height, probe.rotation,
             probe.frame_count, probe.header_frame_count, probe.duration_s, probe.thumbnail_jpeg, partition_key),
        )
        return
    conn.execute(
        """UPDATE videos SET status = %s, error = NULL, attempts = attempts + 1, probed_at = now(),
                  sha256 = %s, container = %s, codec = %s, fps = %s, width = %s, height = %s, rotation = %s,
                  frame_count = %s, header_frame_count = %s, duration_s = %s, thumbnail_jpeg = %s,
                  covered_s = %s, notes = %s, planned_s = %s, decoded_frames = NULL, decode_errors = NULL,
                  gaps = NULL
           WHERE partition_key = %s""",
        (probe.status, probe.sha256, probe.container, probe.codec, probe.fps, probe.width, probe.height,
         probe.rotation, probe.frame_count, probe.header_frame_count, probe.duration_s, probe.thumbnail_jpeg,
         probe.indexed_s, probe.notes, probe.planned_s, partition_key),
    )
    _refresh_superseded(conn, partition_key)  # a usable re-upload now stands for its key


@dataclass(frozen=True)
class Coverage:
    """How much of a recording decoded, as the detection pass found it."""

    status: str  # ready | partial
    decoded_frames: int
    decode_errors: int
    covered_s: float
    duration_s: float
    gaps: list[tuple[float, float]]
    notes: list[str]


def save_decode(conn: psycopg.Connection, partition_key: str, *, frames: int, errors: int, covered_s: float,
                gaps: list[tuple[float, float]], stopped_early: str | None) -> Coverage:
    """Record what the full decode found, and decide ready or partial by what decoded over time.

    `ready` when the decoded frames cover the container's duration (to within `allowed_shortfall_s`), with
    no decode error and no gap; anything less is `partial`, with the reasons. A camera segment is measured
    against the span the recorder planned for it: one its stream's drop cut short is partial too.
    """
    duration, fps, planned = conn.execute("SELECT duration_s, fps, planned_s FROM videos WHERE partition_key = %s",
                                          (partition_key,)).fetchone()
    notes = []
    if covered_s < duration - allowed_shortfall_s(fps):
        notes.append(f"{covered_s:.1f} s of {duration:.1f} s decoded")
    elif planned and covered_s < planned - allowed_shortfall_s(fps):
        notes.append(f"the recorded segment stops at {covered_s:.1f} s of the {planned:.0f} s to its boundary "
                     "(the stream dropped or the recorder stopped)")
    if errors:
        notes.append(f"{errors} damaged packet{'s' if errors != 1 else ''} skipped")
    if gaps:
        notes.append(f"{len(gaps)} gap{'s' if len(gaps) != 1 else ''}: " +
                     ", ".join(f"{start:.1f}-{end:.1f} s" for start, end in gaps[:5]))
    if stopped_early:
        notes.append(f"unreadable past the last frame ({stopped_early})")
    status = "partial" if notes else "ready"
    conn.execute(
        """UPDATE videos SET status = %s, decoded_frames = %s, decode_errors = %s, covered_s = %s, gaps = %s,
                  notes = %s
           WHERE partition_key = %s AND status IN ('ready', 'partial')""",
        (status, frames, errors, round(covered_s, 3), Jsonb(gaps), notes, partition_key),
    )
    return Coverage(status, frames, errors, round(covered_s, 3), duration, gaps, notes)


def mark_failed(conn: psycopg.Connection, partition_key: str, error: str) -> None:
    """Record why a video is unusable and clear anything an earlier probe stored."""
    conn.execute(
        """UPDATE videos SET status = 'failed', error = %s, attempts = attempts + 1, probed_at = now(),
                  sha256 = NULL, container = NULL, codec = NULL, fps = NULL, width = NULL, height = NULL,
                  rotation = NULL, frame_count = NULL, header_frame_count = NULL, duration_s = NULL,
                  thumbnail_jpeg = NULL, decoded_frames = NULL, decode_errors = NULL, covered_s = NULL,
                  gaps = NULL, notes = NULL
           WHERE partition_key = %s""",
        (error, partition_key),
    )
    _refresh_superseded(conn, partition_key)  # an unusable version hides no other


def record_stage(
    conn: psycopg.Connection,
    partition_key: str,
    stage: str,
    status: str,
    *,
    row_count: int | None = None,
    model_version: str | None = None,
    error: str | None = None,
    run_id: str | None = None,
    details: dict | None = None,
) -> None:
    conn.execute(
        """INSERT INTO stage_runs (partition_key, stage, status, row_count, model_version, error, run_id, details)
           VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
           ON CONFLICT (partition_key, stage) DO UPDATE SET
               status = EXCLUDED.status, row_count = EXCLUDED.row_count,
               model_version = EXCLUDED.model_version, error = EXCLUDED.error,
               run_id = EXCLUDED.run_id, details = EXCLUDED.details, updated_at = now()""",
        (partition_key, stage, status, row_count, model_version, error, run_id, Jsonb(details) if details else None),
    )


def mark_stage_running(conn: psycopg.Connection, partition_key: str, stage: str, run_id: str) -> None:
    """The stage is in flight for ``run_id``; what the last pass recorded (rows, model, details) is kept."""
    conn.execute(
        """INSERT INTO stage_runs (partition_key, stage, status, run_id) VALUES (%s, %s, 'running', %s)
           ON CONFLICT (partition_key, stage) DO UPDATE SET
               status = 'running', error = NULL, run_id = EXCLUDED.run_id, updated_at = now()""",
        (partition_key, stage, run_id),
    )


def running_stage_run_ids(conn: psycopg.Connection) -> list[str]:
    """The runs that stages are recorded `running` under."""
    rows = conn.execute("SELECT DISTINCT run_id FROM stage_runs WHERE status = 'running' AND run_id IS NOT NULL")
    return [run_id for (run_id,) in rows]


def fail_running_stages(conn: psycopg.Connection, run_ids: list[str], reason: str) -> int:
    """Stages left `running` by runs that ended without recording a result: failed, with the reason."""
    return conn.execute(
        """UPDATE stage_runs SET status = 'failed', error = %s, updated_at = now()
           WHERE status = 'running' AND run_id = ANY(%s)""",
        (reason, run_ids),
    ).rowcount


@dataclass(frozen=True)
class StageRecord:
    """A stage's last successful pass over one video."""

    row_count: int | None
    model_version: str | None
    details: dict


def stage_record(conn: psycopg.Connection, partition_key: str, stage: str) -> StageRecord | None:
    with conn.cursor(row_factory=class_row(StageRecord)) as cursor:
        return cursor.execute(
            """SELECT row_count, model_version, coalesce(details, '{}'::jsonb) AS details FROM stage_runs
               WHERE partition_key = %s AND stage = %s AND status = 'done'""",
            (partition_key, stage),
        ).fetchone()


@dataclass(frozen=True)
class ReadyVideo:
    obj: ObjectInfo
    fps: float
    width: int
    height: int
    frame_count: int
    duration_s: float
    camera: str | None
    recorded_at: datetime | None
    status: str = "ready"  # ready | partial
    covered_s: float | None = None  # seconds that decoded, once the detection pass has run

    @property
    def footage_s(self) -> float:
        """Seconds of footage there are: what decoded when known, else the duration."""
        return self.covered_s if self.covered_s is not None else self.duration_s


def ready_video(conn: psycopg.Connection, partition_key: str) -> ReadyVideo:
    """A video whose raw_video stage succeeded; anything else is a clear error for downstream stages."""
    obj = object_for(conn, partition_key)
    with conn.cursor(row_factory=dict_row) as cursor:
        row = cursor.execute(
            """SELECT status, error, fps, width, height, frame_count, duration_s, camera, recorded_at, covered_s
               FROM videos WHERE partition_key = %s""",
            (partition_key,),
        ).fetchone()
    if row["status"] not in ("ready", "partial"):  # partial footage is processed for what it holds
        reason = f": {row['error']}" if row["error"] else ""
        raise UnknownVideoError(f"{obj.uri} is not a usable video (raw_video is {row['status']}{reason})")
    return ReadyVideo(obj=obj, fps=row["fps"], width=row["width"], height=row["height"],
                      frame_count=row["frame_count"], duration_s=row["duration_s"], camera=row["camera"],
                      recorded_at=row["recorded_at"], status=row["status"], covered_s=row["covered_s"])


@dataclass(frozen=True)
class VideoStatus:
    partition_key: str
    object_key: str
    source: str
    camera: str | None
    recorded_at: datetime | None
    status: str
    error: str | None
    frame_count: int | None  # frames the stream holds (packet index)
    decoded_frames: int | None  # frames the detection pass decoded
    duration_s: float | None
    covered_s: float | None  # seconds that decoded (less than duration_s for partial footage)
    decode_errors: int | None
    notes: list[str] | None  # why footage is partial
    stages: dict[str, dict]
    superseded_by: str | None = None  # the newer version of the same key, when it was re-uploaded
    footage: str = "hot"  # hot | cold | expired (removed by retention: the facts remain)
    footage_at: datetime | None = None


def list_status(conn: psycopg.Connection, limit: int = 1000, partition_key: str | None = None) -> list[VideoStatus]:
    """One entry per video (or only ``partition_key``), newest first, with each stage's state and error."""
    with conn.cursor(row_factory=dict_row) as cursor:
        videos = cursor.execute(
            """SELECT partition_key, object_key, source, camera, recorded_at, status, error,
                      frame_count, decoded_frames, duration_s, covered_s, decode_errors, notes, superseded_by,
                      footage, footage_at
               FROM videos WHERE %(key)s::text IS NULL OR partition_key = %(key)s
               ORDER BY registered_at DESC, partition_key LIMIT %(limit)s""",
            {"key": partition_key, "limit": limit},
        ).fetchall()
        stage_rows = cursor.execute(
            "SELECT partition_key, stage, status, row_count, error FROM stage_runs WHERE partition_key = ANY(%s)",
            ([v["partition_key"] for v in videos],),
        ).fetchall()
    stages: dict[str, dict[str, dict]] = {}
    for row in stage_rows:
        stages.setdefault(row["partition_key"], {})[row["stage"]] = {
            "status": row["status"], "rows": row["row_count"], "error": row["error"],
        }
    return [VideoStatus(**video, stages=stages.get(video["partition_key"], {})) for video in videos]


@dataclass(frozen=True)
class VideoSelection:
    """Which catalogued videos a backfill covers; every field narrows the selection."""

    camera: str | None = None
    since: datetime | None = None  # recording start, inclusive
    until: datetime | None = None  # recording start, exclusive
    prefix: str | None = None  # object key prefix
    include_failed: bool = False  # videos whose probe failed are left out unless asked for


def select_videos(conn: psycopg.Connection, selection: VideoSelection) -> list[str]:
    """Partition keys of the selected videos, in object-key order (the order the sensor registers them)."""
    rows = conn.execute(
        """SELECT partition_key FROM videos
           WHERE (%(camera)s::text IS NULL OR camera = %(camera)s)
             AND (%(since)s::timestamptz IS NULL OR recorded_at >= %(since)s)
             AND (%(until)s::timestamptz IS NULL OR recorded_at < %(until)s)
             AND (%(prefix)s::text IS NULL OR left(object_key, length(%(prefix)s)) = %(prefix)s)
             AND (%(include_failed)s OR status <> 'failed')
             AND footage <> 'expired'  -- its footage is gone (retention): its facts stay as they are
           ORDER BY object_key, last_modified""",
        {"camera": selection.camera, "since": selection.since, "until": selection.until,
         "prefix": selection.prefix or None, "include_failed": selection.include_failed},
    ).fetchall()
    return [key for (key,) in rows]


def camera_normal_people(conn: psycopg.Connection, camera: str | None, partition_key: str, at_least: int,
                         recent: int = 200) -> float | None:
    """A camera's usual peak occupancy: the median of the peak people on screen over the ``recent`` summarised
    videos of the camera recorded before this one (so a re-run, or a backfill in any order, judges a video
    against the same past); None for footage of no camera or fewer than ``at_least`` such videos."""
    if camera is None:
        return None
    peaks = [r[0] for r in conn.execute(
        """SELECT (s.facts ->> 'peak_people')::int FROM summaries s JOIN videos v USING (partition_key)
            WHERE v.camera = %(camera)s AND s.facts ? 'peak_people'
              AND coalesce(v.recorded_at, v.registered_at) < (
                  SELECT coalesce(recorded_at, registered_at) FROM videos WHERE partition_key = %(key)s)
            ORDER BY coalesce(v.recorded_at, v.registered_at) DESC LIMIT %(recent)s""",
        {"camera": camera, "key": partition_key, "recent": recent})]
    if len(peaks) < at_least:
        return None
    return float(sorted(peaks)[len(peaks) // 2])
