"""A wide view of a MOTChallenge sequence, for scoring detection of small, far people (``--tiles``).

    .venv/bin/python benchmarks/wide_view.py SEQ_DIR OUT_DIR [--scale 3]
    .venv/bin/python benchmarks/quality.py OUT_DIR/<name>-wide3 --tiles 2x2

Writes ``OUT_DIR/<name>-wide<scale>/`` (``seqinfo.ini``, ``gt/gt.txt``, a video): each frame pasted at its
own pixel size in a frame ``scale`` times wider and taller (`video_analysis.evaluation.wide_view`).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from video_analysis.evaluation.wide_view import write_wide_view  # noqa: E402

log = logging.getLogger("wide_view")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sequence", type=Path)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--scale", type=int, default=3)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    log.info("wrote %s", write_wide_view(args.sequence, args.out_dir, args.scale))


if __name__ == "__main__":
    main()
