"""MOTChallenge-format sequences and their scores: MOTA and IDF1 (CLEAR, identity) and HOTA, by TrackEval.

A sequence folder holds ``seqinfo.ini``, ``gt/gt.txt`` and frames (a video, or ``img1/``); optionally
``det/det.txt`` (public detections, for scoring a tracker alone). Boxes are rows of
``frame,id,x,y,w,h,conf,...`` with 1-based frames, top-left corner and size in pixels.

Scores are computed on a chosen set of frames (the ones a pipeline analysed): a tracker that samples
2 frames a second is judged on those frames, not blamed for the ones it never saw.
"""

from __future__ import annotations

import configparser
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from video_analysis.vision.detections import box_iou

VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov", ".webm")


@dataclass(frozen=True)
class Boxes:
    """Rows of one MOT file: 1-based frame, id, and xywh boxes (top-left, size), with confidences."""

    frame: np.ndarray  # int, 1-based
    track_id: np.ndarray  # int
    xywh: np.ndarray  # float (n, 4)
    confidence: np.ndarray  # float

    def __len__(self) -> int:
        return len(self.frame)

    def on_frames(self, frames: set[int] | np.ndarray) -> Boxes:
        keep = np.isin(self.frame, np.fromiter(frames, int) if isinstance(frames, set) else frames)
        return Boxes(self.frame[keep], self.track_id[keep], self.xywh[keep], self.confidence[keep])


def read_boxes(path: Path) -> Boxes:
    """A MOT text file (gt, det or a tracker's output); an empty file gives no rows."""
    text = Path(path).read_text().strip()
    if not text:
        return Boxes(np.zeros(0, int), np.zeros(0, int), np.zeros((0, 4)), np.zeros(0))
    rows = np.array([[float(v) for v in line.split(",")[:7]] for line in text.splitlines() if line.strip()])
    return Boxes(rows[:, 0].astype(int), rows[:, 1].astype(int), rows[:, 2:6], rows[:, 6])


def write_boxes(path: Path, boxes: Boxes) -> None:
    lines = [f"{f},{i},{x:.2f},{y:.2f},{w:.2f},{h:.2f},{c:.4f},-1,-1,-1"
             for f, i, (x, y, w, h), c in zip(boxes.frame, boxes.track_id, boxes.xywh, boxes.confidence,
                                             strict=True)]
    Path(path).write_text("\n".join(lines) + ("\n" if lines else ""))


@dataclass(frozen=True)
class Sequence:
    name: str
    folder: Path
    fps: float
    frames: int
    width: int
    height: int

    @property
    def ground_truth(self) -> Boxes:
        gt = read_boxes(self.folder / "gt" / "gt.txt")
        # MOT16+ mark boxes to ignore with conf 0 (MOT15 has none); those are not people to find.
        keep = gt.confidence != 0
        return Boxes(gt.frame[keep], gt.track_id[keep], gt.xywh[keep], gt.confidence[keep])

    @property
    def public_detections(self) -> Boxes | None:
        path = self.folder / "det" / "det.txt"
        return read_boxes(path) if path.exists() else None

    @property
    def video(self) -> Path | None:
        """The sequence as one video file, if it has one (else its frames are under ``img1/``)."""
        for path in sorted(self.folder.iterdir()):
            if path.suffix.lower() in VIDEO_SUFFIXES:
                return path
        return None


def load_sequence(folder: Path) -> Sequence:
    folder = Path(folder)
    info = configparser.ConfigParser()
    if not info.read(folder / "seqinfo.ini"):
        raise FileNotFoundError(f"{folder} has no seqinfo.ini: not a MOTChallenge sequence folder")
    seq = info["Sequence"]
    if not (folder / "gt" / "gt.txt").exists():
        raise FileNotFoundError(f"{folder} has no gt/gt.txt: nothing to score against")
    return Sequence(seq.get("name", folder.name), folder, float(seq["frameRate"]), int(seq["seqLength"]),
                    int(seq.get("imWidth", 0)), int(seq.get("imHeight", 0)))


@dataclass(frozen=True)
class Scores:
    mota: float  # percent
    idf1: float
    hota: float
    recall: float
    precision: float
    id_switches: int
    frames: int  # frames scored

    def line(self, name: str) -> str:
        return f"{name} MOTA={self.mota:.1f}% IDF1={self.idf1:.1f}% HOTA={self.hota:.1f}%"


def _ious(gt: np.ndarray, tracked: np.ndarray) -> np.ndarray:
    """IoU between xywh boxes, [len(gt), len(tracked)]."""
    corners = lambda xywh: np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1)  # noqa: E731
    return box_iou(corners(np.asarray(gt).reshape(-1, 4)), corners(np.asarray(tracked).reshape(-1, 4)))


def score(ground_truth: Boxes, tracked: Boxes, frames: list[int] | None = None) -> Scores:
    """MOTA, IDF1 (IoU >= 0.5) and HOTA of ``tracked`` against ``ground_truth`` on ``frames`` (1-based;
    default every frame either names)."""
    from trackeval.metrics import CLEAR, HOTA, Identity

    if frames is None:
        frames = sorted(set(ground_truth.frame.tolist()) | set(tracked.frame.tolist()))
    gt_ids = {v: i for i, v in enumerate(np.unique(ground_truth.on_frames(np.array(frames)).track_id))}
    tr_ids = {v: i for i, v in enumerate(np.unique(tracked.on_frames(np.array(frames)).track_id))}
    data = {"gt_ids": [], "tracker_ids": [], "similarity_scores": [], "num_timesteps": len(frames),
            "num_gt_ids": len(gt_ids), "num_tracker_ids": len(tr_ids), "num_gt_dets": 0, "num_tracker_dets": 0}
    for frame in frames:
        g = ground_truth.frame == frame
        t = tracked.frame == frame
        data["gt_ids"].append(np.array([gt_ids[v] for v in ground_truth.track_id[g]], int))
        data["tracker_ids"].append(np.array([tr_ids[v] for v in tracked.track_id[t]], int))
        data["similarity_scores"].append(_ious(ground_truth.xywh[g], tracked.xywh[t]))
        data["num_gt_dets"] += int(g.sum())
        data["num_tracker_dets"] += int(t.sum())
    clear = CLEAR({"PRINT_CONFIG": False}).eval_sequence(data)
    identity = Identity({"PRINT_CONFIG": False}).eval_sequence(data)
    hota = HOTA().eval_sequence(data)
    return Scores(mota=100 * float(clear["MOTA"]), idf1=100 * float(identity["IDF1"]),
                  hota=100 * float(np.mean(hota["HOTA"])), recall=100 * float(clear["CLR_Re"]),
                  precision=100 * float(clear["CLR_Pr"]), id_switches=int(clear["IDSW"]), frames=len(frames))
