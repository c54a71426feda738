"""Live cameras in the database: what the recorder reports, and what status, the page and alerts read.

The recorder writes (`save_camera`, `open_gap`, `close_open_gaps`); everything else reads (`camera_health`,
`camera_day`). A camera is *silent* when its stream has been lost for `lost_after_s`, or when it has published
nothing for two segment lengths (which also catches a recorder that is not running at all).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone

import psycopg

# A recorder refreshes its cameras' rows every few seconds: a row older than this has no recorder behind it.
RECORDER_HEARTBEAT_S = 30.0


@dataclass(frozen=True)
class CameraRow:
    name: str
    url: str
    segment_seconds: int
    state: str
    clock: str | None = None
    last_packet_at: datetime | None = None
    last_segment_at: datetime | None = None
    last_segment_key: str | None = None
    last_error: str | None = None


def save_camera(conn: psycopg.Connection, row: CameraRow, *, started: bool = False) -> None:
    """The recorder's view of one camera, written over the last; ``started``: the recorder took it just now."""
    conn.execute(
        """INSERT INTO cameras (name, url, segment_seconds, state, clock, last_packet_at, last_segment_at,
                                last_segment_key, last_error, started_at, updated_at)
           VALUES (%(name)s, %(url)s, %(segment_seconds)s, %(state)s, %(clock)s, %(last_packet_at)s,
                   %(last_segment_at)s, %(last_segment_key)s, %(last_error)s, now(), now())
           ON CONFLICT (name) DO UPDATE SET
               url = EXCLUDED.url, segment_seconds = EXCLUDED.segment_seconds, state = EXCLUDED.state,
               clock = coalesce(EXCLUDED.clock, cameras.clock),
               last_packet_at = coalesce(EXCLUDED.last_packet_at, cameras.last_packet_at),
               last_segment_at = coalesce(EXCLUDED.last_segment_at, cameras.last_segment_at),
               last_segment_key = coalesce(EXCLUDED.last_segment_key, cameras.last_segment_key),
               last_error = EXCLUDED.last_error,
               started_at = CASE WHEN %(started)s THEN now() ELSE cameras.started_at END,
               updated_at = now()""",
        {**row.__dict__, "started": started},
    )


@dataclass(frozen=True)
class LeftBehind:
    """Where an earlier recorder left a camera: its last packet, and the gap it left open."""

    last_packet_at: datetime | None = None
    open_gap: tuple[datetime, str] | None = None


def left_behind(conn: psycopg.Connection, camera: str) -> LeftBehind:
    found = conn.execute("SELECT last_packet_at FROM cameras WHERE name = %s", (camera,)).fetchone()
    gap = conn.execute("""SELECT started_at, reason FROM camera_gaps WHERE camera = %s AND ended_at IS NULL
                          ORDER BY started_at DESC LIMIT 1""", (camera,)).fetchone()
    return LeftBehind(found[0] if found else None, (gap[0], gap[1]) if gap else None)


def open_gap(conn: psycopg.Connection, camera: str, started_at: datetime, reason: str,
             ended_at: datetime | None = None) -> None:
    conn.execute(
        """INSERT INTO camera_gaps (camera, started_at, ended_at, reason) VALUES (%s, %s, %s, %s)
           ON CONFLICT (camera, started_at) DO UPDATE SET reason = EXCLUDED.reason,
               ended_at = coalesce(EXCLUDED.ended_at, camera_gaps.ended_at)""",
        (camera, started_at, ended_at, reason),
    )


def close_open_gaps(conn: psycopg.Connection, camera: str, ended_at: datetime) -> None:
    """The camera records again: every gap still open for it ends at ``ended_at``."""
    conn.execute("UPDATE camera_gaps SET ended_at = greatest(%s, started_at) WHERE camera = %s AND ended_at IS NULL",
                 (ended_at, camera))


@dataclass(frozen=True)
class Gap:
    started_at: datetime
    ended_at: datetime | None
    reason: str

    @property
    def seconds(self) -> float | None:
        return (self.ended_at - self.started_at).total_seconds() if self.ended_at else None

    def as_dict(self) -> dict:
        return {"from": self.started_at.isoformat(), "to": self.ended_at.isoformat() if self.ended_at else None,
                "seconds": self.seconds, "reason": self.reason}


@dataclass(frozen=True)
class CameraHealth:
    name: str
    url: str
    segment_seconds: int
    state: str  # as the recorder last said, or "no recorder" when it stopped reporting
    clock: str | None
    last_packet_at: datetime | None
    last_segment_at: datetime | None
    last_segment_key: str | None
    last_error: str | None
    updated_at: datetime
    alerted_at: datetime | None
    silent_since: datetime | None  # when its silence began, if it is silent
    silence: str | None  # why it is silent
    gaps: list[Gap] = field(default_factory=list)

    @property
    def recording(self) -> bool:
        return self.state == "recording"

    def as_dict(self) -> dict:
        def iso(moment):
            return moment.isoformat() if moment else None

        return {"name": self.name, "url": self.url, "segment_seconds": self.segment_seconds, "state": self.state,
                "recording": self.recording, "clock": self.clock, "last_packet_at": iso(self.last_packet_at),
                "last_segment_at": iso(self.last_segment_at), "last_segment_key": self.last_segment_key,
                "last_error": self.last_error, "updated_at": iso(self.updated_at),
                "silent_since": iso(self.silent_since), "silence": self.silence,
                "gaps": [g.as_dict() for g in self.gaps]}


