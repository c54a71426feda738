"""Real-length footage: probe time, one decode, and memory on a 10-minute 1080p 15 fps segment.

    .venv/bin/python benchmarks/footage.py [--source CLIP] [--minutes 10] [--workdir DIR]

Generates the segments from a sample clip (looped and scaled to 1920x1080 at 15 fps, H.264 with a keyframe
every 2 s as IP cameras encode; not committed), then prints a markdown table:
- probe: `probe_video` (stream metadata, packet index, three frames, sha256 of the file);
- decode only: every frame decoded, the samples at the default rate converted (what the detection pass reads);
- detections step: the detection pass alone (the offline profile's detector, the default rate), its decode
  included;
- `reelgraph process`: every stage through Dagster in a fresh process, in a state folder that has processed
  one video before (the 1-minute segment, whose run is timed too: the first video of a state folder also
  converts and compiles the detector into its model cache), with each stage's step time from the run's events;
  then two copies in one command (each its own run; the process and its loaded models shared);
- peak RSS of the detection pass at 1 and at N minutes (flat means the decode queue bounds memory).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

FPS = 15
SIZE = (1920, 1080)
GOP = 2 * FPS  # frames between keyframes


def make_segment(source: Path, target: Path, seconds: int) -> Path:
    """``seconds`` of ``source`` looped, scaled to 1080p at 15 fps."""
    import av
    import cv2

    if target.exists():
        return target
    reader = cv2.VideoCapture(str(source))
    partial = target.with_suffix(".part.mp4")
    with av.open(str(partial), "w", options={"movflags": "+faststart"}) as out:
        stream = out.add_stream("libx264", rate=FPS, options={"preset": "ultrafast", "crf": "26"})
        stream.width, stream.height = SIZE
        stream.pix_fmt = "yuv420p"
        stream.codec_context.gop_size = GOP
        for _ in range(seconds * FPS):
            ok, image = reader.read()
            if not ok:
                reader.set(cv2.CAP_PROP_POS_FRAMES, 0)
                ok, image = reader.read()
            frame = av.VideoFrame.from_ndarray(cv2.resize(image, SIZE, interpolation=cv2.INTER_LINEAR), format="bgr24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    reader.release()
    partial.rename(target)
    return target


def timed(fn, *args, **kwargs) -> tuple[float, object]:
    started = time.perf_counter()
    result = fn(*args, **kwargs)
    return time.perf_counter() - started, result


def detector_model():
    from models import ModelRegistry

    return ModelRegistry(Path(tempfile.gettempdir()) / "reelgraph-bench-models", profile="offline").resolve("detector")


def detector():
    from video_analysis.vision.loaders import load_model

    model = detector_model()
    return load_model(model.backend, model.path, model.config_path,
                      cache_dir=Path(tempfile.gettempdir()) / "reelgraph-bench-models")


def detection_pass(video: Path) -> None:
    """In its own process: the detection pass, then its peak RSS (MiB) on stdout."""
    from video_analysis.vision.passes import DEFAULT_SAMPLE_FPS, detect_video

    found = detect_video(video, detector(), fps=FPS, sample_fps=DEFAULT_SAMPLE_FPS)
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{found.frames_processed} {found.decode.frames} {found.seconds:.2f} {peak_mib:.0f}")


def in_subprocess(video: Path) -> tuple[int, int, float, float]:
    out = subprocess.run([sys.executable, __file__, "--pass-only", str(video)], check=True, capture_output=True,
                         text=True).stdout.split()
    return int(out[0]), int(out[1]), float(out[2]), float(out[3])


def reelgraph_process(warm_up: Path, video: Path) -> tuple[float, float, dict[str, float], float]:
    """``reelgraph process`` in a fresh state folder: first ``warm_up`` (it pays what a state folder pays once:
    converting and compiling the detector, exporting models into the cache), then ``video``, timed, as every
    later video of a deployment runs; then two other copies of ``video`` in one command, as a backfill's run
    takes several videos. Returns the first two times, the second run's step times, and the seconds per video
    of the pair."""
    home = Path(tempfile.mkdtemp(prefix="reelgraph-bench-home-"))
    env = {**os.environ, "REELGRAPH_HOME": str(home), "REELGRAPH_MODEL_PROFILE": "offline",
           "DAGSTER_HOME": str(home / "dagster")}
    env.pop("REELGRAPH_DATABASE_URL", None)
    reelgraph = str(Path(sys.executable).parent / "reelgraph")
    try:
        subprocess.run([reelgraph, "db", "url"], check=True, capture_output=True, env=env)  # server up first
        cold_s, _ = timed(subprocess.run, [reelgraph, "process", str(warm_up)], check=True, capture_output=True,
                          env=env)
        elapsed, _ = timed(subprocess.run, [reelgraph, "process", str(video)], check=True, capture_output=True,
                           env=env)
        steps = step_seconds(home / "dagster")
        copies = [distinct_copy(video, home / f"copy-{n}{video.suffix}", n) for n in (1, 2)]
        pair_s, _ = timed(subprocess.run, [reelgraph, "process", *map(str, copies)], check=True,
                          capture_output=True, env=env)
        return cold_s, elapsed, steps, pair_s / len(copies)
    finally:
        from video_analysis.runtime.embedded_postgres import EmbeddedPostgres

        EmbeddedPostgres(home / "postgres").discard()
        shutil.rmtree(home, ignore_errors=True)


def distinct_copy(video: Path, target: Path, n: int) -> Path:
    """``video`` with ``n`` bytes appended after its end: the same footage under another content hash."""
    shutil.copyfile(video, target)
    with target.open("ab") as out:
        out.write(bytes(n))
    return target


def step_seconds(dagster_home: Path) -> dict[str, float]:
    """Seconds each step of the latest run took, from its STEP_SUCCESS events."""
    from dagster import DagsterEventType, DagsterInstance

    with DagsterInstance.from_config(str(dagster_home)) as instance:
        [run] = instance.get_runs(limit=1)
        records = instance.get_records_for_run(run.run_id, of_type=DagsterEventType.STEP_SUCCESS).records
        return {r.event_log_entry.step_key: r.event_log_entry.dagster_event.event_specific_data.duration_ms / 1000
                for r in records}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--source", type=Path,
                        default=REPO.parent / "shared" / "data" / "videos" / "one-by-one-person-detection.mp4")
    parser.add_argument("--minutes", type=int, default=10)
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "reelgraph-bench-footage")
    parser.add_argument("--pass-only", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.pass_only:
        detection_pass(args.pass_only)
        return

    from video_analysis.vision.decode_report import DecodeReport
    from video_analysis.vision.frames import decode_stream
    from video_analysis.vision.passes import DEFAULT_SAMPLE_FPS
    from video_analysis.vision.probe import probe_video
    from video_analysis.vision.sampling import effective_sample_fps

    args.workdir.mkdir(parents=True, exist_ok=True)
    long = make_segment(args.source, args.workdir / f"segment-{args.minutes}min-1080p-gop{GOP}.mp4", args.minutes * 60)
    short = make_segment(args.source, args.workdir / f"segment-1min-1080p-gop{GOP}.mp4", 60)

    probe_s, probe = timed(probe_video, long)
    report = DecodeReport(FPS)
    decode_s, sampled = timed(lambda: sum(1 for _ in decode_stream(long, report, sample_fps=DEFAULT_SAMPLE_FPS)))
    frames, decoded, detect_s, peak_long = in_subprocess(long)
    _, _, _, peak_short = in_subprocess(short)
    cold_s, process_s, steps, per_video_s = reelgraph_process(short, long)

    print(f"| {args.minutes}-min 1080p {FPS} fps ({long.stat().st_size / 2**20:.0f} MiB) | figure |\n|---|---|")
    print(f"| probe ({probe.status}, {probe.frame_count} frames indexed) | {probe_s:.2f} s |")
    rate = effective_sample_fps(DEFAULT_SAMPLE_FPS, FPS)
    print(f"| decode only ({report.frames} frames decoded, {sampled} converted at {rate:g} fps) | {decode_s:.1f} s |")
    print(f"| detections step ({frames} sampled of {decoded} decoded, {detector_model().name} on CPU) | "
          f"{detect_s:.1f} s ({args.minutes * 60 / detect_s:.1f}x real time) |")
    print(f"| `reelgraph process`, every stage, after one video in the same state folder | {process_s:.1f} s "
          f"({process_s / detect_s:.2f}x the detections step, {process_s / decode_s:.2f}x decode only, "
          f"{args.minutes * 60 / process_s:.1f}x real time) |")
    print(f"| two more copies in one `reelgraph process` (a run's fixed costs paid once), per video | "
          f"{per_video_s:.1f} s ({per_video_s / detect_s:.2f}x the detections step) |")
    print(f"| the first video of a fresh state folder (1-min segment): `reelgraph process` | {cold_s:.1f} s |")
    print(f"| peak RSS of the detection pass, 1 min / {args.minutes} min | {peak_short:.0f} / {peak_long:.0f} MiB |")
    print("| steps of that run | " + ", ".join(f"{step} {seconds:.1f} s" for step, seconds in steps.items()) + " |")


if __name__ == "__main__":
    main()
