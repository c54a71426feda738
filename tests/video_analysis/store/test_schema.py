"""Migrations as an upgrade meets them: other sessions holding tables, another process migrating, a migration
that fails. Each test migrates a throwaway database (fixture ``scratch_dsn``)."""

import logging
import os
import threading
import time

import psycopg
import pytest

from video_analysis.store import schema


def _connect(dsn: str) -> psycopg.Connection:
    conn = psycopg.connect(dsn, autocommit=True)
    # a safety net: without the migrations' own bounds a test would wait here, not forever
    conn.execute("SET statement_timeout = '30s'")
    return conn


def _tables(conn) -> set[str]:
    return {row[0] for row in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}


def test_a_migration_whose_table_another_session_holds_fails_in_seconds_naming_itself_and_that_session(
        scratch_dsn, monkeypatch):
    monkeypatch.setattr(schema, "LOCK_TIMEOUT_S", 1.0)
    with _connect(scratch_dsn) as conn, psycopg.connect(scratch_dsn) as reader:
        assert schema.migrate(conn, up_to=11) == list(range(1, 12))
        reader.execute("SELECT count(*) FROM videos")  # a transaction left open on videos, which 13 alters
        started = time.monotonic()
        with pytest.raises(schema.MigrationError) as failure:
            schema.migrate(conn)
        assert time.monotonic() - started < 10
        message = str(failure.value)
        assert "schema migration 13 (live cameras: each camera's recording state" in message
        assert f"pid {reader.info.backend_pid}" in message and "table videos" in message
        assert "SELECT count(*) FROM videos" in message  # what that session ran
        # 12 went through and stays; 13 left nothing behind
        assert schema.current_version(conn) == 12
        assert "static_objects" in _tables(conn) and "cameras" not in _tables(conn)
        reader.rollback()
        assert schema.migrate(conn) == list(range(13, schema.LATEST_VERSION + 1))


def test_a_failed_migration_leaves_the_one_before_it_applied_and_recorded(scratch_dsn, monkeypatch):
    """Also: a migration builds with the project's index memory and waits for locks a bounded time."""
    last = schema.LATEST_VERSION
    recorder = (last + 1, "records its settings", "CREATE TABLE settings_seen AS SELECT "
                "current_setting('maintenance_work_mem') AS memory, current_setting('lock_timeout') AS lock_wait")
    broken = (last + 2, "fails", "CREATE TABLE half_done (x int); SELECT 1 / 0")
    monkeypatch.setattr(schema, "MIGRATIONS", [*schema.MIGRATIONS, recorder, broken])
    with _connect(scratch_dsn) as conn:
        assert schema.migrate(conn, up_to=11) == list(range(1, 12))
        with pytest.raises(psycopg.errors.DivisionByZero):
            schema.migrate(conn, up_to=last + 2)
        assert schema.current_version(conn) == last + 1
        assert {"static_objects", "cameras", "settings_seen"} <= _tables(conn)  # 12 to last + 1 kept
        assert "half_done" not in _tables(conn)
        assert conn.execute("SELECT memory, lock_wait FROM settings_seen").fetchone() == ("1GB", "5s")
        # the lock is free again: another session (advisory locks are re-entrant on the one that holds them, so
        # asking on this connection would prove nothing) takes it at once
        with psycopg.connect(scratch_dsn, autocommit=True) as other:
            assert other.execute("SELECT pg_try_advisory_lock(%s)", (schema._MIGRATION_LOCK,)).fetchone() == (True,)
            other.execute("SELECT pg_advisory_unlock(%s)", (schema._MIGRATION_LOCK,))
        monkeypatch.setattr(schema, "MIGRATIONS", [*schema.MIGRATIONS[:-1]])
        assert schema.migrate(conn, up_to=last + 2) == []


def test_a_process_waits_for_another_one_migrating_and_says_for_whom(scratch_dsn, monkeypatch, caplog):
    with _connect(scratch_dsn) as conn, psycopg.connect(scratch_dsn, autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(%s)", (schema._MIGRATION_LOCK,))  # as a process mid-migration
        releaser = threading.Timer(1.5, other.execute, ("SELECT pg_advisory_unlock(%s)", (schema._MIGRATION_LOCK,)))
        releaser.start()
        with caplog.at_level(logging.WARNING, logger=schema.__name__):
            started = time.monotonic()
            assert schema.migrate(conn) == list(range(1, schema.LATEST_VERSION + 1))
        releaser.join()
        assert time.monotonic() - started >= 1.4  # it waited for the other one
        [waiting] = [r.getMessage() for r in caplog.records if "waits for" in r.getMessage()]
        assert f"process {os.getpid()} waits for the session of pid {other.info.backend_pid}" in waiting


def test_a_process_gives_up_on_another_one_migrating_past_the_bound_saying_what_to_do(scratch_dsn, monkeypatch):
    monkeypatch.setattr(schema, "MIGRATION_WAIT_S", 1.0)
    with _connect(scratch_dsn) as conn, psycopg.connect(scratch_dsn, autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(%s)", (schema._MIGRATION_LOCK,))
        started = time.monotonic()
        with pytest.raises(schema.MigrationError) as failure:
            schema.migrate(conn)
        assert time.monotonic() - started < 10
        message = str(failure.value)
        assert f"the session of pid {other.info.backend_pid}" in message
        assert "let it finish" in message and f"pg_terminate_backend({other.info.backend_pid})" in message
        assert schema.current_version(conn) == 0
