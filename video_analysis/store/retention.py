"""Retention sweep: plan today's retention and carry it out, one sweep at a time per database; the entry point the
nightly job and `reelgraph retention` call.

The policy is in `retention_policy`, the plan in `retention_plan`, carrying it out in `retention_apply`; freeing
a full disk early is `free_space`, the S3 cold-tier rules `s3_lifecycle`.

A sweep is idempotent and resumable: each video's footage is removed before its row says so, one video at a
time, so a sweep killed mid-way leaves at most rows whose footage is already gone, which the next sweep (any
sweep: the plan is recomputed) finds and marks.
"""

from __future__ import annotations

import logging
from datetime import datetime

import psycopg

from video_analysis.runtime.object_store import ObjectStore
from video_analysis.store.retention_apply import RetentionResult, apply_retention
from video_analysis.store.retention_plan import RetentionPlan, plan_retention
from video_analysis.store.retention_policy import RetentionConfig

log = logging.getLogger(__name__)

SWEEP_LOCK = 0x72657465  # advisory lock: one sweep at a time per database


class RetentionBusy(RuntimeError):
    """Another sweep holds the database's retention lock."""


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
