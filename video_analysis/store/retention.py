"""Retention: how long footage and facts are kept, per camera and for uploads, and the sweep that applies it.

Policy lives in the zones file, beside each camera's zones::

    retention:
      default: {retain_days: 30, retain_incident_days: 90, retain_facts_days: 730, cold_after_days: 7}
      uploads: {retain_days: 365}            # videos with no camera
      cameras:
        lobby: {retain_days: 14}             # fields not given come from `default` (raised where needed:
                                             # incidents' footage >= footage, facts >= both)

A video's age runs from when it was recorded (else when it was uploaded). After ``cold_after_days`` its footage
moves to the cold tier; after ``retain_days`` (``retain_incident_days`` when its summary holds an incident) the
footage is removed and the row is kept, marked ``footage = 'expired'``: search and the page still show its
facts and thumbnail. After ``retain_facts_days`` the video and every fact derived from it go, as an erasure
(with its audit record). Without a ``retention`` section nothing is removed by age.

A sweep is idempotent and resumable: each video's footage is removed before its row says so, one video at a
time, so a sweep killed mid-way leaves at most rows whose footage is already gone, which the next sweep (any
sweep: the plan is recomputed) finds and marks.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections import Counter
from dataclasses import dataclass, field, fields, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg
import yaml

from video_analysis.runtime.object_store import ObjectInfo, ObjectStore, ObjectStoreError
from video_analysis.store import erasure

log = logging.getLogger(__name__)

# Footage of a video with incidents is kept this long when only retain_days is given: evidence outlives routine.
DEFAULT_INCIDENT_DAYS = 90
# Facts outlive footage: when not given, a year (or the footage's own retention, when that is longer).
DEFAULT_FACTS_DAYS = 365
ERASE_BATCH = 200


SWEEP_LOCK = 0x72657465  # advisory lock: one sweep at a time per database


class RetentionBusy(RuntimeError):
    """Another sweep holds the database's retention lock."""


class RetentionConfigError(ValueError):
    """The retention section cannot be used as written; the message says where and why."""


@dataclass(frozen=True)
class RetentionPolicy:
    retain_days: float | None = None  # footage; None keeps it
    retain_incident_days: float | None = None  # footage of a video with incidents
    retain_facts_days: float | None = None  # the video's row and every fact; None keeps them
    cold_after_days: float | None = None  # footage moves to the cold tier

    def completed(self, where: str) -> RetentionPolicy:
        """Defaults filled in and checked: incidents' footage and facts are never kept shorter than footage."""
        incident = self.retain_incident_days
        if incident is None and self.retain_days is not None:
            incident = max(self.retain_days, DEFAULT_INCIDENT_DAYS)
        facts = self.retain_facts_days
        if facts is None and incident is not None:
            facts = max(DEFAULT_FACTS_DAYS, incident)
        done = replace(self, retain_incident_days=incident, retain_facts_days=facts)
        order = [("retain_days", done.retain_days), ("retain_incident_days", done.retain_incident_days),
                 ("retain_facts_days", done.retain_facts_days)]
        for (shorter, a), (longer, b) in itertools.pairwise(order):
            if a is None and b is not None:
                raise RetentionConfigError(f"{where}: {shorter} keeps for good but {longer} is {b:g} days: facts "
                                           "outlive footage, and footage with incidents outlives the rest")
            if None not in (a, b) and b < a:
                implied = "" if (longer, shorter) != ("retain_incident_days", "retain_days") or \
                    self.retain_incident_days is not None else f" (the default for {longer}: set it)"
                raise RetentionConfigError(f"{where}: {longer} ({b:g}){implied} is shorter than {shorter} ({a:g}): "
                                           "facts outlive footage, and footage with incidents outlives the rest")
        cold, footage = done.cold_after_days, done.retain_days
        if cold is not None and footage is not None and cold >= footage:
            raise RetentionConfigError(f"{where}: cold_after_days ({done.cold_after_days:g}) must be shorter than "
                                       f"retain_days ({done.retain_days:g}), or the footage never goes cold")
        return done

    def footage_days(self, has_incidents: bool) -> float | None:
        return self.retain_incident_days if has_incidents else self.retain_days


@dataclass(frozen=True)
class RetentionConfig:
    default: RetentionPolicy = field(default_factory=RetentionPolicy)
    uploads: RetentionPolicy | None = None
    cameras: dict[str, RetentionPolicy] = field(default_factory=dict)

    def policy_for(self, camera: str | None) -> RetentionPolicy:
        if camera is None:
            return self.uploads or self.default
        return self.cameras.get(camera, self.default)

    @property
    def configured(self) -> bool:
        return any(p != RetentionPolicy() for p in [self.default, self.uploads or RetentionPolicy(),
                                                     *self.cameras.values()])


