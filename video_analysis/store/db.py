"""Connections to reelgraph's PostgreSQL: the embedded server by default, any server by URL."""

from __future__ import annotations

import hashlib
from contextlib import contextmanager
from pathlib import Path

import psycopg

from video_analysis.runtime.embedded_postgres import EmbeddedPostgres
from video_analysis.store.schema import migrate

CONNECT_TIMEOUT_S = 10


def resolve_dsn(url: str | None, pgdata: Path, shared_buffers: str | None = None) -> str:
    """The configured URL, or the embedded server's (started on demand, with ``shared_buffers`` of cache)."""
    if url:
        # SQLAlchemy-style URLs (postgresql+psycopg2://) are accepted for convenience.
        return url.replace("postgresql+psycopg2://", "postgresql://").replace("postgresql+psycopg://", "postgresql://")
    return EmbeddedPostgres(pgdata, shared_buffers).start()


def connect(dsn: str, *, autocommit: bool = False) -> psycopg.Connection:
    conn = psycopg.connect(dsn, autocommit=autocommit, connect_timeout=CONNECT_TIMEOUT_S)
    try:
        from pgvector.psycopg import register_vector

        register_vector(conn)
    except psycopg.ProgrammingError:
        pass  # extension not created yet: the first migration creates it
    return conn


@contextmanager
def session(dsn: str):
    """A connection whose work commits on success and rolls back entirely on any error."""
    conn = connect(dsn)
    try:
        with conn.transaction():
            yield conn
    finally:
        conn.close()


def prepare(dsn: str) -> list[int]:
    """Apply pending migrations; safe to call from every process at start-up."""
    with psycopg.connect(dsn, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S) as conn:
        return migrate(conn)


class PooledDatabase:
    """A long-lived process's database (the review service): connections kept open and reused, so a
    request does not pay for a new connection and its password handshake."""

    def __init__(self, dsn: str, max_size: int = 16, statement_timeout_ms: int | None = None,
                 lock_timeout_ms: int | None = None, wait_s: float = 30.0):
        from psycopg_pool import ConnectionPool

        self.dsn = dsn
        # Bounds on every statement of every request: past them PostgreSQL cancels it (QueryCanceled,
        # LockNotAvailable) and the connection goes back to the pool, instead of a worker waiting on a scan or
        # on a migration's lock for as long as it takes.
        options = " ".join(f"-c {name}={int(value)}" for name, value in
                           (("statement_timeout", statement_timeout_ms), ("lock_timeout", lock_timeout_ms))
                           if value)
        # check: a connection broken by a database restart is replaced before use, not failed on a request
        # two at least, and twice the searches served at once: a search runs its tracks and its events side
        # by side, each on its own connection
        # wait_s: how long a request waits for a free connection before PoolTimeout (every one busy)
        self.pool = ConnectionPool(dsn, min_size=2, max_size=max_size, configure=_register_vector, open=True,
                                   check=ConnectionPool.check_connection, timeout=wait_s,
                                   kwargs={"connect_timeout": CONNECT_TIMEOUT_S,
                                           **({"options": options} if options else {})})

    @contextmanager
    def session(self):
        """One transaction on a pooled connection: committed on success, rolled back on any error."""
        with self.pool.connection() as conn:
            yield conn

    def close(self) -> None:
        self.pool.close()


def store_identity(conn: psycopg.Connection) -> str:
    """A short name for the database this connection reaches, the same from every client of it: made once by
    a migration (a random UUID), so two processes compare it to know that they read the same store, whatever
    address each uses to reach it."""
    return hashlib.sha256(str(conn.execute("SELECT id FROM store_identity").fetchone()[0]).encode()).hexdigest()[:16]


def _register_vector(conn: psycopg.Connection) -> None:
    try:
        from pgvector.psycopg import register_vector

        register_vector(conn)
    except psycopg.ProgrammingError:
        pass


class Database:
    """One PostgreSQL database as the stages use it: short transactions opened on demand."""

    def __init__(self, dsn: str):
        self.dsn = dsn

    def session(self):
        """One transaction: everything inside commits together or not at all."""
        return session(self.dsn)

    def connect(self, *, autocommit: bool = False) -> psycopg.Connection:
        return connect(self.dsn, autocommit=autocommit)
