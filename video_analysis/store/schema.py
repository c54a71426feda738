"""The one module that owns reelgraph's database schema.

Migrations are numbered and append-only; ``migrate`` applies the missing ones in order under an advisory
lock, so any number of processes may call it at start-up. Each migration is its own transaction, which also
records its version: a failed migration leaves the schema at the version before it, with the migrations
before it kept, and a long one (a vector index over many rows) holds its tables only while it runs.

A migration's statements wait at most ``LOCK_TIMEOUT_S`` for a table that another session holds: an upgrade
that cannot have its tables fails, naming the migration and the session in its way, instead of queueing
every later query of every process behind it.

The migrations themselves, the SQL that creates and alters every table, are in ``migrations_1_to_8`` and
``migrations_from_9`` (where a new one is appended); this module applies them and records their versions.
"""

from __future__ import annotations

import logging
import os
import re
import time

import psycopg

from video_analysis.store import vector_index
from video_analysis.store.migrations_1_to_8 import MIGRATIONS_1_TO_8
from video_analysis.store.migrations_from_9 import MIGRATIONS_FROM_9

log = logging.getLogger(__name__)

_MIGRATION_LOCK = 0x5EE1_6A9F  # advisory-lock id shared by every reelgraph process

# How long one statement of a migration waits for a lock another session holds on its tables.
LOCK_TIMEOUT_S = 5.0
# How long a process waits for another one that is applying migrations (an index build over a million rows
# takes minutes), saying so every WAIT_REPORT_S.
MIGRATION_WAIT_S = 1800.0
WAIT_REPORT_S = 60.0


class MigrationError(RuntimeError):
    """A migration could not be applied now; the schema stays at the version before it."""


# Every migration in order, as (version, description, SQL); the SQL of each is in migrations_1_to_8.py and
# migrations_from_9.py.
MIGRATIONS: list[tuple[int, str, str]] = [*MIGRATIONS_1_TO_8, *MIGRATIONS_FROM_9]

LATEST_VERSION = MIGRATIONS[-1][0]


def current_version(conn: psycopg.Connection) -> int:
    exists = conn.execute("SELECT to_regclass('public.schema_migrations') IS NOT NULL").fetchone()[0]
    if not exists:
        return 0
    return conn.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()[0]


def migrate(conn: psycopg.Connection, up_to: int | None = None) -> list[int]:
    """Bring the schema to ``up_to`` (default LATEST_VERSION); returns the versions applied now (empty when
    up to date). ``conn`` must have no transaction open: each migration commits on its own."""
    if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        raise ValueError("migrate needs a connection with no transaction open: each migration commits on its own")
    target = LATEST_VERSION if up_to is None else up_to
    _take_migration_lock(conn)
    try:
        with conn.transaction():
            _limit_lock_waits(conn)
            conn.execute(
                """CREATE TABLE IF NOT EXISTS schema_migrations (
                       version integer PRIMARY KEY,
                       description text NOT NULL,
                       applied_at timestamptz NOT NULL DEFAULT now())"""
            )
            done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
        applied: list[int] = []
        for version, description, sql in MIGRATIONS:
            if version in done or version > target:
                continue
            log.info("applying schema migration %d: %s", version, description)
            try:
                with conn.transaction():
                    _limit_lock_waits(conn)
                    vector_index.use_build_settings(conn)  # the index builds of a migration as a rebuild's
                    conn.execute(sql)
                    conn.execute("INSERT INTO schema_migrations (version, description) VALUES (%s, %s)",
                                 (version, description))
            except psycopg.errors.LockNotAvailable as exc:
                raise MigrationError(_blocked_message(conn, version, description, sql)) from exc
            applied.append(version)
        return applied
    finally:
        _release_migration_lock(conn)


def _limit_lock_waits(conn: psycopg.Connection) -> None:
    conn.execute("SELECT set_config('lock_timeout', %s, true)", (f"{max(1, round(LOCK_TIMEOUT_S * 1000))}ms",))