def camera_health(conn: psycopg.Connection, *, now: datetime | None = None, lost_after_s: float = 20.0,
                  gaps_hours: float = 24.0) -> list[CameraHealth]:
    """Every camera's state, with the gaps of the last ``gaps_hours`` and whether it is silent now."""
    now = now or datetime.now(timezone.utc)
    rows = conn.execute(
        """SELECT name, url, segment_seconds, state, clock, last_packet_at, last_segment_at, last_segment_key,
                  last_error, started_at, updated_at, alerted_at FROM cameras ORDER BY name""").fetchall()
    gaps: dict[str, list[Gap]] = {}
    for camera, started, ended, reason in conn.execute(
            """SELECT camera, started_at, ended_at, reason FROM camera_gaps
               WHERE ended_at IS NULL OR ended_at > %s ORDER BY camera, started_at""",
            (now - timedelta(hours=gaps_hours),)):
        gaps.setdefault(camera, []).append(Gap(started, ended, reason))
    found = []
    for (name, url, segment_s, state, clock, last_packet, last_segment, last_key, error, started, updated,
         alerted) in rows:
        if state != "stopped" and (now - updated).total_seconds() > RECORDER_HEARTBEAT_S:
            state = "no recorder"
        open_gaps = [g for g in gaps.get(name, []) if g.ended_at is None]
        silent_since, silence = None, None
        if open_gaps and (now - open_gaps[0].started_at).total_seconds() >= lost_after_s:
            reason = open_gaps[0].reason
            lost = "recording paused" if reason.startswith("disk full") else "stream lost"
            silent_since, silence = open_gaps[0].started_at, f"{lost}: {reason}"
        elif state == "recording" and last_packet and (now - last_packet).total_seconds() >= lost_after_s:
            silent_since, silence = last_packet, "no packet although the recorder says it records"
        elif state == "no recorder":
            silent_since, silence = updated, "its recorder stopped reporting (not running?)"
        quiet_from = last_segment or started
        if (now - quiet_from).total_seconds() >= 2 * segment_s:
            quiet = (f"nothing published for {_span((now - quiet_from).total_seconds())} (two segments are "
                     f"{_span(2 * segment_s)})")
            # the older silence dates it; a lost stream says more about why
            silence = f"{silence}; {quiet}" if silence else quiet
            silent_since = min(silent_since or quiet_from, quiet_from)
        found.append(CameraHealth(name, url, segment_s, state, clock, last_packet, last_segment, last_key, error,
                                  updated, alerted, silent_since, silence, gaps.get(name, [])))
    return found


def _span(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"


def mark_alerted(conn: psycopg.Connection, camera: str, at: datetime | None) -> None:
    """Remember the outage's alert (``at``), or forget it once the camera is healthy again (None)."""
    conn.execute("UPDATE cameras SET alerted_at = %s WHERE name = %s", (at, camera))


def camera_day(conn: psycopg.Connection, camera: str, day: date) -> dict:
    """One camera's day (UTC): its segments with their safety scores, its incidents and its gaps."""
    start = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
    end = start + timedelta(days=1)
    segments, incidents = [], []
    for key, object_key, recorded, duration, status, score, events in conn.execute(
            """SELECT v.partition_key, v.object_key, v.recorded_at, v.duration_s, v.status, s.safety_score,
                      s.incidents
               FROM videos v LEFT JOIN summaries s USING (partition_key)
               WHERE v.camera = %s AND v.recorded_at >= %s AND v.recorded_at < %s AND v.superseded_by IS NULL
               ORDER BY v.recorded_at""", (camera, start, end)):
        segments.append({"partition_key": key, "object_key": object_key, "start": recorded.isoformat(),
                         "seconds": duration, "status": status, "safety_score": score})
        for incident in events or []:
            at = recorded + timedelta(seconds=float(incident.get("start_t") or 0.0))
            incidents.append({"partition_key": key, "type": incident.get("type"), "detail": incident.get("detail"),
                              "start_s": incident.get("start_t"), "end_s": incident.get("end_t"),
                              "confidence": incident.get("confidence"), "at": at.isoformat()})
    gaps = [Gap(s, e, r).as_dict() for s, e, r in conn.execute(
        """SELECT started_at, ended_at, reason FROM camera_gaps
           WHERE camera = %s AND started_at < %s AND (ended_at IS NULL OR ended_at >= %s) ORDER BY started_at""",
        (camera, end, start))]
    return {"camera": camera, "day": day.isoformat(), "segments": segments, "incidents": incidents, "gaps": gaps}
