"""The one writer of stage outputs: replace one partition's rows of a table, inside the caller's transaction.

Every stage writes through `replace_partition_rows`. It takes a per-partition advisory lock that lasts
until the transaction ends, so two runs of the same partition at once (a sensor run and a backfill, a
retry racing a slow worker) serialize here: the second one's DELETE sees the first one's committed rows
and removes them, and the partition never holds two copies. The delete and the copy share the caller's
transaction, so a crash writes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import psycopg
from psycopg import sql

_LOCK_NAMESPACE = "reelgraph-partition:"


class NotInTransactionError(RuntimeError):
    """The writer was handed an autocommit connection, where its lock and its delete would not hold."""


def lock_partition(conn: psycopg.Connection, partition_key: str) -> None:
    """Hold this partition's write lock until the current transaction ends (re-entrant)."""
    if conn.autocommit:
        raise NotInTransactionError("partition rows are replaced inside a transaction, not on an autocommit connection")
    conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (_LOCK_NAMESPACE + partition_key,))


def replace_partition_rows(
    conn: psycopg.Connection,
    table: str,
    partition_key: str,
    columns: Sequence[str],
    rows: Iterable[Sequence],
    *,
    scope: dict[str, object] | None = None,
    binary_types: Sequence[str] | None = None,
) -> int:
    """Replace the partition's rows of ``table`` (narrowed by ``scope``, e.g. ``{"kind": "track_text"}``).

    ``rows`` hold values for ``columns``; ``partition_key`` and the scope's columns are added to each row.
    ``binary_types`` switches COPY to binary (needed for pgvector's ``vector``), one type per written column.
    Returns the number of rows written.
    """
    lock_partition(conn, partition_key)
    scope = scope or {}
    fixed = ["partition_key", *scope]
    conditions = sql.SQL(" AND ").join(sql.SQL("{} = %s").format(sql.Identifier(c)) for c in fixed)
    conn.execute(sql.SQL("DELETE FROM {} WHERE {}").format(sql.Identifier(table), conditions),
                 (partition_key, *scope.values()))
    statement = sql.SQL("COPY {} ({}) FROM STDIN{}").format(
        sql.Identifier(table),
        sql.SQL(", ").join(sql.Identifier(c) for c in (*fixed, *columns)),
        sql.SQL(" WITH (FORMAT BINARY)") if binary_types else sql.SQL(""),
    )
    prefix = (partition_key, *scope.values())
    written = 0
    with conn.cursor().copy(statement) as copy:
        if binary_types:
            copy.set_types(["text", *(_type_of(v) for v in scope.values()), *binary_types])
        for row in rows:
            copy.write_row((*prefix, *row))
            written += 1
    return written


def _type_of(value: object) -> str:
    if isinstance(value, int):
        return "int4"
    return "text"