def _policy(spec, where: str, base: RetentionPolicy) -> RetentionPolicy:
    if spec is None:
        return base
    if not isinstance(spec, dict):
        raise RetentionConfigError(f"{where}: a mapping of retain_days, retain_incident_days, retain_facts_days "
                                   f"and cold_after_days, not {spec!r}")
    known = {f.name for f in fields(RetentionPolicy)}
    unknown = sorted(set(spec) - known)
    if unknown:
        raise RetentionConfigError(f"{where}: unknown setting {unknown[0]!r} (known: {', '.join(sorted(known))})")
    values = {}
    for name, days in spec.items():
        if days is not None and (isinstance(days, bool) or not isinstance(days, int | float) or days <= 0):
            raise RetentionConfigError(f"{where}: {name} is a number of days > 0 (or null to keep), not {days!r}")
        values[name] = days
    merged = replace(base, **values)
    if "retain_days" in values and values["retain_days"] is None:
        # footage kept for good here: what would remove footage with incidents, or the facts, first is not taken
        # from `default` (only what the section itself says)
        merged = replace(merged, retain_incident_days=values.get("retain_incident_days"),
                         retain_facts_days=values.get("retain_facts_days"))
    # what a section takes from `default` is raised where it must be: never keeping incidents' footage shorter
    # than footage, nor facts shorter than either
    longest = merged.retain_days
    if "retain_incident_days" not in values and None not in (merged.retain_incident_days, longest):
        merged = replace(merged, retain_incident_days=max(merged.retain_incident_days, longest))
    longest = max((d for d in (merged.retain_days, merged.retain_incident_days) if d is not None), default=None)
    if "retain_facts_days" not in values and None not in (merged.retain_facts_days, longest):
        merged = replace(merged, retain_facts_days=max(merged.retain_facts_days, longest))
    return merged


def parse_retention(document: dict | None, where: str = "retention") -> RetentionConfig:
    spec = (document or {}).get("retention")
    if spec is None:
        return RetentionConfig()
    if not isinstance(spec, dict):
        raise RetentionConfigError(f"{where}: `retention` holds default, uploads and cameras")
    unknown = sorted(set(spec) - {"default", "uploads", "cameras"})
    if unknown:
        raise RetentionConfigError(f"{where}: unknown retention key {unknown[0]!r} (known: default, uploads, cameras)")
    default = _policy(spec.get("default"), f"{where}: retention.default", RetentionPolicy())
    uploads = spec.get("uploads")
    cameras = spec.get("cameras") or {}
    if not isinstance(cameras, dict):
        raise RetentionConfigError(f"{where}: retention.cameras maps camera names to their settings")
    return RetentionConfig(
        default=default.completed(f"{where}: retention.default"),
        uploads=None if uploads is None else _policy(uploads, f"{where}: retention.uploads", default).completed(
            f"{where}: retention.uploads"),
        cameras={str(name): _policy(value, f"{where}: retention.cameras.{name}", default).completed(
            f"{where}: retention.cameras.{name}") for name, value in cameras.items()})


def load_retention(path: Path | None) -> RetentionConfig:
    """The retention section of the zones file (none: keep everything)."""
    if path is None or not Path(path).exists():
        return RetentionConfig()
    return parse_retention(yaml.safe_load(Path(path).read_text()) or {}, str(path))


# -- the sweep ------------------------------------------------------------------------------------------------
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


@dataclass
class RetentionResult:
    moved_cold: int = 0
    moved_cold_bytes: int = 0
    expired: int = 0
    expired_bytes: int = 0
    erased: int = 0
    erased_bytes: int = 0
    rows_removed: Counter = field(default_factory=Counter)
    erased_keys: list[str] = field(default_factory=list)  # for Dagster's records of their partitions
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def freed_bytes(self) -> int:
        return self.expired_bytes + self.erased_bytes

    def describe(self) -> str:
        text = (f"{self.moved_cold} video(s) moved to the cold tier ({self.moved_cold_bytes / 2**20:.1f} MiB); "
                f"footage of {self.expired} expired ({self.expired_bytes / 2**20:.1f} MiB freed); "
                f"{self.erased} video(s) erased with their facts ({self.erased_bytes / 2**20:.1f} MiB)")
        return text + (f"; {len(self.failures)} failed: {self.failures[0]}" if self.failures else "")


# A video's age runs from its recording time; an upload without one, from when it arrived (an archive copied
# with its old modification times is not expired the night it is imported).
AGE = "coalesce(v.recorded_at, greatest(v.last_modified, v.registered_at))"
# Never touched by a sweep: footage not analysed yet, and videos a stage is working on now.
SETTLED = ("v.status <> 'registered' AND NOT EXISTS (SELECT 1 FROM stage_runs r WHERE r.partition_key = "
           "v.partition_key AND r.status = 'running')")
