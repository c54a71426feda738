"""HNSW indexes on the embeddings table: one partial index per embedding model.

Rows of different models (and dimensions) share one table; each model gets an expression index
``(embedding::vector(dim))`` restricted to its rows, which is how pgvector indexes mixed dimensions.
Bulk loads (backfills) drop the indexes, load, and build them once (``reelgraph index drop`` /
``reelgraph index rebuild``): building afterwards is much faster than inserting into a live HNSW graph
(see benchmarks/README.md). Between the two, a row in ``vector_index_holds`` stops the embeddings stage
from re-creating them.
"""

from __future__ import annotations

import hashlib
import re

import psycopg
from psycopg import sql


def index_name(model_name: str) -> str:
    """A readable slug of the model plus a hash of its exact name: "tiny-clip" and "tiny_clip" never share one.

    The schema's migration 8 computes the same name in SQL.
    """
    slug = re.sub(r"[^a-z0-9]+", "_", model_name.lower()).strip("_")[:30]
    return f"embeddings_hnsw_{slug}_{hashlib.md5(model_name.encode()).hexdigest()[:8]}"


def summary_index_name(model_name: str) -> str:
    """The model's second index, over video summaries only: they are few among its rows, and a filtered
    walk of the whole graph to find them would visit most of it."""
    return index_name(model_name) + "_s"


def description_index_name(model_name: str) -> str:
    """The model's IVFFlat index over distinct descriptions (table ``description_vectors``), which search
    reads for tracks' text vectors."""
    return index_name(model_name).replace("embeddings_hnsw_", "descriptions_ivfflat_", 1)


def description_lists(count: int) -> int:
    """IVFFlat lists for ``count`` descriptions: the square root, so a search that probes 10 lists reads
    ~10 * sqrt(count) vectors (1,400 of 20,000)."""
    return max(1, round(count ** 0.5))


_INDEX_LOCK = 0x5EE1_1D3C
_DESCRIPTIONS_LOCK = 0x5EE1_DE5C

# Distinct descriptions are not walked as a graph: sentences in the pipeline's words differ by a number
# or a colour, so they lie in tight clusters of near-equals, and an HNSW graph over them (m 32 or 64,
# ef_search 200 to 1000) found the nearest description for 75-90% of queries at 20,000 descriptions.
# Clusters are what IVFFlat partitions by: 141 lists, 10 probed, found it for all, in ~1 ms
# (benchmarks/README.md).

# The graph's build settings. pgvector's defaults (m 16, ef_construction 64) reach a recall@10 of 0.68 at
# 1M tracks and 0.79 at 100k on descriptions in the pipeline's words, which differ by a word or two and
# so lie close together; a denser graph built with a wider search holds 0.95 (benchmarks/README.md).
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 200
# Memory of one index build: with less, an HNSW graph that no longer fits is built on from disk, many times
# slower. A rebuild and the migrations that build indexes use it alike.
BUILD_MAINTENANCE_WORK_MEM = "1GB"


def use_build_settings(conn: psycopg.Connection) -> None:
    """Build indexes with this module's memory until the transaction ends."""
    conn.execute("SELECT set_config('maintenance_work_mem', %s, true)", (BUILD_MAINTENANCE_WORK_MEM,))


def lock_descriptions(conn: psycopg.Connection) -> None:
    """Hold the lock on table ``descriptions`` until the transaction ends (re-entrant): a run forgetting a
    description no track of its own has any more must not miss another run adding it again. Taken after the
    index lock by whoever takes both, never before it."""
    conn.execute("SELECT pg_advisory_xact_lock(%s)", (_DESCRIPTIONS_LOCK,))


def lock_indexes(conn: psycopg.Connection) -> None:
    """Hold the index lock until the transaction ends (re-entrant).

    Writers of vectors take it before their first row, not only to build an index: a writer that held
    rows of description_vectors or embeddings while it waited here would block a writer holding the
    lock from rebuilding an index on them, and the two would deadlock."""
    conn.execute("SELECT pg_advisory_xact_lock(%s)", (_INDEX_LOCK,))


def ensure_index(conn: psycopg.Connection, model_name: str, dim: int) -> bool:
    """Create the model's HNSW index unless it exists or a bulk load holds index builds back.

    Serialised: concurrent runs may both ask. Returns False while held.
    """
    lock_indexes(conn)
    if conn.execute("SELECT EXISTS (SELECT 1 FROM vector_index_holds)").fetchone()[0]:
        return False
    for name, rows in ((index_name(model_name), ""), (summary_index_name(model_name), " AND kind = 'summary_text'")):
        conn.execute(sql.SQL(
            "CREATE INDEX IF NOT EXISTS {name} ON embeddings USING hnsw ((embedding::vector({dim})) vector_cosine_ops) "
            "WITH (m = {m}, ef_construction = {ef}) WHERE model_name = {model}" + rows
        ).format(name=sql.Identifier(name), dim=sql.Literal(int(dim)), model=sql.Literal(model_name),
                 m=sql.Literal(HNSW_M), ef=sql.Literal(HNSW_EF_CONSTRUCTION)))
    _ensure_description_index(conn, model_name, dim)
    return True


