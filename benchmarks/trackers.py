"""Trackers compared on the same detections: every MOTChallenge sequence with public detections, at the
pipeline's default sample rate, scored against its hand labels.

    .venv/bin/python benchmarks/trackers.py [SEQ_DIR ...]

The default is the two TUD sequences and the eight of ``../shared/data/mot/public-detections``. Each row is a
tracker setting (`TrackerSettings`), each cell MOTA / IDF1 of its person tracks kept by the evidence policy,
on every n-th frame where n is the default rate's step for the sequence's frame rate. Detections are the
benchmark's public ones, so only the tracker differs.
"""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from configuration.settings import Settings  # noqa: E402
from video_analysis.evaluation.mot import load_sequence, score  # noqa: E402
from video_analysis.evaluation.runs import track_public_detections  # noqa: E402
from video_analysis.vision.passes import DEFAULT_SAMPLE_FPS  # noqa: E402
from video_analysis.vision.sampling import sampling_period_s  # noqa: E402
from video_analysis.vision.tracking import DEFAULT_TRACKER  # noqa: E402

MOT = REPO.parent / "shared" / "data" / "mot"
CANDIDATES = {
    "ByteTrack, C-BIoU buffer 0.5 (the default)": DEFAULT_TRACKER,
    "ByteTrack, plain IoU": replace(DEFAULT_TRACKER, buffer=0.0),
    "BoT-SORT (no appearance, no camera motion), plain IoU": replace(DEFAULT_TRACKER, kind="botsort", buffer=0.0),
    "BoT-SORT, C-BIoU buffer 0.5": replace(DEFAULT_TRACKER, kind="botsort"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sequences", nargs="*", type=Path)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    folders = args.sequences or [MOT / "TUD-Campus", MOT / "TUD-Stadtmitte",
                                 *sorted(p for p in (MOT / "public-detections").iterdir() if p.is_dir())]
    sequences = [load_sequence(folder) for folder in folders]
    policy = Settings.from_env().track_policy()
    print("| tracker | " + " | ".join(s.name for s in sequences) + " | mean |")
    print("|---" * (len(sequences) + 2) + "|")
    for label, settings in CANDIDATES.items():
        cells, motas, idf1s = [], [], []
        for sequence in sequences:
            step = max(1, round(sampling_period_s(DEFAULT_SAMPLE_FPS, sequence.fps) * sequence.fps))
            run = track_public_detections(sequence, every=step, policy=policy, settings=settings)
            got = score(sequence.ground_truth, run.tracked, run.frames)
            cells.append(f"{got.mota:.1f} / {got.idf1:.1f}")
            motas.append(got.mota)
            idf1s.append(got.idf1)
        print(f"| {label} | " + " | ".join(cells) + f" | {np.mean(motas):.1f} / {np.mean(idf1s):.1f} |", flush=True)


if __name__ == "__main__":
    main()
