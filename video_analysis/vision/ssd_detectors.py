"""SSD-MobileNet-v2 COCO (TensorFlow frozen graph) on the CPU: through OpenVINO (offline profile) or OpenCV DNN."""

from __future__ import annotations

import tempfile
from pathlib import Path

import cv2
import numpy as np

from video_analysis.vision.coco_classes import TF_COCO_NAMES
from video_analysis.vision.detections import Detections
from video_analysis.vision.frames import Frame
from video_analysis.vision.openvino_cache import compiled_model, converted_graph

# Boxes scored below this reach the tracker too: ByteTrack keeps a track alive through them (its second,
# low-score association) without starting tracks from them. Chosen on ground truth (benchmarks/quality.py).
SSD_CONFIDENCE = 0.3


class OpenCVSSDDetector:
    """SSD-MobileNet-v2 COCO frozen graph through OpenCV's DNN module (batched with blobFromImages)."""

    input_size = (300, 300)

    def __init__(self, weights: Path, config: Path, confidence: float = SSD_CONFIDENCE):
        self.net = cv2.dnn.readNetFromTensorflow(str(weights), str(config))
        self.confidence = confidence
        self.class_names = dict(TF_COCO_NAMES)

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
        return Detections.from_frames(frames, boxes, scores, classes)


class OpenVINOSSDDetector:
    """SSD-MobileNet-v2 COCO frozen graph through OpenVINO on the CPU.

    The graph is converted once into OpenVINO's own format in ``cache_dir`` (reading the TensorFlow graph
    takes seconds on every load), and compiled for one 300x300 frame a request: batches go through frame by
    frame, which measured faster on the CPU than one request of eight (the graph's per-image NMS dominates).
    """

    input_size = (300, 300)

    def __init__(self, weights: Path, cache_dir: Path | None = None, confidence: float = SSD_CONFIDENCE,
                 threads: int | None = None):
        import openvino as ov

        self.confidence = confidence
        self.class_names = dict(TF_COCO_NAMES)
        cache_dir = Path(cache_dir) if cache_dir is not None else Path(tempfile.gettempdir()) / "reelgraph-models"
        core = ov.Core()
        graph = converted_graph(core, Path(weights), cache_dir, [1, self.input_size[1], self.input_size[0], 3])
        config = {"PERFORMANCE_HINT": "LATENCY"}
        if threads:
            config["INFERENCE_NUM_THREADS"] = int(threads)
        # a cache folder per converted graph: "empty" then means this graph was never compiled here
        self.model = compiled_model(core, graph, config, cache_dir / "openvino" / "compiled" / graph.parent.name)
        # The frozen graph's outputs, by their tensor names: boxes (y1, x1, y2, x2, normalised), class ids
        # (COCO 1..90), scores, and the number of valid rows.
        outputs = {name: o for o in self.model.outputs for name in o.get_names()}
        self._boxes, self._classes, self._scores, self._count = (
            outputs[f"{name}:0"] for name in ("detection_boxes", "detection_classes", "detection_scores",
                                              "num_detections"))
        self.request = self.model.create_infer_request()

    def detect(self, frames: list[Frame]) -> Detections:
        if not frames:
            return Detections.empty()
        boxes, scores, classes = [], [], []
        for frame in frames:
            h, w = frame.image.shape[:2]
            rgb = cv2.cvtColor(cv2.resize(frame.image, self.input_size, interpolation=cv2.INTER_LINEAR),
                               cv2.COLOR_BGR2RGB)
            result = self.request.infer([rgb[None]])
            count = int(result[self._count][0])
            score = result[self._scores][0, :count]
            cls = result[self._classes][0, :count].astype(np.int32)
            keep = (score >= self.confidence) & np.isin(cls, list(self.class_names))
            yxyx = np.clip(result[self._boxes][0, :count][keep], 0.0, 1.0)
            boxes.append(yxyx[:, [1, 0, 3, 2]] * np.array([w, h, w, h], np.float32))
            scores.append(score[keep])
            classes.append(cls[keep])
        return Detections.from_frames(frames, boxes, scores, classes)
