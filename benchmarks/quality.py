"""Tracking quality against hand-labelled ground truth: MOTA, IDF1 and HOTA (TrackEval), seconds per frame.

    .venv/bin/python benchmarks/quality.py [SEQ_DIR ...] [--profile offline|full] [--detector PATH]
                                           [--checkpoint NAME]
                                           [--imgsz N] [--sample-fps F ...] [--tiles COLSxROWS]
                                           [--no-proof]

SEQ_DIR is a MOTChallenge-format sequence folder (``seqinfo.ini``, ``gt/gt.txt``, a video file; ``det/det.txt``
for the tracker-alone rows); the default is the two TUD sequences in ``../shared/data/mot``. Modes:

- ``defaults``: the detections and tracks stages exactly as ``reelgraph process`` runs them (sample rate,
  detector threshold, tracker settings, evidence policy), scored on the frames they analyse;
- ``every frame``: the same with every frame analysed;
- ``tracker alone``: the tracker on the sequence's public detections, every frame and at the default rate;
- ``--sample-fps``: extra rows at other sample rates;
- ``--tiles``: the detector also on a grid of tiles of each frame (`video_analysis.vision.tiling`), as a
  camera with ``tiles:`` set runs it. ``benchmarks/wide_view.py`` makes sequences of far, small people.

First it proves the scorer: the reference tracker output shipped beside the TUD sequences must score what
py-motmetrics' own tests expect. It ends with one line per sequence for the defaults:
``<name> MOTA=<%> IDF1=<%> HOTA=<%>``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from configuration.settings import Settings  # noqa: E402
from video_analysis.evaluation.mot import load_sequence, read_boxes, score  # noqa: E402
from video_analysis.evaluation.runs import track_footage, track_public_detections  # noqa: E402
from video_analysis.vision.passes import DEFAULT_SAMPLE_FPS  # noqa: E402
from video_analysis.vision.sampling import effective_sample_fps, sampling_period_s  # noqa: E402
from video_analysis.vision.tiling import with_tiles  # noqa: E402

MOT = REPO.parent / "shared" / "data" / "mot"
DEFAULT_SEQUENCES = [MOT / "TUD-Campus", MOT / "TUD-Stadtmitte"]
# py-motmetrics' expected figures for the reference tracker output (IoU >= 0.5): MOTA, IDF1.
REFERENCE = {"TUD-Campus": (52.6, 55.8), "TUD-Stadtmitte": (56.4, 64.5)}

log = logging.getLogger("quality")


def prove_scorer(folders: list[Path]) -> None:
    for folder in folders:
        sequence = load_sequence(folder)
        expected = REFERENCE.get(sequence.name)
        reference = folder / "reference_tracker.txt"
        if expected is None or not reference.exists():
            continue
        got = score(sequence.ground_truth, read_boxes(reference), list(range(1, sequence.frames + 1)))
        ok = abs(got.mota - expected[0]) < 0.05 and abs(got.idf1 - expected[1]) < 0.05
        print(f"scorer check, {sequence.name} reference tracker: MOTA {got.mota:.1f}% IDF1 {got.idf1:.1f}% "
              f"(py-motmetrics: {expected[0]}% / {expected[1]}%) {'ok' if ok else 'MISMATCH'}")
        if not ok:
            raise SystemExit("the scorer does not reproduce py-motmetrics' figures: fix it before reading any row")


def build_detector(profile: str, detector_path: str | None, imgsz: int, checkpoint: str | None = None):
    """The profile's detector (or the manifest's ``checkpoint``) through the registry and the pipeline's loader,
    or a given Ultralytics export."""
    if detector_path:
        from video_analysis.vision.ultralytics_detector import UltralyticsDetector

        return Path(detector_path).name, UltralyticsDetector(Path(detector_path), imgsz=imgsz)
    from models import ModelRegistry
    from video_analysis.vision.loaders import load_model

    cache = Path(tempfile.gettempdir()) / "reelgraph-bench-models"
    registry = ModelRegistry(cache, profile=profile, allow_download=False)
    model = registry.resolve_checkpoint(checkpoint, profile) if checkpoint else registry.resolve("detector")
    return model.name, load_model(model.backend, model.path, model.config_path, cache_dir=cache)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sequences", nargs="*", type=Path, default=DEFAULT_SEQUENCES)
    parser.add_argument("--profile", choices=("offline", "full"), default="offline")
    parser.add_argument("--detector", help="an Ultralytics checkpoint or export (.pt, .onnx, OpenVINO folder)")
    parser.add_argument("--imgsz", type=int, default=640, help="input size for --detector")
    parser.add_argument("--checkpoint", help="a detector of models/manifest.yaml (default: the profile's first)")
    parser.add_argument("--sample-fps", type=float, nargs="*", default=[], help="extra rows at these rates")
    parser.add_argument("--tiles", default="off", help="detect on this grid of tiles too (e.g. 2x2)")
    parser.add_argument("--no-proof", action="store_true", help="skip the scorer check")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("YOLO_OFFLINE", "1")

    if not args.no_proof:
        prove_scorer(args.sequences)
    policy = Settings.from_env().track_policy()
    started = time.perf_counter()
    name, detector = build_detector(args.profile, args.detector, args.imgsz, args.checkpoint)
    detector = with_tiles(detector, args.tiles)
    from video_analysis.vision.frames import iter_frames

    detector.detect(list(iter_frames(load_sequence(args.sequences[0]).video, 1.0))[:2])  # warm up before timing
    print(f"detector: {name}, tiles {args.tiles} (loaded in {time.perf_counter() - started:.1f} s); "
          f"evidence: {policy.describe()}")
    print()
    print("| sequence | mode | frames scored | MOTA % | IDF1 % | HOTA % | recall % | precision % | ID switches "
          "| ms per frame |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    finals = []
    for folder in args.sequences:
        sequence = load_sequence(folder)
        gt = sequence.ground_truth
        rows = [("defaults", DEFAULT_SAMPLE_FPS), ("every frame", 0.0)]
        rows += [(f"{fps:g} fps", fps) for fps in args.sample_fps]
        for mode, fps in rows:
            run = track_footage(sequence, detector, sample_fps=fps, policy=policy)
            got = score(gt, run.tracked, run.frames)
            if mode == "defaults":
                finals.append(got.line(sequence.name))
            print(f"| {sequence.name} | {mode} ({effective_sample_fps(fps, sequence.fps):.2f} fps) "
                  f"| {got.frames} | {got.mota:.1f} | {got.idf1:.1f} | {got.hota:.1f} | {got.recall:.1f} "
                  f"| {got.precision:.1f} | {got.id_switches} | {1000 * run.seconds_per_frame:.0f} |", flush=True)
        if sequence.public_detections is not None:
            step = max(1, round(sampling_period_s(DEFAULT_SAMPLE_FPS, sequence.fps) * sequence.fps))
            for mode, every in (("tracker alone, every frame", 1), ("tracker alone, default rate", step)):
                run = track_public_detections(sequence, every=every, policy=policy)
                got = score(gt, run.tracked, run.frames)
                print(f"| {sequence.name} | {mode} | {got.frames} | {got.mota:.1f} | {got.idf1:.1f} | {got.hota:.1f} "
                      f"| {got.recall:.1f} | {got.precision:.1f} | {got.id_switches} "
                      f"| {1000 * run.seconds_per_frame:.1f} |", flush=True)
    print()
    for line in finals:
        print(line)


if __name__ == "__main__":
    main()
