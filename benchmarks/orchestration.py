"""Orchestration costs: upload-sensor ticks against large buckets, and `reelgraph process` vs plain calls.

    .venv/bin/python benchmarks/orchestration.py sensor [--objects 10000,100000]
    .venv/bin/python benchmarks/orchestration.py overhead [--video PATH]
    .venv/bin/python benchmarks/orchestration.py batches [--videos 10] [--seconds 20]

`sensor` fills a local inbox with N small .mp4 objects and times real ticks (the same code the daemon
runs): the first ticks register new versions (bounded by REELGRAPH_OBJECTS_PER_TICK), later ticks only
list and skip what is known. `overhead` times one clip through every stage with `reelgraph process`
(Dagster in-process, resources, metadata, checks) against the same library calls in a plain loop.
`batches` processes N clips the way the upload sensor does (one run, so one process and one model load,
per video) and the way a backfill does (one run for the whole batch), each run in a fresh process as the
run launcher starts it.
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
    os.environ["REELGRAPH_HOME"] = str(home)
    os.environ["DAGSTER_HOME"] = str(home / "dagster")
    (home / "dagster").mkdir()
    return home


def bench_sensor(counts: list[int]) -> None:
    home = scratch_home()
    from dagster import DagsterInstance, SensorResult, build_sensor_context

    from orchestration.definitions import build_resources
    from orchestration.sensors import video_upload_sensor
    from video_analysis.runtime.embedded_postgres import EmbeddedPostgres

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
            from video_analysis.store import db

            with db.connect(db.resolve_dsn(None, home / "postgres"), autocommit=True) as conn:
                conn.execute("TRUNCATE videos, descriptions, description_vectors CASCADE")
            shutil.rmtree(inbox)
    finally:
        EmbeddedPostgres(home / "postgres").discard()
        shutil.rmtree(home, ignore_errors=True)


def bench_overhead(video: Path) -> None:
    home = scratch_home()
    os.environ["REELGRAPH_MODEL_PROFILE"] = "offline"
    os.environ["HF_HUB_OFFLINE"] = "1"
    from configuration.settings import Settings
    from video_analysis.runtime.embedded_postgres import EmbeddedPostgres
    from video_analysis.store import db

    # both sides find the server running
    db.prepare(EmbeddedPostgres(home / "postgres", Settings.from_env().postgres_shared_buffers).start())
    try:
        started = time.perf_counter()
        subprocess.run([str(Path(sys.executable).parent / "reelgraph"), "process", str(video)], check=True,
                       capture_output=True)
        through_dagster = time.perf_counter() - started
        started = time.perf_counter()
        subprocess.run([sys.executable, __file__, "plain", "--video", str(video)], check=True)
        plain = time.perf_counter() - started
    finally:
        EmbeddedPostgres(home / "postgres").discard()
        shutil.rmtree(home, ignore_errors=True)
    print(f"| clip | reelgraph process s | plain calls s | ratio |\n|---|---|---|---|\n"
          f"| {video.name} | {through_dagster:.1f} | {plain:.1f} | {through_dagster / plain:.2f} |")


def plain_pipeline(video: Path) -> None:
    """Every stage's library function in sequence (the same ones the assets call), no Dagster."""
    from configuration.settings import Settings
    from models import ModelRegistry
    from video_analysis.events.incident_rules import IncidentRules
    from video_analysis.runtime.local_store import LocalFolderStore
    from video_analysis.stages import attributes as attributes_stage
    from video_analysis.stages import detections as detections_stage
    from video_analysis.stages import embeddings as embeddings_stage
    from video_analysis.stages import raw_video as raw_video_stage
    from video_analysis.stages import summaries as summaries_stage
    from video_analysis.stages import tracks as tracks_stage
    from video_analysis.store import catalog, db
    from video_analysis.vision.loaders import load_model

    settings = Settings.from_env()
    home = settings.home.ensure()
    dsn = db.resolve_dsn(None, home.pgdata)
    db.prepare(dsn)
    database = db.Database(dsn)
    registry = ModelRegistry(home.root / "models")
    detector_model = registry.resolve("detector")
    detector = load_model(detector_model.backend, detector_model.path, detector_model.config_path)
    text_model = registry.resolve("text_embedder")
    embedder = load_model(text_model.backend, text_model.path)
    store = LocalFolderStore(home.inbox)
    obj = store.put(video, "plain-" + video.name)
    key = obj.partition_key
    with database.session() as conn:
        catalog.register(conn, obj)
    raw_video_stage.run(database, key, store)
    detections_stage.run(database, key, store, detector, detector_model.stamp, sample_fps=2.0)
    tracks_stage.run(database, key, store)
    attributes_stage.run(database, key, store, profile=registry.requested_profile)
    embeddings_stage.run(database, key, embedder, text_model.stamp)
    summaries_stage.run(database, key, store, embedder, text_model.stamp, rules=IncidentRules())