def _ensure_description_index(conn: psycopg.Connection, model_name: str, dim: int) -> None:
    """Build the model's IVFFlat index over its descriptions, and build it again once they have grown
    fourfold: its lists are trained on the rows there at build time, and new rows join the nearest list,
    so lists made for few rows grow long. A build took 0.7 s at 20,000 descriptions, and each takes
    twice the last one's lists, so a store builds it ~log4 of its descriptions times in all. Built under
    another name and swapped in at the end: searches read the old one meanwhile, and wait only for the
    swap (dropping an index locks its table until the transaction ends). A model without descriptions
    (an image model) gets none."""
    name = description_index_name(model_name)
    count = conn.execute("SELECT count(*) FROM description_vectors WHERE model_name = %s", (model_name,)).fetchone()[0]
    options = conn.execute("SELECT reloptions FROM pg_class WHERE relname = %s AND relkind = 'i'", (name,)).fetchone()
    if options is not None:
        built = int(next((o.split("=")[1] for o in options[0] or [] if o.startswith("lists=")), 1))
        if description_lists(count) < 2 * built:
            return
    elif count == 0:
        return
    building = name[:58] + "_next"
    conn.execute(sql.SQL("DROP INDEX IF EXISTS {name}").format(name=sql.Identifier(building)))
    conn.execute(sql.SQL(
        "CREATE INDEX {name} ON description_vectors USING ivfflat ((embedding::vector({dim})) vector_cosine_ops) "
        "WITH (lists = {lists}) WHERE model_name = {model}"
    ).format(name=sql.Identifier(building), dim=sql.Literal(int(dim)), model=sql.Literal(model_name),
             lists=sql.Literal(description_lists(count))))
    conn.execute(sql.SQL("DROP INDEX IF EXISTS {name}").format(name=sql.Identifier(name)))
    conn.execute(sql.SQL("ALTER INDEX {building} RENAME TO {name}").format(building=sql.Identifier(building),
                                                                          name=sql.Identifier(name)))


def sync_descriptions(conn: psycopg.Connection) -> int:
    """Make ``descriptions`` and ``description_vectors`` hold exactly the descriptions tracks have: those no
    track has any more go (a deleted video leaves them), any a bulk load wrote past the attributes and
    embeddings stages come. Returns the vectors added."""
    lock_descriptions(conn)
    conn.execute("""DELETE FROM descriptions d WHERE NOT EXISTS (
                        SELECT 1 FROM track_attributes a WHERE md5(a.description) = md5(d.content))""")
    conn.execute("""INSERT INTO descriptions (content)
                    SELECT DISTINCT ON (md5(description)) description FROM track_attributes ORDER BY md5(description)
                    ON CONFLICT DO NOTHING""")
    conn.execute("""DELETE FROM description_vectors d WHERE NOT EXISTS (
                        SELECT 1 FROM embeddings e WHERE e.kind = 'track_text' AND e.model_name = d.model_name
                          AND md5(e.content) = md5(d.content) AND e.content = d.content)""")
    return conn.execute("""INSERT INTO description_vectors (model_name, content, model_version, dim, embedding)
                           SELECT e.model_name, e.content, e.model_version, e.dim, e.embedding
                             FROM embeddings e
                             JOIN (SELECT max(id) AS id FROM embeddings WHERE kind = 'track_text'
                                      AND content IS NOT NULL GROUP BY model_name, md5(content)) newest USING (id)
                           ON CONFLICT DO NOTHING""").rowcount


def outdated_indexes(conn: psycopg.Connection) -> list[str]:
    """Names of the HNSW indexes built with other settings than these (an older release's): they keep
    working, with a lower recall, until `reelgraph index rebuild`."""
    wanted = {f"m={HNSW_M}", f"ef_construction={HNSW_EF_CONSTRUCTION}"}
    rows = conn.execute("SELECT c.relname, c.reloptions FROM pg_class c JOIN pg_am am ON am.oid = c.relam "
                        "WHERE am.amname = 'hnsw' AND c.relname LIKE 'embeddings_hnsw_%' ORDER BY 1").fetchall()
    return [name for name, options in rows if not wanted <= set(options or [])]


def drop_index(conn: psycopg.Connection, model_name: str) -> None:
    for name in (index_name(model_name), summary_index_name(model_name), description_index_name(model_name)):
        conn.execute(sql.SQL("DROP INDEX IF EXISTS {name}").format(name=sql.Identifier(name)))


def indexed_models(conn: psycopg.Connection) -> list[tuple[str, int]]:
    """(model name, dimension) of every embedding model with rows."""
    return conn.execute("SELECT model_name, min(dim) FROM embeddings GROUP BY model_name ORDER BY 1").fetchall()


def drop_all(conn: psycopg.Connection, held_by: str = "reelgraph index drop") -> list[str]:
    """Drop every model's index and hold builds back until `rebuild_all`."""
    conn.execute("SELECT pg_advisory_xact_lock(%s)", (_INDEX_LOCK,))
    conn.execute("INSERT INTO vector_index_holds (held_by) VALUES (%s) ON CONFLICT DO NOTHING", (held_by,))
    models = [model for model, _ in indexed_models(conn)]
    for model in models:
        drop_index(conn, model)
    return models


def rebuild_all(conn: psycopg.Connection) -> list[str]:
    """Release any hold, then build (or rebuild) the HNSW index of every model with rows."""
    lock_indexes(conn)  # before any row it changes: see lock_indexes
    use_build_settings(conn)
    conn.execute("DELETE FROM vector_index_holds")
    sync_descriptions(conn)
    models = indexed_models(conn)
    for model, dim in models:
        drop_index(conn, model)
        ensure_index(conn, model, dim)
    return [model for model, _ in models]
