"""Retention over a store of synthetic segments: the time and the I/O of one sweep, and of the next one.

    .venv/bin/python benchmarks/retention.py [--segments 10000] [--segment-kib 256]

N segments (20 cameras, spread evenly over the last 70 days, each `--segment-kib` of bytes) are written to a local
inbox, catalogued in the embedded PostgreSQL, and one in five gets a summary with an incident. The policy keeps
footage 14 days (30 with an incident), moves it to the cold folder (same disk) after 3 days, and erases videos
older than 60 days with their facts. The first sweep does all of that; the second, the same day, finds nothing.
I/O is this process's (/proc/self/io: bytes it read and wrote through the kernel, the cold copies) plus the
database's share is not counted: its rows are small beside the footage.
"""

import argparse
import os
import shutil
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

POLICY = {"retention": {"default": {"retain_days": 14, "retain_incident_days": 30, "retain_facts_days": 60,
                                    "cold_after_days": 3}}}
CAMERAS = 20
SPAN = timedelta(days=70)  # the store reaches this far back, whatever N: every rule of the policy applies


def process_io() -> tuple[int, int]:
    fields = dict(line.split(": ") for line in Path("/proc/self/io").read_text().splitlines())
    return int(fields["rchar"]), int(fields["wchar"])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--segments", type=int, default=10_000)
    parser.add_argument("--segment-kib", type=int, default=256)
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="reelgraph-bench-"))
    os.environ["REELGRAPH_HOME"] = str(home)
    from psycopg.types.json import Jsonb

    from video_analysis.runtime.embedded_postgres import EmbeddedPostgres
    from video_analysis.runtime.local_store import LocalFolderStore
    from video_analysis.store import catalog, db
    from video_analysis.store.retention_apply import apply_retention
    from video_analysis.store.retention_plan import plan_retention
    from video_analysis.store.retention_policy import parse_retention

    dsn = db.resolve_dsn(None, home / "postgres")
    db.prepare(dsn)
    store = LocalFolderStore(home / "inbox", home / "cold")
    payload = os.urandom(args.segment_kib * 1024)
    now = datetime.now(timezone.utc)
    step = SPAN / max(1, args.segments // CAMERAS)
    try:
        started = time.perf_counter()
        with db.connect(dsn, autocommit=True) as conn:
            for n in range(args.segments):
                camera, slot = f"cam{n % CAMERAS:02d}", n // CAMERAS
                at = now - step * slot - timedelta(minutes=1)
                folder = store.root / "cameras" / camera
                folder.mkdir(parents=True, exist_ok=True)
                (folder / f"{at:%Y-%m-%dT%H-%M-%S}.mp4").write_bytes(payload)
            with conn.transaction():
                for obj in store.list_page(None, args.segments + 1).objects:
                    catalog.register(conn, obj)
                conn.execute("UPDATE videos SET status = 'ready', duration_s = 600")
                conn.execute("""INSERT INTO summaries (partition_key, safety_score, incident_count, incidents, summary,
                                                       facts, generator)
                                SELECT partition_key, CASE WHEN n %% 5 = 0 THEN 70 ELSE 100 END,
                                       CASE WHEN n %% 5 = 0 THEN 1 ELSE 0 END,
                                       CASE WHEN n %% 5 = 0 THEN %s ELSE '[]'::jsonb END, 'synthetic', '{}', 'bench'
                                  FROM (SELECT partition_key, row_number() OVER (ORDER BY partition_key) AS n
                                          FROM videos) v""", (Jsonb([{"type": "loitering"}]),))
            setup_s = time.perf_counter() - started
            config = parse_retention(POLICY)
            oldest_days = SPAN / timedelta(days=1)
            print(f"{args.segments:,} segments of {args.segment_kib} KiB, {CAMERAS} cameras, back {oldest_days:.0f} "
                  f"days (set up in {setup_s:.0f} s); {os.cpu_count()} CPUs\n")
            print("| sweep | plan s | apply s | to cold | expired | erased | read MiB | written MiB | freed MiB |")
            print("|---|---|---|---|---|---|---|---|---|")
            for name in ("first", "second (same day)"):
                read0, written0 = process_io()
                t0 = time.perf_counter()
                plan = plan_retention(conn, config, now)
                t1 = time.perf_counter()
                result = apply_retention(conn, store, plan)
                t2 = time.perf_counter()
                read1, written1 = process_io()
                print(f"| {name} | {t1 - t0:.2f} | {t2 - t1:.2f} | {result.moved_cold:,} | {result.expired:,} | "
                      f"{result.erased:,} | {(read1 - read0) / 2**20:.0f} | {(written1 - written0) / 2**20:.0f} | "
                      f"{result.freed_bytes / 2**20:.0f} |", flush=True)
    finally:
        EmbeddedPostgres(home / "postgres").discard()
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
