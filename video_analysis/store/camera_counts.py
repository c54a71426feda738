"""One camera's day in counts: people per hour, crossings of each line (each way) and entries into each zone per
hour, people in view over the day (peak and mean per 5 minutes), and how long stays in each zone lasted.

Read from the counting facts the summaries stage writes (store/counting.py): the hourly tallies for the counts,
the day's rows for occupancy and stays. What the cameras page draws and the daily report keeps.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import numpy as np
import psycopg

from video_analysis.store.catalog import RECORDED_AT
from video_analysis.store.counting import MOMENT

OCCUPANCY_STEP_S = 300  # one bar of the occupancy chart
_SAMPLE_S = 5.0  # people in view are counted every 5 s inside each step
# Bins of the stays' distribution, in seconds: "under 10 s", "10-30 s", ..., "over 10 min".
DWELL_EDGES = (10, 30, 60, 120, 300, 600)


def _day(day: date) -> tuple[datetime, datetime]:
    start = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
    return start, start + timedelta(days=1)


def _hours(conn: psycopg.Connection, camera: str, start: datetime, end: datetime) -> list[dict]:
    hours: dict[datetime, dict] = {}
    for hour, kind, name, direction, n, repeats in conn.execute(
            """SELECT h.hour, h.kind, h.name, h.direction, sum(h.n)::int, sum(h.repeats)::int
               FROM counting_hours h JOIN videos v USING (partition_key)
               WHERE v.camera = %s AND v.superseded_by IS NULL AND h.class_name = 'person'
                 AND h.hour >= %s AND h.hour < %s
               GROUP BY 1, 2, 3, 4 ORDER BY 1""", (camera, start, end)):
        hour = hour.astimezone(timezone.utc)  # whatever the session's time zone
        row = hours.setdefault(hour, {"hour": hour.isoformat(), "people": 0, "tracks": 0, "lines": {}, "zones": {}})
        if kind == "track":
            row["people"], row["tracks"] = n - repeats, n
        elif kind == "crossing":
            row["lines"].setdefault(name, {"in": 0, "out": 0})[direction] = n
        else:
            row["zones"][name] = {"entries": n, "people": n - repeats}
    return list(hours.values())


def _spans(conn: psycopg.Connection, camera: str, start: datetime, end: datetime, kind: str):
    """(name, from, to) in seconds since midnight of the rows of ``kind`` (people's tracks, or visits) that
    overlap the day: someone in view at midnight counts from 0."""
    return conn.execute(
        f"""SELECT e.name, extract(epoch FROM {MOMENT} - %(start)s)::float8,
                   extract(epoch FROM {MOMENT} - %(start)s)::float8 + e.end_t - e.start_t
            FROM counting_events e JOIN videos v USING (partition_key)
            WHERE v.camera = %(camera)s AND v.superseded_by IS NULL AND e.kind = %(kind)s
              AND e.class_name = 'person' AND NOT (e.kind = 'track' AND e.likely_repeat)
              AND {RECORDED_AT} >= %(start)s - interval '1 day' AND {RECORDED_AT} < %(end)s
              AND {MOMENT} + make_interval(secs => e.end_t - e.start_t) >= %(start)s AND {MOMENT} < %(end)s""",
        {"camera": camera, "start": start, "end": end, "kind": kind}).fetchall()


def occupancy(spans: list[tuple[float, float]], step_s: int = OCCUPANCY_STEP_S) -> list[dict]:
    """People in view per step of the day (seconds since midnight): the most at once and the mean, for every step
    with anyone in view."""
    if not spans:
        return []
    starts = np.sort(np.array([s for s, _ in spans]))
    ends = np.sort(np.array([e for _, e in spans]))
    times = np.arange(0.0, 86400.0, _SAMPLE_S)
    in_view = np.searchsorted(starts, times, side="right") - np.searchsorted(ends, times, side="left")
    per_step = in_view.reshape(-1, int(step_s / _SAMPLE_S))
    return [{"from_s": i * step_s, "peak": int(row.max()), "mean": round(float(row.mean()), 2)}
            for i, row in enumerate(per_step) if row.max() > 0]


def dwell_distribution(seconds: list[float]) -> list[dict]:
    """How many stays fell in each bin of ``DWELL_EDGES``."""
    counts = np.histogram(seconds, bins=[0, *DWELL_EDGES, np.inf])[0] if seconds else np.zeros(len(DWELL_EDGES) + 1)
    lows = [0, *DWELL_EDGES]
    return [{"from_s": low, "to_s": DWELL_EDGES[i] if i < len(DWELL_EDGES) else None, "stays": int(n)}
            for i, (low, n) in enumerate(zip(lows, counts, strict=True))]


def camera_day_counts(conn: psycopg.Connection, camera: str, day: date) -> dict:
    """The camera's counted day (UTC): per hour, occupancy per 5 minutes, and each zone's stays."""
    start, end = _day(day)
    tracks = _spans(conn, camera, start, end, "track")
    visits = _spans(conn, camera, start, end, "visit")
    steps = occupancy([(a, b) for _, a, b in tracks])
    peak = max(steps, key=lambda s: s["peak"], default=None)
    zones = {}
    for name in sorted({name for name, _, _ in visits}):
        stays = [b - a for zone, a, b in visits if zone == name]
        # the lower middle, as counting answers take it (percentile_disc): a stay that happened, not a mean of two
        zones[name] = {"stays": len(stays), "median_s": round(float(np.percentile(stays, 50, method="lower")), 1),
                       "longest_s": round(max(stays), 1), "distribution": dwell_distribution(stays),
                       "occupancy": occupancy([(a, b) for zone, a, b in visits if zone == name])}
    hours = _hours(conn, camera, start, end)
    return {"camera": camera, "day": day.isoformat(), "step_s": OCCUPANCY_STEP_S, "hours": hours,
            "people": sum(h["people"] for h in hours), "tracks": sum(h["tracks"] for h in hours),
            "peak_people": peak["peak"] if peak else 0,
            "peak_at": (start + timedelta(seconds=peak["from_s"])).isoformat() if peak else None,
            "occupancy": steps, "zones": zones}
