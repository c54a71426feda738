"""A wide view of a MOTChallenge sequence: the same people, far smaller against the whole frame.

Each frame of the sequence is pasted, at its own pixel size, in the middle of a frame ``scale`` times wider
and taller, filled around it with the sequence's empty background (the median of its frames, mirrored
outwards and blurred). People keep their pixel size while the frame grows, as they would in a wide-angle or
4K camera looking at a far street: a detector that shrinks the frame to its input sees them ``scale`` times
smaller. The ground truth is shifted with the frame, so recall is measured against the same hand labels.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from video_analysis.evaluation.mot import Boxes, load_sequence, read_boxes, write_boxes
from video_analysis.vision.frames import iter_frames


def scene_background(images: list[np.ndarray]) -> np.ndarray:
    """The empty scene: the median of up to 40 frames spread over the sequence."""
    return np.median(np.stack(images[:: max(1, len(images) // 40)]), axis=0).astype(np.uint8)


def widen(images: list[np.ndarray], scale: int = 3, background: np.ndarray | None = None,
          ) -> tuple[list[np.ndarray], tuple[int, int]]:
    """The frames of one scene, each in the middle of a frame ``scale`` times larger, around it the scene's
    ``background`` (default: `scene_background` of these frames); and where (x, y) the originals sit in it, to
    shift their boxes by."""
    h, w = images[0].shape[:2]
    background = scene_background(images) if background is None else background
    pad_x, pad_y = (scale - 1) * w // 2, (scale - 1) * h // 2
    # blurred, so that anybody standing still through the sequence (in the median) is not mirrored into
    # unlabelled copies around the frame
    canvas = cv2.GaussianBlur(cv2.copyMakeBorder(background, pad_y, pad_y, pad_x, pad_x, cv2.BORDER_REFLECT),
                              (0, 0), 25)
    wide = []
    for image in images:
        frame = canvas.copy()
        frame[pad_y:pad_y + h, pad_x:pad_x + w] = image
        wide.append(frame)
    return wide, (pad_x, pad_y)


def write_wide_view(folder: Path, out_dir: Path, scale: int = 3) -> Path:
    """``out_dir/<name>-wide<scale>``: the sequence widened (`widen`), as a sequence folder to score (a sequence
    with a video file; ground-truth rows are copied with their confidence, the rest of the columns as -1)."""
    sequence = load_sequence(folder)
    if sequence.video is None:
        raise FileNotFoundError(f"{folder} has no video file (sequences of img1/ frames are not widened)")
    frames, (pad_x, pad_y) = widen([f.image for f in iter_frames(sequence.video, None)], scale)
    height, width = frames[0].shape[:2]
    target = Path(out_dir) / f"{sequence.name}-wide{scale}"
    (target / "gt").mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(target / f"{target.name}.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), sequence.fps,
                             (width, height))
    try:
        for frame in frames:
            writer.write(frame)
    finally:
        writer.release()
    gt = read_boxes(folder / "gt" / "gt.txt")
    write_boxes(target / "gt" / "gt.txt",
                Boxes(gt.frame, gt.track_id, gt.xywh + np.array([pad_x, pad_y, 0, 0]), gt.confidence))
    (target / "seqinfo.ini").write_text(
        f"[Sequence]\nname={target.name}\nframeRate={sequence.fps:g}\nseqLength={len(frames)}\n"
        f"imWidth={width}\nimHeight={height}\n")
    return target
