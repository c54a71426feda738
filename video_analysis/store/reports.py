"""Per-camera daily roll-ups of the video summaries and counts (camera segments keyed cameras/<camera>/<start>.mp4)."""

from __future__ import annotations

from datetime import date

import psycopg
from psycopg.types.json import Jsonb

from video_analysis.store.camera_counts import camera_day_counts

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
    rows = [dict(zip(columns, row, strict=True)) for row in conn.execute(_ROLLUP, {"day": day}).fetchall()]
    for row in rows:
        row["counts"] = day_in_counts(camera_day_counts(conn, row["camera"], day))
        conn.execute("UPDATE camera_daily_reports SET counts = %s WHERE camera = %s AND day = %s",
                     (Jsonb(row["counts"]), row["camera"], day))
    return rows


def day_in_counts(counted: dict) -> dict:
    """What a daily report keeps of a camera's counted day: totals, the busiest hour, the peak, each zone's stays."""
    lines: dict[str, dict[str, int]] = {}
    for hour in counted["hours"]:
        for name, ways in hour["lines"].items():
            for way, n in ways.items():
                lines.setdefault(name, {"in": 0, "out": 0})[way] += n
    busiest = max(counted["hours"], key=lambda h: h["people"], default=None)
    return {"people": counted["people"], "tracks": counted["tracks"], "lines": lines,
            "zones": {name: {k: zone[k] for k in ("stays", "median_s", "longest_s")}
                      for name, zone in counted["zones"].items()},
            "busiest_hour": busiest["hour"] if busiest and busiest["people"] else None,
            "busiest_hour_people": busiest["people"] if busiest else 0,
            "peak_people": counted["peak_people"], "peak_at": counted["peak_at"]}
