"""Carrying out a retention plan: erasures, footage expiries and moves to the cold tier, one video at a time.

Each video's footage is removed before its row says so (marked ``footage = 'expired'``: search and the page
still show its facts and thumbnail), so a run killed mid-way leaves at most rows whose footage is already gone,
which the next sweep finds and marks. Erasures go through `erasure`, with its audit record.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field

import psycopg

from video_analysis.runtime.object_store import ObjectInfo, ObjectStore, ObjectStoreError
from video_analysis.store import erasure
from video_analysis.store.retention_plan import Aged, RetentionPlan

log = logging.getLogger(__name__)

ERASE_BATCH = 200


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