_AGED_COLUMNS = f"""v.partition_key, v.object_key, v.version, v.size_bytes, v.last_modified, v.source, v.bucket,
                   v.etag, v.camera, v.recorded_at, {AGE} AS at, v.footage"""


def _aged(rows) -> list[Aged]:
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
            plan.to_erase += _aged(conn.execute(
                f"SELECT {_AGED_COLUMNS} FROM videos v WHERE {where} AND {SETTLED} "  # noqa: S608 - fixed fragments
                f"AND {AGE} < %(cutoff)s ORDER BY at, v.partition_key",
                {**params, "cutoff": facts}).fetchall())
        plain, incident = cutoff(policy.retain_days), cutoff(policy.retain_incident_days)
        if plain is not None or incident is not None:
            plan.to_expire += _aged(conn.execute(
                f"""SELECT {_AGED_COLUMNS} FROM videos v LEFT JOIN summaries s USING (partition_key)
                     WHERE {where} AND {SETTLED} AND v.footage <> 'expired'
                       AND (%(facts)s::timestamptz IS NULL OR {AGE} >= %(facts)s)
                       AND {AGE} <
                           CASE WHEN coalesce(s.incident_count, 0) > 0 THEN %(incident)s ELSE %(plain)s END
                     ORDER BY at, v.partition_key""",  # noqa: S608
                {**params, "facts": facts, "plain": plain, "incident": incident}).fetchall())
        cold = cutoff(policy.cold_after_days)
        if cold is not None and cold_tier:
            expiring = {a.partition_key for a in plan.to_expire}
            plan.to_cold += [a for a in _aged(conn.execute(
                f"""SELECT {_AGED_COLUMNS} FROM videos v WHERE {where} AND {SETTLED} AND v.footage = 'hot'
                       AND {AGE} < %(cutoff)s
                     ORDER BY at, v.partition_key""",  # noqa: S608
                {**params, "cutoff": cold}).fetchall()) if a.partition_key not in expiring]
    erasing = {a.partition_key for a in plan.to_erase}
    plan.to_expire = [a for a in plan.to_expire if a.partition_key not in erasing]
    plan.to_cold = [a for a in plan.to_cold if a.partition_key not in erasing]
    return plan


def mark_footage(conn: psycopg.Connection, partition_key: str, footage: str, storage_class: str | None = None) -> None:
    conn.execute("UPDATE videos SET footage = %s, footage_at = now(), storage_class = coalesce(%s, storage_class) "
                 "WHERE partition_key = %s", (footage, storage_class, partition_key))


def holds_this_version(store: ObjectStore, obj: ObjectInfo) -> bool:
    """Whether the key still holds this version's bytes (a re-upload puts a newer version under the same key:
    removing this one's footage must not take the newer one's)."""
    return erasure.holds_version(store, obj)


def expire_footage(conn: psycopg.Connection, store: ObjectStore, aged: Aged) -> int:
    """Remove one video's footage (every tier), then mark its row: returns the bytes freed."""
    removed = holds_this_version(store, aged.obj) and store.delete(aged.obj)
    mark_footage(conn, aged.partition_key, "expired")
    return aged.obj.size if removed else 0


def apply_retention(conn: psycopg.Connection, store: ObjectStore, plan: RetentionPlan,
                    *, stop_when=lambda: False) -> RetentionResult:
    """Carry out a plan (``conn`` in autocommit): erasures first (they free the most), then expiries, oldest
    first, then moves to the cold tier. ``stop_when()`` ends it early (the space wanted is free)."""
    started = time.monotonic()
    result = RetentionResult()
    for start in range(0, len(plan.to_erase), ERASE_BATCH):
        batch = plan.to_erase[start:start + ERASE_BATCH]
        try:
            done = erasure.erase(conn, store, [erasure.ErasedVideo(a.partition_key, a.obj, a.camera, a.recorded_at)
                                               for a in batch], asked_for="retention", this_version_only=True)
        except Exception as exc:  # noqa: BLE001 - the rest of the sweep goes on; the next sweep retries these
            result.failures.append(f"erasing {len(batch)} video(s) from {batch[0].partition_key}: {exc}")
            log.warning("retention: %d video(s) were not erased: %s", len(batch), exc)
            continue
        result.erased += len(batch)
        result.erased_keys += [a.partition_key for a in batch]
        result.erased_bytes += done.footage_bytes
        result.rows_removed.update(done.rows)
        if stop_when():
            break
    for aged in plan.to_expire:
        if stop_when():
            break
        try:
            result.expired_bytes += expire_footage(conn, store, aged)
            result.expired += 1
        except Exception as exc:  # noqa: BLE001 - botocore and OS errors alike: the next sweep retries it
            result.failures.append(f"{aged.partition_key}: {exc}")
            log.warning("retention: the footage of %s was not removed: %s", aged.partition_key, exc)
    move = getattr(store, "move_to_cold", None)
    for aged in plan.to_cold:
        if move is None or stop_when():
            break
        try:
            storage_class = move(aged.obj) if holds_this_version(store, aged.obj) else None
        except (ObjectStoreError, OSError) as exc:
            result.failures.append(f"{aged.partition_key}: {exc}")
            log.warning("retention: %s was not moved to the cold tier: %s", aged.partition_key, exc)
            continue
        if storage_class is None:
            continue  # not cold yet (an S3 lifecycle rule moves it: looked at again tomorrow)
        mark_footage(conn, aged.partition_key, "cold", storage_class)
        result.moved_cold += 1
        result.moved_cold_bytes += aged.obj.size
    result.seconds = time.monotonic() - started
    return result