def _take_migration_lock(conn: psycopg.Connection) -> None:
    """Wait, saying for whom, while another process applies migrations; give up after MIGRATION_WAIT_S."""
    waiting_since = time.monotonic()
    reported_at = None
    while True:
        waited = time.monotonic() - waiting_since
        try:
            with conn.transaction():
                # the first try does not wait; then rounds of a few seconds, so that a wait is reported
                wait_s = 0 if reported_at is None else min(5.0, max(0.1, MIGRATION_WAIT_S - waited))
                conn.execute("SELECT set_config('lock_timeout', %s, true)", (f"{round(wait_s * 1000)}ms",))
                if wait_s == 0:
                    if conn.execute("SELECT pg_try_advisory_lock(%s)", (_MIGRATION_LOCK,)).fetchone()[0]:
                        return
                else:
                    conn.execute("SELECT pg_advisory_lock(%s)", (_MIGRATION_LOCK,))
                    return
        except psycopg.errors.LockNotAvailable:
            pass
        holder_pid, holder = _migration_lock_holder(conn)
        waited = time.monotonic() - waiting_since
        if waited >= MIGRATION_WAIT_S:
            raise MigrationError(
                f"{holder} has been applying schema migrations for over {MIGRATION_WAIT_S:.0f} s (an index build "
                f"over many rows takes minutes): let it finish and start this process again, or end that session "
                f"(SELECT pg_terminate_backend({holder_pid or 'pid'})) and retry")
        if reported_at is None or time.monotonic() - reported_at >= WAIT_REPORT_S:
            log.warning("process %d waits for %s to finish applying schema migrations (%.0f s so far; gives up "
                        "after %.0f s)", os.getpid(), holder, waited, MIGRATION_WAIT_S)
            reported_at = time.monotonic()


def _migration_lock_holder(conn: psycopg.Connection) -> tuple[int | None, str]:
    """Who holds the migration lock: its session's pid, and in words its pid, program and what it runs."""
    with conn.transaction():
        row = conn.execute(
            """SELECT l.pid, a.application_name, a.state, a.query
                 FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid
                WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
                  AND l.classid::bigint = %s AND l.objid::bigint = %s
                  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())""",
            (_MIGRATION_LOCK >> 32, _MIGRATION_LOCK & 0xFFFF_FFFF)).fetchone()
    if row is None:
        return None, "another process"
    pid, application, state, query = row
    return pid, f"the session of pid {pid} ({_session(application, state, query)})"


def _blocked_message(conn: psycopg.Connection, version: int, description: str, sql: str) -> str:
    """Why migration ``version`` could not have its tables: the sessions holding them, as far as still seen."""
    with conn.transaction():
        rows = conn.execute(
            """SELECT DISTINCT ON (l.pid, c.relname) l.pid, c.relname, l.mode, a.application_name, a.state, a.query,
                      extract(epoch FROM now() - a.xact_start)
                 FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
                 LEFT JOIN pg_stat_activity a ON a.pid = l.pid
                WHERE l.granted AND l.pid <> pg_backend_pid()
                  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
                ORDER BY l.pid, c.relname""").fetchall()
    holders = [row for row in rows if re.search(rf"\b{re.escape(row[1])}\b", sql)]
    what = f"schema migration {version} ({description})"
    if not holders:
        return (f"{what} waited over {LOCK_TIMEOUT_S:g} s for a lock on its tables, held by another session that "
                f"has let go since; retry")
    pid, table, mode, application, state, query, held_s = holders[0]
    since = f", in its transaction for {held_s:.0f} s" if held_s is not None else ""
    others = f" (and {len(holders) - 1} more)" if len(holders) > 1 else ""
    return (f"{what} waits on a lock held by pid {pid} on table {table} ({mode}; "
            f"{_session(application, state, query)}{since}){others}; stop that session "
            f"(SELECT pg_terminate_backend({pid})) or retry once it is done")


def _session(application: str | None, state: str | None, query: str | None) -> str:
    words = " ".join((query or "").split())
    return f"{application or 'unnamed client'}, {state or 'state unknown'}: {words[:160] or 'no query'}"


def _release_migration_lock(conn: psycopg.Connection) -> None:
    if conn.closed:
        return  # the server let go of it with the session
    try:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_unlock(%s)", (_MIGRATION_LOCK,))
    except psycopg.Error:
        log.debug("releasing the migration lock failed; it goes with the session", exc_info=True)
