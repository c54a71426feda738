"""Counting facts of one video: its crossings and visits (computed in events/counting.py), a row per track, and
their tallies per hour. A row is marked *likely a repeat* when it probably counts someone already counted: a
track that is likely the track before it seen again, a track's second visit to the same zone.

Counting questions over months read the hourly tallies (``counting_hours``) for the whole hours they span and
the rows (``counting_events``) only for the part-hours at their edges, so an answer costs the same over a day
or a year. Both are written here, in the summaries stage's transaction, and go with their video.
"""

from __future__ import annotations

import psycopg

from video_analysis.store.catalog import RECORDED_AT
from video_analysis.store.writer import replace_partition_rows

# When a row's moment happened: its video's recording time (the upload's time for files without one) plus its
# seconds into the video. `v` is the video, `e` the counting row.
MOMENT = f"{RECORDED_AT} + make_interval(secs => e.start_t)"

# A row per track of the videos chosen by {where} (on tracks `t`). A track is *likely a repeat* when it begins
# within 3 s after the track of its class before it in the video ended (or overlaps it by at most 1 s: a track
# the tracker split), and either begins where that one ended (within a body height) or is dressed alike (a
# person lost and found again).
TRACK_FACTS = """
SELECT partition_key, track_id, class_name, first_t, last_t,
       coalesce(gap BETWEEN -1 AND 3 AND (coalesce(alike, false) OR coalesce(near, false)), false) AS likely_repeat
FROM (
    SELECT t.partition_key, t.track_id, t.class_name, t.first_t, t.last_t,
           t.first_t - lag(t.last_t) OVER w AS gap,
           lag(a.upper_color) OVER w IS NOT NULL AND a.upper_color = lag(a.upper_color) OVER w
               AND a.lower_color IS NOT DISTINCT FROM lag(a.lower_color) OVER w AS alike,
           sqrt(((t.path -> 0 ->> 1)::float8 - (lag(t.path -> -1 ->> 1) OVER w)::float8) ^ 2
                + ((t.path -> 0 ->> 2)::float8 - (lag(t.path -> -1 ->> 2) OVER w)::float8) ^ 2)
               <= greatest(t.best_y2 - t.best_y1, lag(t.best_y2 - t.best_y1) OVER w) AS near
    FROM tracks t LEFT JOIN track_attributes a USING (partition_key, track_id)
    WHERE {where}
    WINDOW w AS (PARTITION BY t.partition_key, t.class_name ORDER BY t.first_t, t.track_id)
) rows
"""
TRACK_ROWS = """
INSERT INTO counting_events (partition_key, kind, name, track_id, class_name, start_t, end_t, likely_repeat)
SELECT partition_key, 'track', '', track_id, class_name, first_t, last_t, likely_repeat FROM (
""" + TRACK_FACTS + ") facts"


# The hourly tallies (UTC hours) of the videos chosen by {where} (on videos `v`), from their counting rows.
HOURS = f"""
INSERT INTO counting_hours (partition_key, hour, kind, name, class_name, direction, n, repeats)
SELECT e.partition_key, date_trunc('hour', {MOMENT}, 'UTC'), e.kind, e.name, e.class_name,
       coalesce(e.direction, ''), count(*), count(*) FILTER (WHERE e.likely_repeat)
FROM counting_events e JOIN videos v USING (partition_key)
WHERE {{where}}
GROUP BY 1, 2, 3, 4, 5, 6
"""


def likely_repeats(conn: psycopg.Connection, partition_key: str, class_name: str = "person") -> int:
    """How many of a video's tracks of ``class_name`` are likely the track before them seen again."""
    facts = TRACK_FACTS.format(where="t.partition_key = %s")
    return conn.execute(f"SELECT count(*) FILTER (WHERE likely_repeat) FROM ({facts}) f WHERE class_name = %s",
                        (partition_key, class_name)).fetchone()[0]


def replace_counting(conn: psycopg.Connection, partition_key: str, crossings: list, visits: list) -> int:
    """A video's counting facts, replacing the last: crossings of counting lines and visits to zones
    (events/counting.py), a row per stored track, and the hourly tallies of all three."""
    rows = [("crossing", c.line, c.track_id, c.class_name, c.t, c.t, c.direction, False) for c in crossings]
    seen = set()  # a track's second visit to a zone is one more visit, not one more person
    for v in sorted(visits, key=lambda v: v.start_t):
        rows.append(("visit", v.zone, v.track_id, v.class_name, v.start_t, v.end_t, None, (v.zone, v.track_id) in seen))
        seen.add((v.zone, v.track_id))
    written = replace_partition_rows(conn, "counting_events", partition_key, (
        "kind", "name", "track_id", "class_name", "start_t", "end_t", "direction", "likely_repeat"), rows)
    conn.execute(TRACK_ROWS.format(where="t.partition_key = %(key)s"), {"key": partition_key})
    conn.execute("DELETE FROM counting_hours WHERE partition_key = %s", (partition_key,))
    conn.execute(HOURS.format(where="e.partition_key = %(key)s"), {"key": partition_key})
    return written
