"""Counting questions: exact answers against hand counts on real clips, and latency over a large synthetic store.

    .venv/bin/python benchmarks/answers.py [--labels FILE] [--sizes 100000,1000000] [--repeat 20]
                                          [--skip-clips] [--skip-scale]

Clips: the segments of ``benchmarks/answers_labels.yaml`` (clips of ../shared placed as camera segments at
known times) go through ``reelgraph process`` in a fresh state folder with the file's zones and lines; then
each question is answered (``video_analysis.search.questions.counted``, what ``/api/ask``, ``reelgraph ask``
and the page call) and its stated number compared with the hand count. Every citation must play a moment
when a counted person is on screen (hand-timed, 2 s either side). Last lines: ``exact=<n>/<m>``,
``citations_on_screen=<n>/<m>``.

Scale: a synthetic store of N tracks (8 cameras, 10-minute segments back from today, 29 tracks a segment,
4 in 5 of them people, with crossings of a line and visits to a zone) built inside PostgreSQL, then each
question answered ``--repeat`` times: p50 / p95 ms per question and over all. Target: p95 under 200 ms at 1M.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED = REPO.parent / "shared" / "data"

log = logging.getLogger("answers")

SCALE_QUESTIONS = [
    "How many people came in through the door today?",
    "How many people went out through the door yesterday afternoon?",
    "How many people on camera cam3 yesterday?",
    "How many people between 14:00 and 15:00?",
    "How many people in the last week?",
    "How many people?",
    "How many cars today?",
    "When was it busiest today?",
    "When was camera cam5 busiest last week?",
    "How long did people stay at the counter yesterday?",
    "How long did people stay at the counter?",
    "How many people visited the counter in the last hour?",
    "How many people in red today?",
    "Who stayed longest at the counter yesterday?",
    "Which camera saw the most people last week?",
    "How many people came in through the back gate?",
]
CAMERAS, SEGMENT_S, TRACKS_PER_SEGMENT = 8, 600, 29


# ---- clips against hand counts --------------------------------------------------------------------------------

def process_segments(spec: dict, home: Path) -> dict[str, str]:
    """Each labelled segment through ``reelgraph process``; {partition_key: clip file name}."""
    os.environ["REELGRAPH_HOME"] = str(home)
    os.environ.pop("REELGRAPH_DATABASE_URL", None)  # the state folder's own embedded server, never a real store
    zones = home / "zones.yaml"
    zones.parent.mkdir(parents=True, exist_ok=True)
    zones.write_text(spec["zones"])
    os.environ["REELGRAPH_ZONES"] = str(zones)
    from orchestration.cli import main as reelgraph

    staged = home / "clips"
    for segment in spec["segments"]:
        clip = SHARED / segment["clip"]
        if not clip.is_file():
            raise SystemExit(f"{clip} is missing (benchmarks/answers_labels.yaml names clips of ../shared/data)")
        link = staged / segment["camera"] / f"{segment['at']}.mp4"
        link.parent.mkdir(parents=True, exist_ok=True)
        link.unlink(missing_ok=True)
        link.symlink_to(clip.resolve())
        if reelgraph(["process", "--prefix", f"cameras/{segment['camera']}/", str(link)]) != 0:
            raise SystemExit(f"reelgraph process failed on {clip}")
    from resources import PostgresResource

    clips = {f"cameras/{s['camera']}/{s['at']}.mp4": Path(s["clip"]).name for s in spec["segments"]}
    with PostgresResource().session() as conn:
        return {key: clips[obj] for key, obj in conn.execute("SELECT partition_key, object_key FROM videos")}


def stated(answer: str, label: dict) -> str | float | None:
    """What the answer states, in the label's terms: a count, the longest stay's seconds, an hour, or refused."""
    if "refused" in label:
        return "refused" if answer.startswith("Cannot answer that from the footage") else answer
    if "hour" in label:
        found = re.search(r"(\d\d:00)-\d\d:00", answer)
        return found.group(1) if found else None
    if "camera" in label:
        found = re.match(r"Camera (\S+) saw the most", answer)
        return found.group(1) if found else None
    if "seconds" in label:
        found = re.search(r"(?:longest|was) (\d+(?:\.\d+)?) s", answer)
        return float(found.group(1)) if found else (0.0 if answer.startswith("Nobody") else None)
    found = re.search(r"^(?:About |No )?(\d+)?", answer)
    return int(found.group(1)) if found and found.group(1) else (0 if re.match(r"^(No |Nobody)", answer) else None)


def exact(value, label: dict) -> bool:
    if "refused" in label:
        return value == "refused"
    if "hour" in label:
        return value == label["hour"]
    if "camera" in label:
        return value == label["camera"]
    if "seconds" in label:
        return value is not None and abs(value - label["seconds"]) <= label.get("tolerance", 1.0)
    return value == label["count"]


def bench_clips(labels: Path, home: Path | None = None) -> None:
    from resources import PostgresResource
    from video_analysis.search.questions import counted

    spec = yaml.safe_load(labels.read_text())
    now = datetime.fromisoformat(str(spec["now"]))
    with tempfile.TemporaryDirectory(prefix="reelgraph-answers-") as scratch:
        started = time.perf_counter()
        clip_of = process_segments(spec, home or Path(scratch))
        print(f"{len(spec['segments'])} segments processed in {time.perf_counter() - started:.0f} s; "
              f"now = {now.isoformat()}\n")
        print("| question | hand count | answer states | exact | citations on screen | ms |")
        print("|---|---|---|---|---|---|")
        right = cited_right = cited = 0
        with PostgresResource().session() as conn:
            for label in spec["questions"]:
                began = time.perf_counter()
                answer = counted(conn, label["q"], now=now)
                ms = (time.perf_counter() - began) * 1000
                text = answer.text if answer else "(not read as a counting question)"
                value = stated(text, label)
                ok = exact(value, label)
                right += ok
                on = [any(a - 2 <= c.start_s and c.end_s <= b + 2
                          for a, b in spec["on_screen"][clip_of[c.partition_key]]) for c in answer.citations] \
                    if answer else []
                cited += len(on)
                cited_right += sum(on)
                want = next((label[k] for k in ("count", "seconds", "hour", "camera") if k in label), "refused")
                print(f"| {label['q']} | {want} | {value} | {'yes' if ok else 'NO'} | {sum(on)}/{len(on)} | "
                      f"{ms:.0f} |")
                if not ok:
                    print(f"|   answered: {text[:200]} | | | | | |")
        print(f"\nexact={right}/{len(spec['questions'])}")
        print(f"citations_on_screen={cited_right}/{cited}")


# ---- latency at scale -----------------------------------------------------------------------------------------

def build_store(conn, tracks: int, end: datetime) -> dict:
    """N synthetic tracks and their facts, generated inside PostgreSQL (seeded, so every run builds the same)."""
    segments = max(1, tracks // TRACKS_PER_SEGMENT)
    started = time.perf_counter()
    params = {"segments": segments, "cameras": CAMERAS, "per": TRACKS_PER_SEGMENT, "end": end, "seg_s": SEGMENT_S}
    conn.execute("SELECT setseed(0.42)")
    conn.execute(
        """INSERT INTO videos (partition_key, source, object_key, version, size_bytes, last_modified, camera,
                               recorded_at, status, duration_s)
           SELECT 'synthetic/' || i, 'local', format('cameras/cam%%s/%%s.mp4', i %% %(cameras)s, i), 'v1', 1, at,
                  'cam' || i %% %(cameras)s, at, 'ready', %(seg_s)s
           FROM generate_series(0, %(segments)s - 1) i,
                LATERAL (SELECT %(end)s::timestamptz - make_interval(secs => (i / %(cameras)s + 1) * %(seg_s)s) AS at) t
        """, params)
    conn.execute(
        """INSERT INTO tracks (partition_key, track_id, class_name, first_t, last_t, frames_seen, mean_confidence,
                               max_step_px, path, best_frame, best_x1, best_y1, best_x2, best_y2, model_name,
                               model_version)
           SELECT 'synthetic/' || i, k, CASE WHEN (k * 7919 + i) %% 5 <> 0 THEN 'person' ELSE 'car' END, s, s + d,
                  10, 0.7, 5, jsonb_build_array(jsonb_build_array(s, x, 300, 20, 80),
                                       jsonb_build_array(s + d, x + 200, 300, 20, 80)),
                  0, x, 220, x + 40, 300, 'synthetic', '1'
           FROM (SELECT i, k, random() * (%(seg_s)s - 70) AS s, 5 + random() * 60 AS d, random() * 600 AS x
                 FROM generate_series(0, %(segments)s - 1) i, generate_series(1, %(per)s) k) p
        """, params)
    conn.execute(
        """INSERT INTO track_attributes (partition_key, track_id, class_name, upper_color, lower_color,
                                         apparent_height, speed_px_s, speed_heights_s, motion, displacement_px,
                                         dwell_s, description, profile)
           SELECT partition_key, track_id, class_name,
                  (ARRAY['red', 'blue', 'black', 'white'])[1 + (random() * 3)::int],
                  (ARRAY['black', 'blue', 'grey'])[1 + (random() * 2)::int], 80, 10, 0.1, 'walking', 200,
                  last_t - first_t, 'a synthetic track', 'synthetic'
           FROM tracks WHERE partition_key LIKE 'synthetic/%%'
        """)
    conn.execute(
        """INSERT INTO counting_events (partition_key, kind, name, track_id, class_name, start_t, end_t, direction)
           SELECT partition_key, 'crossing', 'door', track_id, class_name, first_t + 2, first_t + 2,
                  CASE WHEN random() < 0.6 THEN 'in' ELSE 'out' END
           FROM tracks WHERE partition_key LIKE 'synthetic/%%' AND random() < 0.5
           UNION ALL
           SELECT partition_key, 'visit', 'counter', track_id, class_name, first_t + 1, last_t - 1, NULL
           FROM tracks WHERE partition_key LIKE 'synthetic/%%' AND class_name = 'person' AND random() < 0.3
        """)
    from video_analysis.store.counting import HOURS, TRACK_ROWS

    conn.execute(TRACK_ROWS.format(where="t.partition_key LIKE 'synthetic/%'"))
    conn.execute(HOURS.format(where="v.partition_key LIKE 'synthetic/%'"))
    conn.execute("ANALYZE")
    conn.commit()
    days = segments / CAMERAS * SEGMENT_S / 86400
    return {"segments": segments, "days": days, "load_s": time.perf_counter() - started}


def bench_scale(sizes: list[int], repeat: int, answerer: str) -> None:
    import importlib

    from configuration.settings import Settings
    from video_analysis.runtime.embedded_postgres import EmbeddedPostgres
    from video_analysis.store import db

    counted = importlib.import_module(answerer).counted

    # always a scratch server of its own: the store is emptied for each size
    scratch = Path(tempfile.mkdtemp(prefix="reelgraph-answers-"))
    dsn = EmbeddedPostgres(scratch / "postgres", Settings.from_env().postgres_shared_buffers).start()
    now = datetime.now(timezone.utc).replace(hour=18, minute=0, second=0, microsecond=0)
    try:
        for n in sizes:
            db.prepare(dsn)
            with db.connect(dsn) as conn:
                conn.execute("TRUNCATE videos CASCADE")
                conn.commit()
                built = build_store(conn, n, now)
            print(f"\n{n:,} tracks: {built['segments']:,} segments of {CAMERAS} cameras over {built['days']:.1f} days, "
                  f"built in {built['load_s']:.0f} s; each question {repeat} times\n")
            print("| question | answer (start) | p50 ms | p95 ms |")
            print("|---|---|---|---|")
            every = []
            with db.connect(dsn, autocommit=True) as conn:
                for question in SCALE_QUESTIONS:
                    times, text = [], ""
                    for _ in range(repeat):
                        began = time.perf_counter()
                        answer = counted(conn, question, now=now)
                        times.append((time.perf_counter() - began) * 1000)
                        text = answer.text if answer else "(not counted)"
                    every += times
                    print(f"| {question} | {text[:70]} | {statistics.median(times):.1f} | {_p95(times):.1f} |",
                          flush=True)
            print(f"| all questions | | {statistics.median(every):.1f} | {_p95(every):.1f} |")
    finally:
        EmbeddedPostgres(scratch / "postgres").discard()
        shutil.rmtree(scratch, ignore_errors=True)


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--labels", type=Path, default=REPO / "benchmarks" / "answers_labels.yaml")
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--skip-clips", action="store_true")
    parser.add_argument("--skip-scale", action="store_true")
    parser.add_argument("--answerer", default="video_analysis.search.questions",
                        help="module whose counted() answers (another checkout's, to compare)")
    parser.add_argument("--home", type=Path, help="state folder for the clips (default: a fresh temporary one)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if not args.skip_scale:
        bench_scale([int(s) for s in args.sizes.split(",")], args.repeat, args.answerer)
    if not args.skip_clips:
        print()
        bench_clips(args.labels, args.home)


if __name__ == "__main__":
    main()
