"""Search through `reelgraph serve` at scale: warm latency p50/p95 with filters, recall@10, the CLI's cold time.

    .venv/bin/python benchmarks/service.py [--sizes 1000,100000] [--queries 100]

Synthetic tracks through the real schema (videos, tracks, track_attributes, embeddings) in a scratch state
folder: 20 tracks per video, 10 cameras, 30 days. Their descriptions are sentences in the pipeline's own
words (one per 50 tracks, at least 2,000), embedded with the real text model, and each track stores its
sentence's vector, as the embeddings stage stores a description's: tracks described alike share a vector.
With --noise S, each track's vector gets Gaussian noise of S per dimension instead: every track distinct,
its nearest neighbours set by the noise, the hardest case for a graph index. The distinct descriptions'
vectors and the model's indexes are built as the embeddings stage builds them. With --home, the state
folder is kept and a database loaded before with the one size asked for is reused. Then `reelgraph serve`
runs on that database, and every query goes through HTTP, fusion, filters and all, as a client sees it.

Recall@10 is the vector retriever's top 10 with the index against an exact scan, same filters, counted two
ways: by track (which 10 rows) and by distance (a returned track counts when it is as close as the exact
10th; ann-benchmarks' convention, so that among tracks with one shared vector any 10 are right).
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

COLOURS = ["black", "gray", "white", "red", "blue", "green", "brown", "yellow"]
MOTIONS = ["walking north", "walking south", "walking east", "walking west", "stationary", "running east"]
OBJECTS = ["car", "truck", "bicycle", "backpack", "suitcase", "bottle"]
QUERIES = [f"{c} {o} {m}" for c in COLOURS for o in ("person", "top", *OBJECTS) for m in MOTIONS]  # 384, distinct


def sentences(rng, count: int) -> list[str]:
    """``count`` distinct descriptions as the attributes stage writes them."""
    found = set()
    while len(found) < count:
        if rng.random() < 0.7:
            top, bottom = rng.choice(COLOURS, 2)
            found.add(f"person wearing a {top} top and {bottom} trousers, {rng.choice(MOTIONS)}, "
                      f"on screen for {rng.integers(2, 90)} seconds")
        else:
            found.add(f"{rng.choice(COLOURS)} {rng.choice(OBJECTS)}, {rng.choice(MOTIONS[4:] + ['moving east'])}, "
                      f"on screen for {rng.integers(2, 90)} seconds")
    return sorted(found)


def load(dsn: str, n_tracks: int, embedder, model_name: str, noise: float = 0.0) -> None:
    from pgvector import Vector

    from video_analysis.store import db
    from video_analysis.store.vector_index import ensure_index, sync_descriptions

    rng = np.random.default_rng(0)
    texts = sentences(rng, max(2000, n_tracks // 50))
    base = embedder.embed(texts)
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    with db.connect(dsn) as conn:
        conn.execute("TRUNCATE videos, description_vectors CASCADE")
        with conn.cursor().copy("COPY videos (partition_key, source, object_key, version, size_bytes, last_modified, "
                                "camera, recorded_at, status, duration_s) FROM STDIN") as copy:
            for v in range(n_tracks // 20):
                camera, recorded = f"cam{v % 10}", start + timedelta(minutes=10 * v * 30 * 24 * 6 / (n_tracks / 20))
                key = f"cameras/{camera}/{recorded:%Y-%m-%dT%H-%M-%S}.mp4"
                copy.write_row((f"{key}@v{v}", "s3", key, f"v{v}", 1, recorded, camera, recorded, "ready", 600.0))
        picks = rng.integers(0, len(texts), n_tracks)
        with conn.cursor().copy("COPY tracks (partition_key, track_id, class_name, first_t, last_t, frames_seen, "
                                "mean_confidence, max_step_px, path, best_frame, best_x1, best_y1, best_x2, best_y2, "
                                "model_name, model_version, best_t) FROM STDIN") as copy:
            for i, pick in enumerate(picks):
                first = float(rng.uniform(0, 560))
                copy.write_row((_key(i // 20, n_tracks, start), i % 20, _class(texts[pick]),
                                first, first + 30, 20, 0.8, 5.0, "[]", 0, 0, 0, 10, 10, "bench", "1", first))
        with conn.cursor().copy("COPY track_attributes (partition_key, track_id, class_name, apparent_height, "
                                "speed_px_s, speed_heights_s, motion, displacement_px, dwell_s, description, "
                                "profile) FROM STDIN") as copy:
            for i, pick in enumerate(picks):
                copy.write_row((_key(i // 20, n_tracks, start), i % 20, _class(texts[pick]),
                                0.3, 10.0, 0.5, "walking", 100.0, 30.0, texts[pick], "offline"))
        vectors = base[picks]
        if noise:
            vectors = vectors + rng.normal(0, noise, (n_tracks, base.shape[1])).astype(np.float32)
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        with conn.cursor().copy("COPY embeddings (partition_key, kind, track_id, content, model_name, model_version, "
                                "dim, embedding) FROM STDIN WITH (FORMAT BINARY)") as copy:
            copy.set_types(["text", "text", "int4", "text", "text", "text", "int4", "vector"])
            for i, pick in enumerate(picks):
                copy.write_row((_key(i // 20, n_tracks, start), "track_text", i % 20, texts[pick], model_name, "1",
                                int(base.shape[1]), Vector(vectors[i])))
        load_summaries(conn, n_tracks // 20, embedder, model_name, rng)
        sync_descriptions(conn)  # as the embeddings stage adds each new description's vector
        conn.commit()
        conn.execute("SET maintenance_work_mem = '2GB'")
        with conn.transaction():
            ensure_index(conn, model_name, int(base.shape[1]))
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE")  # as autovacuum leaves the tables after a bulk load


INCIDENT_DETAILS = {"loitering": "stayed within 1.2 body heights for {n} s", "running": "moved at {n} body heights/s",
                    "crowding": "{n} people at once", "zone_intrusion": "entered zone door for {n} s",
                    "unattended_object": "backpack left with nobody around for {n} s"}


def load_summaries(conn, n_videos: int, embedder, model_name: str, rng) -> None:
    """A summary per video, as the summaries stage writes it (its incidents, text and text vector): one
    video in five with an incident, so the events' retrievers search as many rows as a real store's."""
    from pgvector import Vector

    from video_analysis.events.incident_record import Incident, incidents_json
    from video_analysis.events.incident_summary import summary_text
    from video_analysis.events.track_facts import TrackFacts

    types = sorted(INCIDENT_DETAILS)
    texts, rows = {}, []
    for v in range(n_videos):
        incidents = []
        if rng.random() < 0.2:
            kind, start = types[rng.integers(len(types))], float(rng.integers(0, 500))
            incidents.append(Incident(kind, start, start + 40, [int(rng.integers(20))],
                                      INCIDENT_DETAILS[kind].format(n=int(rng.integers(5, 60)))))
        tracks = [TrackFacts(i, "person" if i < 14 else "car", 0.0, 30.0, [], 100.0)
                  for i in range(int(rng.integers(1, 20)))]
        score = 100 - 10 * len(incidents)
        text = summary_text(600.0, f"cam{v % 10}", tracks, incidents, score)
        texts.setdefault(text, None)
        rows.append((v, incidents, text, score))
    distinct = list(texts)
    vectors = dict(zip(distinct, embedder.embed(distinct), strict=True))
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    n_tracks = n_videos * 20
    with conn.cursor().copy("COPY summaries (partition_key, safety_score, incident_count, incidents, summary, facts, "
                            "generator) FROM STDIN") as copy:
        for v, incidents, text, score in rows:
            copy.write_row((_key(v, n_tracks, start), score, len(incidents), json.dumps(incidents_json(incidents)),
                            text, "{}", "template"))
    with conn.cursor().copy("COPY embeddings (partition_key, kind, track_id, content, model_name, model_version, "
                            "dim, embedding) FROM STDIN WITH (FORMAT BINARY)") as copy:
        copy.set_types(["text", "text", "int4", "text", "text", "text", "int4", "vector"])
        for v, _, text, _ in rows:
            vector = vectors[text]
            copy.write_row((_key(v, n_tracks, start), "summary_text", None, text, model_name, "1",
                            int(vector.shape[0]), Vector(vector)))


def _class(text: str) -> str:
    return "person" if text.startswith("person") else text.split(",")[0].split(" ")[1]


def _key(v: int, n_tracks: int, start: datetime) -> str:
    recorded = start + timedelta(minutes=10 * v * 30 * 24 * 6 / (n_tracks / 20))
    return f"cameras/cam{v % 10}/{recorded:%Y-%m-%dT%H-%M-%S}.mp4@v{v}"


def recall(dsn: str, embedder, model_name: str, queries: list[tuple[str, dict]]) -> tuple[float, float]:
    """(by track, by distance): mean recall@10 of the vector retriever over ``queries``, on the path search
    takes (distinct descriptions' graph, every track's graph, or the exact scan of few filtered tracks),
    against a full exact scan."""
    from video_analysis.search.filters import SearchFilters
    from video_analysis.search.filters import search_transaction as _search_transaction
    from video_analysis.search.filters import vector_literal as _vector_literal
    from video_analysis.search.retrievers import nearest_tracks, vector_statement
    from video_analysis.store import db

    by_track, by_distance = [], []
    with db.connect(dsn, autocommit=True) as conn:
        for text, filters in queries:
            vector, typed = embedder.embed([text])[0], SearchFilters(**filters)
            params = {**typed.__dict__, "query": text, "pool": 10, "vector": _vector_literal(vector),
                      "max_distance": 2.0}
            with _search_transaction(conn):
                found = [(r["partition_key"], r["track_id"], r["distance"])
                         for r in nearest_tracks(conn, typed, params, "track_text", model_name, vector.shape[0])]
            with conn.transaction():
                conn.execute("SET LOCAL enable_indexscan = off")  # no graph: every distance computed
                exact = conn.execute(vector_statement(typed, "track_text", model_name, vector.shape[0]),
                                     params).fetchall()
            if not exact:
                continue
            tenth = max(r[2] for r in exact)
            by_track.append(len({tuple(r[:2]) for r in found} & {tuple(r[:2]) for r in exact}) / len(exact))
            by_distance.append(sum(1 for r in found if r[2] <= tenth * 1.001 + 1e-6) / len(exact))
    return float(np.mean(by_track)), float(np.mean(by_distance))


def prewarm(dsn: str) -> float:
    """Reads every table and index (with their TOAST) into the machine's memory, and the smallest into
    PostgreSQL's cache while they fit in four fifths of it: as on a server that has been answering searches
    for a while, or restarted with autoprewarm (the embedded server's default). The latency measured is then
    warm latency, not that of reads from disk. Seconds taken."""
    from video_analysis.store import db

    started = time.perf_counter()
    with db.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_prewarm")
        relations = conn.execute("""
            SELECT r.oid, pg_relation_size(r.oid) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            JOIN pg_class r ON r.oid IN (c.oid, c.reltoastrelid)
            WHERE n.nspname = 'public' AND c.relkind IN ('r', 'i') ORDER BY 2""").fetchall()
        room = 0.8 * conn.execute("SELECT setting::bigint * 8192 FROM pg_settings "
                                  "WHERE name = 'shared_buffers'").fetchone()[0]
        for oid, _size in relations:
            conn.execute("SELECT pg_prewarm(%s, 'read')", (oid,))
        for oid, size in relations:
            if size > room:
                break
            conn.execute("SELECT pg_prewarm(%s, 'buffer')", (oid,))
            room -= size
    return time.perf_counter() - started


def timed_status(url: str) -> tuple[int, float]:
    """(HTTP status, milliseconds) of one GET, whatever the status."""
    import urllib.error

    started = time.perf_counter()
    try:
        with urllib.request.urlopen(url, timeout=120) as response:
            response.read()
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    return status, (time.perf_counter() - started) * 1000


def timed_get(url: str) -> float:
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=60) as response:
        json.load(response)
    return (time.perf_counter() - started) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1000,100000")
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--noise", type=float, default=0.0, help="per-dimension noise on each track's vector")
    parser.add_argument("--home", type=Path, help="state folder to keep, whose database is reused when it holds "
                        "the one size asked for (a 1M load takes ~15 min)")
    args = parser.parse_args()
    home = args.home or Path(tempfile.mkdtemp(prefix="reelgraph-bench-service-"))
    home.mkdir(parents=True, exist_ok=True)
    loaded = home / "loaded"
    os.environ.update({"REELGRAPH_HOME": str(home), "DAGSTER_HOME": str(home / "dagster"),
                       "REELGRAPH_MODEL_PROFILE": "offline"})
    from configuration.settings import Settings
    from models import ModelRegistry
    from video_analysis.runtime.embedded_postgres import EmbeddedPostgres
    from video_analysis.store import db
    from video_analysis.vision.embedders import TextEmbedder

    server = EmbeddedPostgres(home / "postgres", Settings.from_env().postgres_shared_buffers)
    dsn = server.start()
    db.prepare(dsn)
    model = ModelRegistry(home / "models", profile="offline").resolve("text_embedder")
    embedder = TextEmbedder(model.path)
    reelgraph = str(Path(sys.executable).parent / "reelgraph")
    port = 8765
    print(f"{os.cpu_count()} CPUs; `reelgraph serve` on 127.0.0.1:{port}; {args.queries} queries per row, "
          "one at a time, after 5 warm-up queries, the database's files read into memory first "
          "(pg_prewarm)\n")
    print(f"noise {args.noise}\n\n| tracks | load + index s | filters | p50 ms | p95 ms | recall@10 by track | "
          "recall@10 by distance |\n|---|---|---|---|---|---|---|")
    try:
        for n in (int(s) for s in args.sizes.split(",")):
            started = time.perf_counter()
            if not (loaded.exists() and loaded.read_text() == f"{n} {args.noise}"):
                loaded.unlink(missing_ok=True)
                server.discard()  # each size in a fresh database, its HNSW index built once over the loaded rows
                dsn = server.start()
                db.prepare(dsn)
                load(dsn, n, embedder, model.name, args.noise)
                loaded.write_text(f"{n} {args.noise}")
            dsn = server.start()
            db.prepare(dsn)
            load_s = time.perf_counter() - started
            print(f"<!-- {n:,} tracks: database read into memory in {prewarm(dsn):.0f} s -->", flush=True)
            log = open(home / f"serve-{n}.log", "w+")
            service = subprocess.Popen([reelgraph, "serve", "--port", str(port)], stdout=log, stderr=subprocess.STDOUT)
            url = f"http://127.0.0.1:{port}"
            for _ in range(600):
                if service.poll() is not None:
                    log.seek(0)
                    raise SystemExit(f"`reelgraph serve` exited with {service.returncode}:\n{log.read()[-3000:]}")
                try:
                    timed_get(f"{url}/api/health")
                    break
                except OSError:
                    time.sleep(0.2)
            cases = {"none": {}, "camera": {"camera": "cam3"},
                     "camera + week": {"camera": "cam3", "since": "2026-01-08T00:00:00+00:00",
                                       "until": "2026-01-15T00:00:00+00:00"}}
            try:
                order = np.random.default_rng(n).permutation(len(QUERIES))
                for case, (name, filters) in enumerate(cases.items()):
                    # Distinct queries, none seen before: each pays for its own text embedding.
                    for text in (f"warm-up {case} {i}" for i in range(5)):
                        timed_get(f"{url}/api/search?" + urllib.parse.urlencode({"q": text, **filters}))
                    queries = [QUERIES[i] for i in order[case * args.queries:(case + 1) * args.queries]]
                    latencies = [timed_get(f"{url}/api/search?" + urllib.parse.urlencode({"q": text, **filters}))
                                 for text in queries]
                    typed = {k: (datetime.fromisoformat(v) if k in ("since", "until") else v)
                             for k, v in filters.items()}
                    by_track, by_distance = recall(dsn, embedder, model.name, [(text, typed) for text in queries[:40]])
                    print(f"| {n:,} | {load_s:.0f} | {name} | {np.percentile(latencies, 50):.1f} | "
                          f"{np.percentile(latencies, 95):.1f} | {by_track:.3f} | {by_distance:.3f} |", flush=True)
                cold = []
                for local in (False, True):
                    command = [reelgraph, "search", "person in a red top", "--json", *(["--local"] if local else [])]
                    started = time.perf_counter()
                    subprocess.run(command, check=True, capture_output=True,
                                   env={**os.environ, "REELGRAPH_SERVICE_URL": url})
                    cold.append(time.perf_counter() - started)
                print(f"\n`reelgraph search` cold, {n:,} tracks: {cold[0]:.1f} s through the service, "
                      f"{cold[1]:.1f} s alone (--local, loading the text model)\n", flush=True)
                # Queries that exclude words and match nothing to rank by: full scans, bounded by the
                # service's statement timeout (REELGRAPH_SERVICE_STATEMENT_TIMEOUT_MS).
                print("| tracks | adversarial query | HTTP status | ms |\n|---|---|---|---|")
                for text in ("-zzz", "-a -the -person", "zzz -zzz", "%" * 50):
                    status, ms = timed_status(f"{url}/api/search?" + urllib.parse.urlencode({"q": text}))
                    print(f"| {n:,} | `{text}` | {status} | {ms:.0f} |", flush=True)
                print()
            finally:
                service.terminate()
                service.wait(30)
    finally:
        if args.home:
            server.stop()
        else:
            server.discard()
            shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
