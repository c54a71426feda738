"""Per-camera daily roll-ups of the video summaries (camera segments keyed cameras/<camera>/<start>.mp4)."""

from __future__ import annotations

from datetime import date

import psycopg

_ROLLUP = """
WITH day_videos AS (
    SELECT v.camera, coalesce(v.covered_s, v.duration_s) AS footage_s, s.safety_score, s.incidents
    FROM videos v JOIN summaries s USING (partition_key)
    WHERE v.camera IS NOT NULL AND v.recorded_at >= %(day)s::date AND v.recorded_at < %(day)s::date + 1
      AND v.superseded_by IS NULL  -- a key re-uploaded with new bytes counts once, as its newest version
),
by_type AS (
    SELECT camera, jsonb_object_agg(type, n) AS incidents_by_type
    FROM (SELECT camera, i->>'type' AS type, count(*) AS n
          FROM day_videos, jsonb_array_elements(incidents) i GROUP BY 1, 2) counted
    GROUP BY camera
)
INSERT INTO camera_daily_reports (camera, day, videos, footage_minutes, mean_safety_score, min_safety_score,
                                  incident_count, incidents_by_type)
SELECT d.camera, %(day)s::date, count(*), coalesce(sum(d.footage_s), 0) / 60, avg(d.safety_score), min(d.safety_score),
       sum(jsonb_array_length(d.incidents)), coalesce(max(t.incidents_by_type::text)::jsonb, '{}'::jsonb)
FROM day_videos d LEFT JOIN by_type t USING (camera)
GROUP BY d.camera
RETURNING camera, videos, footage_minutes, mean_safety_score, min_safety_score, incident_count, incidents_by_type
"""


def replace_daily_report(conn: psycopg.Connection, day: date) -> list[dict]:
    """Recompute one day's report for every camera, replacing that day's rows in the caller's transaction."""
    conn.execute("DELETE FROM camera_daily_reports WHERE day = %s", (day,))
    columns = ["camera", "videos", "footage_minutes", "mean_safety_score", "min_safety_score", "incident_count",
               "incidents_by_type"]
    return [dict(zip(columns, row, strict=True)) for row in conn.execute(_ROLLUP, {"day": day}).fetchall()]
