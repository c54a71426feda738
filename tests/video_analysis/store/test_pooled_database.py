"""The review service's pooled connections: every statement bounded, and one name for the database."""

import time

import psycopg
import pytest

from video_analysis.store import db


def test_a_statement_past_the_timeout_is_cancelled_and_its_connection_serves_the_next_request(pg_dsn):
    pooled = db.PooledDatabase(pg_dsn, max_size=2, statement_timeout_ms=300, lock_timeout_ms=200)
    try:
        started = time.monotonic()
        with pytest.raises(psycopg.errors.QueryCanceled), pooled.session() as conn:
            conn.execute("SELECT pg_sleep(10)")
        assert time.monotonic() - started < 3
        with pooled.session() as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        pooled.close()


def test_a_lock_held_elsewhere_fails_a_statement_after_the_lock_timeout(pg_dsn):
    pooled = db.PooledDatabase(pg_dsn, max_size=2, statement_timeout_ms=5000, lock_timeout_ms=200)
    try:
        with psycopg.connect(pg_dsn) as holder:
            holder.execute("LOCK TABLE videos IN ACCESS EXCLUSIVE MODE")
            started = time.monotonic()
            with pytest.raises(psycopg.errors.LockNotAvailable), pooled.session() as conn:
                conn.execute("SELECT count(*) FROM videos")
            assert time.monotonic() - started < 3
    finally:
        pooled.close()


def test_every_connection_to_one_database_gives_it_the_same_name_and_another_database_another(pg_dsn):
    with db.session(pg_dsn) as first, db.session(pg_dsn.replace("127.0.0.1", "localhost")) as second:
        name = db.store_identity(first)
        assert name == db.store_identity(second) and len(name) == 16
    with psycopg.connect(pg_dsn, autocommit=True) as admin:
        admin.execute("DROP DATABASE IF EXISTS identity_other")
        admin.execute("CREATE DATABASE identity_other")
    try:
        other = pg_dsn.rsplit("/", 1)[0] + "/identity_other"
        db.prepare(other)
        with db.session(other) as conn:
            assert db.store_identity(conn) != name
    finally:
        with psycopg.connect(pg_dsn, autocommit=True) as admin:
            admin.execute("DROP DATABASE identity_other")
