"""Vector search at scale: HNSW build vs incremental inserts, latency p50/p95 and recall@10 vs exact.

    .venv/bin/python benchmarks/search.py [--sizes 100000,1000000] [--queries 100]

Runs against a private embedded PostgreSQL + pgvector (or $REELGRAPH_DATABASE_URL) in a scratch table,
with clustered synthetic 384-d unit vectors (the dimension of all-MiniLM-L6-v2): 1000 cluster centres
plus noise, which is closer to real description embeddings than uniform noise. Also measures text
embedding throughput of the packaged MiniLM. Prints markdown tables.
"""

import argparse
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from configuration.settings import Settings  # noqa: E402
from video_analysis.runtime.embedded_postgres import EmbeddedPostgres  # noqa: E402
from video_analysis.store import db  # noqa: E402

DIM = 384
TABLE = "bench_vectors"


def clustered_vectors(n: int, seed: int, centres: np.ndarray) -> np.ndarray:
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(centres), n)
    # Noise of norm ~0.7 around unit centres: neighbours are mostly, not only, from one cluster.
    vectors = centres[picks] + rng.normal(0, 0.035, (n, DIM)).astype(np.float32)
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def copy_rows(conn, vectors: np.ndarray, first_id: int = 0) -> float:
    from pgvector import Vector

    started = time.perf_counter()
    with conn.cursor().copy(f"COPY {TABLE} (id, embedding) FROM STDIN WITH (FORMAT BINARY)") as copy:
        copy.set_types(["int8", "vector"])
        for i, vector in enumerate(vectors):
            copy.write_row((first_id + i, Vector(vector)))
    conn.commit()
    return time.perf_counter() - started


def knn(conn, query: np.ndarray, k: int = 10) -> list[int]:
    literal = "[" + ",".join(f"{x:.7f}" for x in query) + "]"
    return [r[0] for r in conn.execute(
        f"SELECT id FROM {TABLE} ORDER BY embedding <=> %s::vector({DIM}) LIMIT %s", (literal, k)).fetchall()]


def bench_size(conn, n: int, queries: int, centres: np.ndarray) -> dict:
    conn.execute(f"DROP TABLE IF EXISTS {TABLE}")
    conn.execute(f"CREATE TABLE {TABLE} (id bigint, embedding vector({DIM}))")
    conn.commit()
    load_s = copy_rows(conn, clustered_vectors(n, 1, centres))
    conn.execute("SET maintenance_work_mem = '3GB'")
    conn.execute("SET max_parallel_maintenance_workers = 1")
    started = time.perf_counter()
    conn.execute(f"CREATE INDEX {TABLE}_hnsw ON {TABLE} USING hnsw (embedding vector_cosine_ops)")
    conn.commit()
    build_s = time.perf_counter() - started

    probes = clustered_vectors(queries, 2, centres)
    conn.execute("SET enable_indexscan = off")  # exact: sequential scan
    exact = [set(knn(conn, q)) for q in probes]
    conn.execute("RESET enable_indexscan")
    rows = {}
    for ef in (40, 100, 200):
        conn.execute(f"SET hnsw.ef_search = {ef}")
        latencies, recalls = [], []
        for probe, truth in zip(probes, exact, strict=True):
            started = time.perf_counter()
            found = knn(conn, probe)
            latencies.append((time.perf_counter() - started) * 1000)
            recalls.append(len(truth & set(found)) / 10)
        rows[ef] = (np.percentile(latencies, 50), np.percentile(latencies, 95), float(np.mean(recalls)))
    conn.execute("RESET hnsw.ef_search")

    extra = clustered_vectors(5000, 3, centres)
    indexed_s = copy_rows(conn, extra, first_id=n)
    conn.execute(f"DROP INDEX {TABLE}_hnsw")
    conn.commit()
    plain_s = copy_rows(conn, clustered_vectors(5000, 4, centres), first_id=n + 5000)
    conn.execute(f"DROP TABLE {TABLE}")
    conn.commit()
    return {"n": n, "load_s": load_s, "build_s": build_s, "search": rows,
            "insert_indexed_rows_s": 5000 / indexed_s, "insert_plain_rows_s": 5000 / plain_s}


def embedding_throughput(count: int = 1000) -> float:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from models import ModelRegistry
    from video_analysis.vision.embedders import TextEmbedder

    model = ModelRegistry(Path(tempfile.gettempdir()) / "reelgraph-bench-models", profile="offline").resolve(
        "text_embedder")
    embedder = TextEmbedder(model.path)
    texts = [f"person wearing a {c} top and black trousers, walking east, on screen for {i % 90} seconds"
             for i, c in zip(range(count), ["red", "blue", "gray", "black"] * count, strict=False)]
    embedder.embed(texts[:64])
    started = time.perf_counter()
    embedder.embed(texts)
    return count / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--queries", type=int, default=100)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    scratch = None
    dsn = os.environ.get("REELGRAPH_DATABASE_URL")
    if not dsn:
        scratch = Path(tempfile.mkdtemp(prefix="reelgraph-bench-"))
        server = EmbeddedPostgres(scratch / "postgres", Settings.from_env().postgres_shared_buffers)
        dsn = server.start()
    try:
        db.prepare(dsn)
        centres = np.random.default_rng(0).normal(size=(1000, DIM)).astype(np.float32)
        centres /= np.linalg.norm(centres, axis=1, keepdims=True)
        print(f"{DIM}-d clustered unit vectors, HNSW m=16 ef_construction=64 (pgvector defaults), cosine, "
              f"{args.queries} queries, top-10, {os.cpu_count()} CPUs\n")
        print("| vectors | COPY load s | HNSW build s | ef_search | p50 ms | p95 ms | recall@10 | "
              "insert into HNSW rows/s | insert without index rows/s |")
        print("|---|---|---|---|---|---|---|---|---|")
        with db.connect(dsn) as conn:
            for n in (int(s) for s in args.sizes.split(",")):
                r = bench_size(conn, n, args.queries, centres)
                for ef, (p50, p95, recall) in r["search"].items():
                    print(f"| {n:,} | {r['load_s']:.1f} | {r['build_s']:.1f} | {ef} | {p50:.1f} | {p95:.1f} | "
                          f"{recall:.3f} | {r['insert_indexed_rows_s']:.0f} | {r['insert_plain_rows_s']:.0f} |",
                          flush=True)
        print(f"\ntext embeddings (all-MiniLM-L6-v2, CPU, batch 64): {embedding_throughput():.0f} sentences/s")
    finally:
        if scratch:
            EmbeddedPostgres(scratch / "postgres").discard()
            shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
