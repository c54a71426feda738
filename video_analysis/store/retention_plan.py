"""Retention planning: which videos the policy says go to the cold tier, lose their footage or are erased today.

A video's age runs from when it was recorded (else when it was uploaded). After ``cold_after_days`` its footage
moves to the cold tier; after ``retain_days`` (``retain_incident_days`` when its summary holds an incident) the
footage expires; after ``retain_facts_days`` the video and every fact derived from it are erased.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import psycopg

from video_analysis.runtime.object_store import ObjectInfo
from video_analysis.store.retention_policy import RetentionConfig


@dataclass(frozen=True)
class Aged:
    """A video that reached an age where something happens to it."""

    partition_key: str
    obj: ObjectInfo
    camera: str | None
    recorded_at: datetime | None
    at: datetime  # its age runs from here
    footage: str  # hot | cold | expired


@dataclass
class RetentionPlan:
    to_cold: list[Aged] = field(default_factory=list)
    to_expire: list[Aged] = field(default_factory=list)
    to_erase: list[Aged] = field(default_factory=list)

    def describe(self) -> str:
        return (f"{len(self.to_cold)} video(s) to the cold tier, footage of {len(self.to_expire)} expired "
                f"({sum(a.obj.size for a in self.to_expire) / 2**20:.1f} MiB), {len(self.to_erase)} video(s) "
                "past their facts' retention erased")


# A video's age runs from its recording time; an upload without one, from when it arrived (an archive copied
# with its old modification times is not expired the night it is imported).
AGE = "coalesce(v.recorded_at, greatest(v.last_modified, v.registered_at))"
# Never touched by a sweep: footage not analysed yet, and videos a stage is working on now.
SETTLED = ("v.status <> 'registered' AND NOT EXISTS (SELECT 1 FROM stage_runs r WHERE r.partition_key = "
           "v.partition_key AND r.status = 'running')")
AGED_COLUMNS = f"""v.partition_key, v.object_key, v.version, v.size_bytes, v.last_modified, v.source, v.bucket,
                   v.etag, v.camera, v.recorded_at, {AGE} AS at, v.footage"""


def aged_videos(rows) -> list[Aged]:
    """Rows selected as ``AGED_COLUMNS``, as the videos they are."""
    return [Aged(key, ObjectInfo(object_key, version, size or 0, modified, source, bucket, etag), camera, recorded,
                 at, footage)
            for key, object_key, version, size, modified, source, bucket, etag, camera, recorded, at, footage in rows]


def _camera_groups(conn: psycopg.Connection, config: RetentionConfig):
    """(SQL condition, params, policy) for each group of videos sharing a policy."""
    named = sorted(config.cameras)
    yield "v.camera IS NULL", {}, config.policy_for(None)
    for camera in named:
        yield "v.camera = %(camera)s", {"camera": camera}, config.cameras[camera]
    yield "v.camera IS NOT NULL AND NOT (v.camera = ANY(%(named)s))", {"named": named}, config.default


def plan_retention(conn: psycopg.Connection, config: RetentionConfig, now: datetime | None = None,
                   *, cold_tier: bool = True) -> RetentionPlan:
    """What the policy says to do today, oldest first."""
    now = now or datetime.now(timezone.utc)
    plan = RetentionPlan()

    def cutoff(days):
        return None if days is None else now - timedelta(days=days)

    for where, params, policy in _camera_groups(conn, config):
        facts = cutoff(policy.retain_facts_days)
        if facts is not None:
            plan.to_erase += aged_videos(conn.execute(
                f"SELECT {AGED_COLUMNS} FROM videos v WHERE {where} AND {SETTLED} "  # noqa: S608 - fixed fragments
                f"AND {AGE} < %(cutoff)s ORDER BY at, v.partition_key",
                {**params, "cutoff": facts}).fetchall())
        plain, incident = cutoff(policy.retain_days), cutoff(policy.retain_incident_days)
        if plain is not None or incident is not None:
            plan.to_expire += aged_videos(conn.execute(
                f"""SELECT {AGED_COLUMNS} FROM videos v LEFT JOIN summaries s USING (partition_key)
                     WHERE {where} AND {SETTLED} AND v.footage <> 'expired'
                       AND (%(facts)s::timestamptz IS NULL OR {AGE} >= %(facts)s)
                       AND {AGE} <
                           CASE WHEN coalesce(s.incident_count, 0) > 0 THEN %(incident)s ELSE %(plain)s END
                     ORDER BY at, v.partition_key""",  # noqa: S608
                {**params, "facts": facts, "plain": plain, "incident": incident}).fetchall())
        cold = cutoff(policy.cold_after_days)
        if cold is not None and cold_tier:
            expiring = {a.partition_key for a in plan.to_expire}
            plan.to_cold += [a for a in aged_videos(conn.execute(
                f"""SELECT {AGED_COLUMNS} FROM videos v WHERE {where} AND {SETTLED} AND v.footage = 'hot'
                       AND {AGE} < %(cutoff)s
                     ORDER BY at, v.partition_key""",  # noqa: S608
                {**params, "cutoff": cold}).fetchall()) if a.partition_key not in expiring]
    erasing = {a.partition_key for a in plan.to_erase}
    plan.to_expire = [a for a in plan.to_expire if a.partition_key not in erasing]
    plan.to_cold = [a for a in plan.to_cold if a.partition_key not in erasing]
    return plan

