"""Detector backends behind one interface: frames in, ``Detections`` out; `load_detector` picks one by name.

- ``ultralytics``: any YOLO checkpoint (.pt, or ONNX, OpenVINO and TensorRT exports), on the device
  `loaders.model_device` chooses (ultralytics_detector.py).
- ``openvino-tf``: SSD-MobileNet-v2 COCO (TensorFlow frozen graph) through OpenVINO, CPU, no network: the
  offline profile's detector (see benchmarks/README.md for its speed against OpenCV DNN) (ssd_detectors.py).
- ``opencv-tf``: the same graph through OpenCV DNN, kept to compare against.
- ``onnx-yolox`` and ``onnx-picodet``: YOLOX-Nano and PicoDet-S (COCO, Apache-2.0) ONNX exports through
  OpenVINO or ONNX Runtime, decoded with class-wise NMS: more accurate than the SSD at a similar cost on the
  CPU (benchmarks/README.md), and licensed to ship (onnx_detectors.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from video_analysis.vision.detections import Detections
from video_analysis.vision.frames import Frame
from video_analysis.vision.onnx_detectors import ONNX_DETECTORS
from video_analysis.vision.ssd_detectors import OpenCVSSDDetector, OpenVINOSSDDetector
from video_analysis.vision.ultralytics_detector import UltralyticsDetector


class Detector(Protocol):
    class_names: dict[int, str]

    def detect(self, frames: list[Frame]) -> Detections: ...


def load_detector(backend: str, weights: Path, config: Path | None = None, confidence: float | None = None,
                  cache_dir: Path | None = None, device: str = "cpu"):
    if backend == "openvino-tf":
        return OpenVINOSSDDetector(weights, cache_dir, **({"confidence": confidence} if confidence is not None else {}))
    if backend == "opencv-tf":
        if config is None:
            raise ValueError("the opencv-tf backend needs the graph's .pbtxt config")
        return OpenCVSSDDetector(weights, config, **({"confidence": confidence} if confidence is not None else {}))
    if backend in ONNX_DETECTORS:
        return ONNX_DETECTORS[backend](weights, device=device, cache_dir=cache_dir,
                                       **({"confidence": confidence} if confidence is not None else {}))
    if backend == "ultralytics":
        return UltralyticsDetector(weights, device=device,
                                   **({"confidence": confidence} if confidence is not None else {}))
    raise ValueError(f"unknown detector backend {backend!r}")
