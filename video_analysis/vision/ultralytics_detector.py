"""The Ultralytics detector backend: any YOLO checkpoint or export (.pt, ONNX, OpenVINO, TensorRT), batched."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from video_analysis.vision.detections import Detections
from video_analysis.vision.frames import Frame


class UltralyticsDetector:
    """Any YOLO checkpoint or export Ultralytics can load (.pt, .onnx, an OpenVINO folder); batched."""

    def __init__(self, weights: Path, confidence: float = 0.25, device: str | None = None, imgsz: int = 640):
        from ultralytics import YOLO

        self.model = YOLO(str(weights), task="detect")
        self.confidence = confidence
        self.imgsz = imgsz
        self.device = device or "cpu"
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
        return Detections.from_frames(frames, boxes, scores, classes)
