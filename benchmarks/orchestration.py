"""Orchestration costs: upload-sensor ticks against large buckets, and `reelgraph process` vs plain calls.

    .venv/bin/python benchmarks/orchestration.py sensor [--objects 10000,100000]
    .venv/bin/python benchmarks/orchestration.py overhead [--video PATH]

`sensor` fills a local inbox with N small .mp4 objects and times real ticks (the same code the daemon
runs): the first ticks register new versions (bounded by REELGRAPH_OBJECTS_PER_TICK), later ticks only
list and skip what is known. `overhead` times one clip through every stage with `reelgraph process`
(Dagster in-process, resources, metadata, checks) against the same library calls in a plain loop.
"""

import argparse
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DEFAULT_VIDEO = ROOT.parent / "shared" / "data" / "videos" / "one-by-one-person-detection.mp4"


def scratch_home() -> Path:
    home = Path(tempfile.mkdtemp(prefix="reelgraph-bench-"))
    home.chmod(0o755)
    os.environ["REELGRAPH_HOME"] = str(home)
    os.environ["DAGSTER_HOME"] = str(home / "dagster")
    (home / "dagster").mkdir()
    return home


def bench_sensor(counts: list[int]) -> None:
    home = scratch_home()
    from dagster import DagsterInstance, SensorResult, build_sensor_context

    from orchestration.definitions import build_resources
    from orchestration.sensors import video_upload_sensor
    from video_analysis.postgres import EmbeddedPostgres

    os.environ["REELGRAPH_SETTLE_SECONDS"] = "0"
    per_tick = int(os.environ.setdefault("REELGRAPH_OBJECTS_PER_TICK", "5000"))
    print(f"local inbox, {per_tick} objects listed per tick at most, {os.cpu_count()} CPUs\n")
    print("| objects | ticks to register all | mean registering tick s | max registering tick s | "
          "steady tick s (nothing new) |")
    print("|---|---|---|---|---|")
    try:
        for count in counts:
            inbox = home / f"inbox-{count}"
            os.environ["REELGRAPH_INBOX"] = str(inbox)
            for i in range(count):
                folder = inbox / f"cameras/cam{i % 20:02d}"
                folder.mkdir(parents=True, exist_ok=True)
                stamp = f"2026-01-{1 + i // 4000 % 28:02d}T{i % 24:02d}-{i % 60:02d}-{i % 59:02d}"
                (folder / f"{stamp}-{i}.mp4").write_bytes(b"x")
            instance = DagsterInstance.get()
            cursor, registering, registered = None, [], 0
            while registered < count:
                started = time.perf_counter()
                context = build_sensor_context(instance=instance, cursor=cursor, resources=build_resources())
                result = video_upload_sensor(context)
                if isinstance(result, SensorResult):
                    for request in result.dynamic_partitions_requests:
                        instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
                    registered += len(result.run_requests)
                    cursor = result.cursor
                else:
                    cursor = context.cursor
                registering.append(time.perf_counter() - started)
            steady = []
            for _ in range(3):
                started = time.perf_counter()
                context = build_sensor_context(instance=instance, cursor=cursor, resources=build_resources())
                video_upload_sensor(context)
                cursor = context.cursor
                steady.append(time.perf_counter() - started)
            print(f"| {count:,} | {len(registering)} | {sum(registering) / len(registering):.2f} | "
                  f"{max(registering):.2f} | {sum(steady) / len(steady):.2f} |", flush=True)
            instance.wipe()
            from video_analysis import db

            with db.connect(db.resolve_dsn(None, home / "postgres"), autocommit=True) as conn:
                conn.execute("TRUNCATE videos CASCADE")
            shutil.rmtree(inbox)
    finally:
        EmbeddedPostgres(home / "postgres").stop()
        shutil.rmtree(home, ignore_errors=True)


