"""Storage at a glance: footage bytes per camera, day and tier, and how many days the volumes last at the rate
footage arrives (what `reelgraph status --storage` and the cameras page show)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import psycopg

from video_analysis.runtime.disk import DiskFloor, space

RATE_DAYS = 7  # the rate is the mean of the last week's footage


@dataclass(frozen=True)
class DayUsage:
    camera: str  # "(uploads)" for videos without a camera
    day: date
    tier: str  # hot | cold | expired
    videos: int
    bytes: int


@dataclass(frozen=True)
class Volume:
    tier: str  # hot | cold
    free: int | None  # None: no limit we can see (an S3 bucket)
    total: int | None
    floor: int
    days_left: float | None  # at the current rate, until the floor (None: no rate yet, or no limit)


def usage_by_day(conn: psycopg.Connection, days: int = 14, now: datetime | None = None) -> list[DayUsage]:
    """Bytes per camera, UTC day of recording (else upload) and tier, for the last ``days`` days."""
    since = (now or datetime.now(timezone.utc)) - timedelta(days=days)
    rows = conn.execute(
        """SELECT coalesce(camera, '(uploads)'), (coalesce(recorded_at, last_modified) AT TIME ZONE 'UTC')::date,
                  footage, count(*), sum(size_bytes)
             FROM videos WHERE coalesce(recorded_at, last_modified) >= %s
            GROUP BY 1, 2, 3 ORDER BY 1, 2 DESC, 3""", (since,)).fetchall()
    return [DayUsage(camera, day, tier, videos, int(size)) for camera, day, tier, videos, size in rows]


def daily_rate(conn: psycopg.Connection, now: datetime | None = None) -> int:
    """Bytes of footage a day, over the last RATE_DAYS days (what the volumes must take)."""
    since = (now or datetime.now(timezone.utc)) - timedelta(days=RATE_DAYS)
    total = conn.execute("SELECT coalesce(sum(size_bytes), 0) FROM videos "
                         "WHERE coalesce(recorded_at, last_modified) >= %s", (since,)).fetchone()[0]
    return int(total) // RATE_DAYS


def volumes(folders: dict[str, Path | None], floor: DiskFloor, rate: int) -> list[Volume]:
    """Free space of each tier's folder (None: not a local folder), and the days it lasts at ``rate``."""
    found = []
    for tier, folder in folders.items():
        if folder is None:
            found.append(Volume(tier, None, None, 0, None))
            continue
        seen = space(folder, floor)
        room = max(0, seen.free - seen.floor)
        found.append(Volume(tier, seen.free, seen.total, seen.floor, room / rate if rate and tier == "hot" else None))
    return found


def tier_folders(store) -> dict[str, Path | None]:
    """The folder of each tier a store writes (an S3 bucket has none we can measure)."""
    root, cold = getattr(store, "root", None), getattr(store, "cold_root", None)
    return {"hot": root, "cold": cold} if root is not None else {"hot": None}


def report(conn: psycopg.Connection, store, floor: DiskFloor, days: int = 14) -> dict:
    """Everything the storage views show, as plain values (no paths: where the store keeps footage stays
    with the operator)."""
    rate = daily_rate(conn)
    return {
        "bytes_per_day": rate,
        "volumes": [v.__dict__ for v in volumes(tier_folders(store), floor, rate)],
        "days": [{**u.__dict__, "day": u.day.isoformat()} for u in usage_by_day(conn, days)],
    }
