"""Detector backends behind one interface: frames in, ``Detections`` out.

- ``ultralytics``: any YOLO checkpoint (.pt, or exported ONNX/TensorRT engines), on CUDA when present.
- ``opencv-tf``: SSD-MobileNet-v2 COCO (TensorFlow frozen graph) through OpenCV DNN, CPU, no network.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from video_analysis.vision.detections import Detections
from video_analysis.vision.frames import Frame

# TF object-detection API COCO ids (1..90, with gaps) -> names; id 0 is background.
_TF_COCO = {
    1: "person", 2: "bicycle", 3: "car", 4: "motorcycle", 5: "airplane", 6: "bus", 7: "train", 8: "truck",
    9: "boat", 10: "traffic light", 11: "fire hydrant", 13: "stop sign", 14: "parking meter", 15: "bench",
    16: "bird", 17: "cat", 18: "dog", 19: "horse", 20: "sheep", 21: "cow", 22: "elephant", 23: "bear",
    24: "zebra", 25: "giraffe", 27: "backpack", 28: "umbrella", 31: "handbag", 32: "tie", 33: "suitcase",
    34: "frisbee", 35: "skis", 36: "snowboard", 37: "sports ball", 38: "kite", 39: "baseball bat",
    40: "baseball glove", 41: "skateboard", 42: "surfboard", 43: "tennis racket", 44: "bottle",
    46: "wine glass", 47: "cup", 48: "fork", 49: "knife", 50: "spoon", 51: "bowl", 52: "banana", 53: "apple",
    54: "sandwich", 55: "orange", 56: "broccoli", 57: "carrot", 58: "hot dog", 59: "pizza", 60: "donut",
    61: "cake", 62: "chair", 63: "couch", 64: "potted plant", 65: "bed", 67: "dining table", 70: "toilet",
    72: "tv", 73: "laptop", 74: "mouse", 75: "remote", 76: "keyboard", 77: "cell phone", 78: "microwave",
    79: "oven", 80: "toaster", 81: "sink", 82: "refrigerator", 84: "book", 85: "clock", 86: "vase",
    87: "scissors", 88: "teddy bear", 89: "hair drier", 90: "toothbrush",
}


class Detector(Protocol):
    class_names: dict[int, str]

    def detect(self, frames: list[Frame]) -> Detections: ...


def _stack(frames: list[Frame], boxes: list[np.ndarray], scores: list[np.ndarray],
           classes: list[np.ndarray]) -> Detections:
    parts = []
    for frame, xyxy, conf, cls in zip(frames, boxes, scores, classes, strict=True):
        n = len(conf)
        parts.append(Detections(
            xyxy=xyxy.astype(np.float32).reshape(n, 4), confidence=conf.astype(np.float32),
            class_id=cls.astype(np.int32), frame_index=np.full(n, frame.index, np.int32),
            timestamp=np.full(n, frame.timestamp, np.float64)))
    return Detections.concat(parts)


class OpenCVSSDDetector:
    """SSD-MobileNet-v2 COCO frozen graph through OpenCV's DNN module (batched with blobFromImages)."""

    input_size = (300, 300)

    def __init__(self, weights: Path, config: Path, confidence: float = 0.4):
        self.net = cv2.dnn.readNetFromTensorflow(str(weights), str(config))
        self.confidence = confidence
        self.class_names = dict(_TF_COCO)

    def detect(self, frames: list[Frame]) -> Detections:
        if not frames:
            return Detections.empty()
        images = [f.image for f in frames]
        boxes, scores, classes = [], [], []
        # The graph's output packs detections of every image in the blob: [1, 1, N, 7] rows of
        # (image, class, score, x1, y1, x2, y2) with normalised coordinates.
        blob = cv2.dnn.blobFromImages(images, size=self.input_size, swapRB=True)
        self.net.setInput(blob)
        out = self.net.forward().reshape(-1, 7)
        for i, image in enumerate(images):
            h, w = image.shape[:2]
            rows = out[(out[:, 0] == i) & (out[:, 2] >= self.confidence)]
            rows = rows[np.isin(rows[:, 1].astype(int), list(self.class_names))]
            xyxy = np.clip(rows[:, 3:7], 0.0, 1.0) * np.array([w, h, w, h], np.float32)
            boxes.append(xyxy)
            scores.append(rows[:, 2])
            classes.append(rows[:, 1].astype(np.int32))
        return _stack(frames, boxes, scores, classes)


class UltralyticsDetector:
    """Any YOLO checkpoint Ultralytics can load; batched, on CUDA when available."""

    def __init__(self, weights: Path, confidence: float = 0.25, device: str | None = None, imgsz: int = 640):
        from ultralytics import YOLO

        self.model = YOLO(str(weights), task="detect")
        self.confidence = confidence
        self.imgsz = imgsz
        self.device = device or _default_device()
        self.class_names = dict(self.model.names)

    def detect(self, frames: list[Frame]) -> Detections:
        if not frames:
            return Detections.empty()
        results = self.model.predict([f.image for f in frames], conf=self.confidence, imgsz=self.imgsz,
                                     device=self.device, verbose=False)
        boxes, scores, classes = [], [], []
        for result in results:
            found = result.boxes.cpu().numpy()
            boxes.append(found.xyxy)
            scores.append(found.conf)
            classes.append(found.cls.astype(np.int32))
        return _stack(frames, boxes, scores, classes)


def _default_device() -> str:
    try:
        import torch

        return "cuda:0" if torch.cuda.is_available() else "cpu"
    except ImportError:
        return "cpu"


def load_detector(backend: str, weights: Path, config: Path | None = None, confidence: float | None = None):
    if backend == "opencv-tf":
        if config is None:
            raise ValueError("the opencv-tf backend needs the graph's .pbtxt config")
        return OpenCVSSDDetector(weights, config, **({"confidence": confidence} if confidence is not None else {}))
    if backend == "ultralytics":
        return UltralyticsDetector(weights, **({"confidence": confidence} if confidence is not None else {}))
    raise ValueError(f"unknown detector backend {backend!r}")
