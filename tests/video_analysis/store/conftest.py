"""A throwaway database for tests that migrate, or break migrations: the session's database stays as the other
tests expect it."""

import uuid

import psycopg
import pytest
from psycopg.conninfo import make_conninfo


@pytest.fixture
def scratch_dsn(pg_dsn):
    """The DSN of a new, empty database on the session's server (no migration applied), dropped afterwards."""
    name = f"reelgraph_scratch_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(make_conninfo(pg_dsn, dbname="postgres"), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_conninfo(pg_dsn, dbname=name)
    finally:
        with psycopg.connect(make_conninfo(pg_dsn, dbname="postgres"), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