def bench_overhead(video: Path) -> None:
    home = scratch_home()
    os.environ["REELGRAPH_MODEL_PROFILE"] = "offline"
    os.environ["HF_HUB_OFFLINE"] = "1"
    from video_analysis import db
    from video_analysis.postgres import EmbeddedPostgres

    db.prepare(EmbeddedPostgres(home / "postgres").start())  # both sides find the server running
    try:
        started = time.perf_counter()
        subprocess.run([str(Path(sys.executable).parent / "reelgraph"), "process", str(video)], check=True,
                       capture_output=True)
        through_dagster = time.perf_counter() - started
        started = time.perf_counter()
        subprocess.run([sys.executable, __file__, "plain", "--video", str(video)], check=True)
        plain = time.perf_counter() - started
    finally:
        EmbeddedPostgres(home / "postgres").stop()
        shutil.rmtree(home, ignore_errors=True)
    print(f"| clip | reelgraph process s | plain calls s | ratio |\n|---|---|---|---|\n"
          f"| {video.name} | {through_dagster:.1f} | {plain:.1f} | {through_dagster / plain:.2f} |")


def plain_pipeline(video: Path) -> None:
    """Every stage's library calls in sequence, with the same database writes, no Dagster."""
    from collections import Counter

    from models import ModelRegistry
    from video_analysis import catalog, db
    from video_analysis.incidents import detect_incidents, safety_score, summary_text
    from video_analysis.loaders import load_model
    from video_analysis.object_store import LocalFolderStore
    from video_analysis.probe import probe_video
    from video_analysis.results import (
        ModelStamp,
        load_tracks,
        replace_attributes,
        replace_detections,
        replace_embeddings,
        replace_summary,
        replace_tracks,
    )
    from video_analysis.settings import Settings
    from video_analysis.understanding import attributes_for, track_facts
    from video_analysis.vision import detect_video, sampled_frames, track_thumbnails, track_video

    settings = Settings.from_env()
    home = settings.home.ensure()
    dsn = db.resolve_dsn(None, home.pgdata)
    db.prepare(dsn)
    registry = ModelRegistry(home.root / "models")
    detector_model = registry.resolve("detector")
    detector = load_model(detector_model.backend, detector_model.path, detector_model.config_path)
    text_model = registry.resolve("text_embedder")
    embedder = load_model(text_model.backend, text_model.path)
    obj = LocalFolderStore(home.inbox).put(video, "plain-" + video.name)
    key = obj.partition_key
    with db.session(dsn) as conn:
        catalog.register(conn, obj)
        probe = probe_video(video)
        catalog.save_probe(conn, key, probe)
    found = detect_video(video, detector, fps=probe.fps, sample_fps=2.0)
    stamp = ModelStamp(detector_model.name, detector_model.version)
    with db.session(dsn) as conn:
        replace_detections(conn, key, found.detections, detector.class_names, stamp)
    tracks = track_video(found.detections, sampled_frames(probe.frame_count, found.step), probe.fps / found.step)
    with db.session(dsn) as conn:
        replace_tracks(conn, key, tracks, detector.class_names, track_thumbnails(video, tracks), stamp)
        stored = load_tracks(conn, key)
    attrs = attributes_for(stored, probe.width, probe.height, [])
    with db.session(dsn) as conn:
        replace_attributes(conn, key, attrs, profile="offline")
        replace_embeddings(conn, key, "track_text", ModelStamp(text_model.name, text_model.version),
                           [(a.track_id, a.description) for a in attrs], embedder.embed([a.description for a in attrs]))
        facts = track_facts(conn, key)
        incidents = detect_incidents(facts, set())
        text = summary_text(probe.duration_s, None, facts, incidents, safety_score(incidents), Counter())
        replace_summary(conn, key, safety_score=safety_score(incidents), incidents=[], summary=text, facts={},
                        generator="template")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("what", choices=["sensor", "overhead", "plain"])
    parser.add_argument("--objects", default="10000,100000")
    parser.add_argument("--video", type=Path, default=DEFAULT_VIDEO)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    if args.what == "sensor":
        bench_sensor([int(n) for n in args.objects.split(",")])
    elif args.what == "overhead":
        bench_overhead(args.video)
    else:
        plain_pipeline(args.video)


if __name__ == "__main__":
    main()
