"""Detection throughput per backend, our overhead against a plain loop, and peak memory vs video length.

    .venv/bin/python benchmarks/vision.py [--video PATH] [--sample-fps 6] [--device cpu|cuda:0]

Prints a markdown table. "plain" decodes with cv2 in the same thread and calls the same model on the
same sampled frames in batches of the same size; "reelgraph" is video_analysis.vision.passes.detect_video
(threaded decode + columnar Detections). YOLO speed does not depend on trained weights, so the YOLO
rows use yolo11n built from its config (random weights) unless --yolo-weights is given.
"""

import argparse
import json
import logging
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from video_analysis.vision.frames import Frame  # noqa: E402
from video_analysis.vision.passes import DEFAULT_SAMPLE_FPS, detect_video  # noqa: E402
from video_analysis.vision.sampling import effective_sample_fps  # noqa: E402
from video_analysis.vision.ssd_detectors import OpenCVSSDDetector, OpenVINOSSDDetector  # noqa: E402
from video_analysis.vision.ultralytics_detector import UltralyticsDetector  # noqa: E402

DEFAULT_VIDEO = ROOT.parent / "shared" / "data" / "videos" / "one-by-one-person-detection.mp4"
BATCH = 8


def build_detector(backend: str, device: str, yolo_weights: str | None):
    if backend.startswith("ssd-mobilenet-v2"):
        from models import ModelRegistry

        cache = Path(tempfile.gettempdir()) / "reelgraph-bench-models"
        model = ModelRegistry(cache, profile="offline").resolve_checkpoint("ssd-mobilenet-v2-coco", "offline")
        if backend == "ssd-mobilenet-v2 (openvino)":
            return OpenVINOSSDDetector(model.path, cache)
        return OpenCVSSDDetector(model.path, model.config_path)
    if yolo_weights is None:
        from ultralytics import YOLO

        yolo_weights = str(Path(tempfile.gettempdir()) / "reelgraph-bench-yolo11n.pt")
        if not Path(yolo_weights).exists():
            YOLO("yolo11n.yaml").save(yolo_weights)
    return UltralyticsDetector(Path(yolo_weights), device=device)


def plain_loop(video: Path, detector, sample_fps: float) -> tuple[int, float]:
    started = time.perf_counter()
    capture = cv2.VideoCapture(str(video))
    fps = capture.get(cv2.CAP_PROP_FPS)
    step = max(1, round(fps / effective_sample_fps(sample_fps, fps)))  # the frames the pass keeps
    index, frames, batch = 0, 0, []
    while capture.grab():
        if index % step == 0:
            ok, image = capture.retrieve()
            batch.append(Frame(index, 0.0, image))
            if len(batch) == BATCH:
                detector.detect(batch)
                frames += len(batch)
                batch = []
        index += 1
    if batch:
        detector.detect(batch)
        frames += len(batch)
    capture.release()
    return frames, time.perf_counter() - started


def ours(video: Path, detector, sample_fps: float) -> tuple[int, float]:
    fps = cv2.VideoCapture(str(video)).get(cv2.CAP_PROP_FPS)
    result = detect_video(video, detector, fps=fps, sample_fps=sample_fps, batch_size=BATCH)
    return result.frames_processed, result.seconds


def longer_video(video: Path, times: int) -> Path:
    """The clip repeated `times` times (mp4v), to show memory stays flat as videos get longer."""
    target = Path(tempfile.gettempdir()) / f"reelgraph-bench-{video.stem}-x{times}.mp4"
    if target.exists():
        return target
    writer = None
    for _ in range(times):
        capture = cv2.VideoCapture(str(video))
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            if writer is None:
                writer = cv2.VideoWriter(str(target), cv2.VideoWriter_fourcc(*"mp4v"),
                                         capture.get(cv2.CAP_PROP_FPS), frame.shape[1::-1])
            writer.write(frame)
        capture.release()
    writer.release()
    return target


def measure_memory(video: Path, backend: str, device: str, sample_fps: float) -> None:
    """Child-process entry: run the stage once and print peak RSS (MiB) as JSON."""
    detector = build_detector(backend, device, None)
    frames, seconds = ours(video, detector, sample_fps)
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"frames": frames, "seconds": seconds, "peak_mib": peak_mib}))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--video", type=Path, default=Path(os.environ.get("REELGRAPH_BENCH_VIDEO", DEFAULT_VIDEO)))
    parser.add_argument("--sample-fps", type=float, default=DEFAULT_SAMPLE_FPS)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--yolo-weights")
    parser.add_argument("--backends", default="ssd-mobilenet-v2 (openvino),ssd-mobilenet-v2 (opencv),"
                        "yolo11n (ultralytics)")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--memory-child", nargs=2, metavar=("VIDEO", "BACKEND"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("YOLO_OFFLINE", "1")
    if args.memory_child:
        measure_memory(Path(args.memory_child[0]), args.memory_child[1], args.device, args.sample_fps)
        return

    print(f"video: {args.video.name}, sampled at {args.sample_fps} fps, batch {BATCH}, device {args.device}, "
          f"{os.cpu_count()} CPUs\n")
    print("| backend | plain loop fps | reelgraph fps | overhead (ours/plain time) |")
    print("|---|---|---|---|")
    backends = args.backends.split(",")
    for backend in backends:
        detector = build_detector(backend, args.device, args.yolo_weights)
        first_frame = cv2.VideoCapture(str(args.video)).read()[1]
        detector.detect([Frame(0, 0.0, first_frame)] * BATCH)  # warm-up: lazy init, allocator
        plain_frames, plain_s = plain_loop(args.video, detector, args.sample_fps)
        our_frames, our_s = ours(args.video, detector, args.sample_fps)
        assert plain_frames == our_frames
        print(f"| {backend} | {plain_frames / plain_s:.1f} | {our_frames / our_s:.1f} | {our_s / plain_s:.2f} |")

    if args.skip_memory:
        return
    print("\n| backend | video length | frames analysed | peak RSS (MiB) |")
    print("|---|---|---|---|")
    for backend in backends[:1]:
        for times in (1, 4):
            video = args.video if times == 1 else longer_video(args.video, times)
            out = subprocess.run([sys.executable, __file__, "--memory-child", str(video), backend,
                                  "--sample-fps", str(args.sample_fps), "--device", args.device],
                                 capture_output=True, text=True, check=True)
            figures = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"| {backend} | {times}x | {figures['frames']} | {figures['peak_mib']:.0f} |")


if __name__ == "__main__":
    main()