def free_space(conn: psycopg.Connection, store: ObjectStore, wanted_bytes: int, volume: Path) -> RetentionResult:
    """A disk below its floor: remove the oldest analysed footage without incidents that lies on that disk
    (facts kept, rows marked expired) until ``wanted_bytes`` are freed. Footage with incidents, footage not
    analysed yet, footage on another volume (the cold tier, an S3 bucket) is never removed here."""
    result = RetentionResult()
    root = getattr(store, "root", None)
    if root is None or not _same_volume(Path(root), Path(volume)):
        return result  # nothing removable there would free this volume
    rows = conn.execute(
        f"""SELECT {_AGED_COLUMNS} FROM videos v JOIN summaries s USING (partition_key)
             WHERE v.source = 'local' AND v.footage = 'hot' AND s.incident_count = 0 AND {SETTLED}
             ORDER BY at, v.partition_key LIMIT 2000""").fetchall()  # noqa: S608
    for aged in _aged(rows):
        if result.expired_bytes >= wanted_bytes:
            break
        try:
            result.expired_bytes += expire_footage(conn, store, aged)
            result.expired += 1
        except Exception as exc:  # noqa: BLE001 - the next one may go
            result.failures.append(f"{aged.partition_key}: {exc}")
    return result


def _same_volume(a: Path, b: Path) -> bool:
    def device(path: Path) -> int:
        while not path.exists() and path != path.parent:
            path = path.parent
        return path.stat().st_dev

    return device(a) == device(b)


def sweep(conn: psycopg.Connection, store: ObjectStore, config: RetentionConfig, now: datetime | None = None,
          *, dry_run: bool = False) -> tuple[RetentionPlan, RetentionResult | None]:
    """Plan today's retention and, unless ``dry_run``, carry it out (``conn`` in autocommit)."""
    cold_tier = hasattr(store, "move_to_cold")
    if dry_run:
        plan = plan_retention(conn, config, now, cold_tier=cold_tier)
        log.info("retention (dry run): %s", plan.describe())
        return plan, None
    if not conn.execute("SELECT pg_try_advisory_lock(%s)", (SWEEP_LOCK,)).fetchone()[0]:
        raise RetentionBusy("another retention sweep is running on this database (the nightly job, or "
                            "`reelgraph retention`): this one did nothing")
    try:
        plan = plan_retention(conn, config, now, cold_tier=cold_tier)
        log.info("retention: %s", plan.describe())
        result = apply_retention(conn, store, plan)
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", (SWEEP_LOCK,))
    log.info("retention: %s in %.1f s", result.describe(), result.seconds)
    return plan, result


def lifecycle_rules(config: RetentionConfig, storage_class: str = "STANDARD_IA", prefix: str = "") -> dict:
    """An S3 lifecycle configuration that moves footage to ``storage_class`` after ``cold_after_days`` (recorded
    cameras under ``cameras/<name>/``, the default for every other key). Removal is left to the sweep, which
    keeps the catalogue true: no Expiration rule."""
    rules = []
    least = 30 if storage_class in ("STANDARD_IA", "ONEZONE_IA") else 0  # S3 refuses IA transitions before 30 days

    def days(value: float) -> int:
        return max(least, 1, round(value))

    for camera, policy in sorted(config.cameras.items()):
        if policy.cold_after_days:
            rules.append({"ID": f"reelgraph-cold-{camera}", "Status": "Enabled",
                          "Filter": {"Prefix": f"{prefix}cameras/{camera}/"},
                          "Transitions": [{"Days": days(policy.cold_after_days),
                                           "StorageClass": storage_class}]})
    if config.default.cold_after_days:
        rules.append({"ID": "reelgraph-cold-default", "Status": "Enabled", "Filter": {"Prefix": prefix},
                      "Transitions": [{"Days": days(config.default.cold_after_days),
                                       "StorageClass": storage_class}]})
    return {"Rules": rules}
