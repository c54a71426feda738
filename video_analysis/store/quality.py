"""Data-quality rules for stage outputs, as plain functions (the assets report them as Dagster checks)."""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

# A track whose centre moves more than this fraction of the frame between consecutive sightings is
# almost certainly two objects glued together by the tracker.
MAX_JUMP_FRACTION = 0.5


@dataclass(frozen=True)
class Finding:
    name: str
    passed: bool
    detail: str
    warn_only: bool = False  # a failure is a warning (e.g. partial footage, still processed), not an error


def detection_findings(conn: psycopg.Connection, partition_key: str, width: int, height: int) -> list[Finding]:
    outside, bad_scores, total = conn.execute(
        """SELECT count(*) FILTER (WHERE x1 < -1 OR y1 < -1 OR x2 > %s + 1 OR y2 > %s + 1 OR x2 < x1 OR y2 < y1),
                  count(*) FILTER (WHERE confidence < 0 OR confidence > 1),
                  count(*)
           FROM detections WHERE partition_key = %s""",
        (width, height, partition_key),
    ).fetchone()
    return [
        Finding("boxes_inside_frame", outside == 0, f"{outside} of {total} boxes outside {width}x{height}"),
        Finding("scores_in_unit_range", bad_scores == 0, f"{bad_scores} of {total} scores outside [0, 1]"),
    ]


def track_findings(conn: psycopg.Connection, partition_key: str, width: int, height: int) -> list[Finding]:
    limit = MAX_JUMP_FRACTION * max(width, height)
    jumps, seen, tracks = conn.execute(
        "SELECT count(*) FILTER (WHERE max_step_px > %s), coalesce(sum(frames_seen), 0), count(*) "
        "FROM tracks WHERE partition_key = %s",
        (limit, partition_key),
    ).fetchone()
    detections = conn.execute("SELECT count(*) FROM detections WHERE partition_key = %s",
                              (partition_key,)).fetchone()[0]
    return [
        Finding("no_track_jumps_across_frame", jumps == 0,
                f"{jumps} of {tracks} tracks move more than {limit:.0f}px between consecutive samples"),
        Finding("tracks_consistent_with_detections", seen <= detections,
                f"tracks cover {seen} sightings of {detections} detections"),
    ]


def embedding_findings(conn: psycopg.Connection, partition_key: str) -> list[Finding]:
    wrong_dim, off_norm, total = conn.execute(
        """SELECT count(*) FILTER (WHERE vector_dims(embedding) <> dim),
                  count(*) FILTER (WHERE abs(vector_norm(embedding) - 1) > 1e-3),
                  count(*)
           FROM embeddings WHERE partition_key = %s""",
        (partition_key,),
    ).fetchone()
    return [
        Finding("embedding_dimension", wrong_dim == 0, f"{wrong_dim} of {total} vectors differ from their model's dim"),
        Finding("embedding_unit_norm", off_norm == 0, f"{off_norm} of {total} vectors are not unit length"),
    ]


def summary_findings(conn: psycopg.Connection, partition_key: str) -> list[Finding]:
    count, bad_scores = conn.execute(
        "SELECT count(*), count(*) FILTER (WHERE safety_score NOT BETWEEN 0 AND 100) FROM summaries "
        "WHERE partition_key = %s",
        (partition_key,),
    ).fetchone()
    return [
        Finding("one_summary_per_video", count == 1, f"{count} summaries for this video"),
        Finding("safety_score_in_range", bad_scores == 0, f"{bad_scores} scores outside 0-100"),
    ]