def cut_clip(source: Path, target: Path, seconds: float) -> None:
    import cv2

    capture = cv2.VideoCapture(str(source))
    fps = capture.get(cv2.CAP_PROP_FPS)
    writer = None
    for _ in range(int(fps * seconds)):
        ok, frame = capture.read()
        if not ok:
            break
        if writer is None:
            writer = cv2.VideoWriter(str(target), cv2.VideoWriter_fourcc(*"mp4v"), fps, frame.shape[1::-1])
        writer.write(frame)
    writer.release()
    capture.release()


def run_range(first: str, last: str) -> None:
    """One run over a range of partitions, in this process (what a launched run does)."""
    from dagster import DagsterInstance, materialize

    from assets import VIDEO_STAGES
    from orchestration.definitions import build_resources

    result = materialize(VIDEO_STAGES, instance=DagsterInstance.get(), resources=build_resources(),
                         tags={"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last})
    assert result.success


def bench_batches(video: Path, count: int, seconds: float) -> None:
    home = scratch_home()
    os.environ.update({"REELGRAPH_MODEL_PROFILE": "offline", "HF_HUB_OFFLINE": "1", "REELGRAPH_SETTLE_SECONDS": "0",
                       "REELGRAPH_INBOX": str(home / "inbox")})
    from dagster import DagsterInstance

    from configuration.settings import Settings
    from orchestration.backfill import register_objects
    from resources import ObjectStoreResource, PostgresResource
    from video_analysis.runtime.embedded_postgres import EmbeddedPostgres
    from video_analysis.store import db

    db.prepare(EmbeddedPostgres(home / "postgres", Settings.from_env().postgres_shared_buffers).start())
    try:
        (home / "inbox").mkdir()
        cut_clip(video, home / "clip.mp4", seconds)
        for i in range(count):
            shutil.copyfile(home / "clip.mp4", home / "inbox" / f"clip-{i:03d}.mp4")
        keys = register_objects(ObjectStoreResource().store(), PostgresResource(), DagsterInstance.get())

        def launch(first, last):
            subprocess.run([sys.executable, __file__, "run-range", first, last], check=True, capture_output=True)

        started = time.perf_counter()
        for key in keys:
            launch(key, key)
        one_per_run = time.perf_counter() - started
        started = time.perf_counter()
        launch(keys[0], keys[-1])
        batched = time.perf_counter() - started
    finally:
        EmbeddedPostgres(home / "postgres").discard()
        shutil.rmtree(home, ignore_errors=True)
    print(f"| videos | clip s | one run per video: total s | per video s | one run for all: total s | "
          f"per video s | speed-up |\n|---|---|---|---|---|---|---|\n"
          f"| {count} | {seconds:g} | {one_per_run:.1f} | {one_per_run / count:.1f} | {batched:.1f} | "
          f"{batched / count:.1f} | {one_per_run / batched:.2f}x |")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("what", choices=["sensor", "overhead", "plain", "batches", "run-range"])
    parser.add_argument("range", nargs="*", help="run-range: first and last partition key")
    parser.add_argument("--videos", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--objects", default="10000,100000")
    parser.add_argument("--video", type=Path, default=DEFAULT_VIDEO)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    if args.what == "sensor":
        bench_sensor([int(n) for n in args.objects.split(",")])
    elif args.what == "overhead":
        bench_overhead(args.video)
    elif args.what == "batches":
        bench_batches(args.video, args.videos, args.seconds)
    elif args.what == "run-range":
        run_range(*args.range)
    else:
        plain_pipeline(args.video)


if __name__ == "__main__":
    main()
