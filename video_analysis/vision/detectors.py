"""Detector backends behind one interface: frames in, ``Detections`` out.

- ``ultralytics``: any YOLO checkpoint (.pt, or ONNX, OpenVINO and TensorRT exports), on the device
  `loaders.model_device` chooses.
- ``openvino-tf``: SSD-MobileNet-v2 COCO (TensorFlow frozen graph) through OpenVINO, CPU, no network: the
  offline profile's detector (see benchmarks/README.md for its speed against OpenCV DNN).
- ``opencv-tf``: the same graph through OpenCV DNN, kept to compare against.
- ``onnx-yolox`` and ``onnx-picodet``: YOLOX-Nano and PicoDet-S (COCO, Apache-2.0) ONNX exports through
  ONNX Runtime, decoded here with class-wise NMS: more accurate than the SSD at a similar cost on the CPU
  (benchmarks/README.md), and licensed to ship.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
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


# The 80 COCO classes in the order detectors trained on COCO number them 0..79.
COCO_NAMES = dict(enumerate(name for _, name in sorted(_TF_COCO.items())))

log = logging.getLogger(__name__)

# Boxes scored below this reach the tracker too: ByteTrack keeps a track alive through them (its second,
# low-score association) without starting tracks from them. Chosen on ground truth (benchmarks/quality.py).
SSD_CONFIDENCE = 0.3


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

    def __init__(self, weights: Path, config: Path, confidence: float = SSD_CONFIDENCE):
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
        self.class_names = dict(_TF_COCO)
        cache_dir = Path(cache_dir) if cache_dir is not None else Path(tempfile.gettempdir()) / "reelgraph-models"
        core = ov.Core()
        graph = _converted_graph(core, Path(weights), cache_dir, [1, self.input_size[1], self.input_size[0], 3])
        config = {"PERFORMANCE_HINT": "LATENCY"}
        if threads:
            config["INFERENCE_NUM_THREADS"] = int(threads)
        # a cache folder per converted graph: "empty" then means this graph was never compiled here
        self.model = _compiled(core, graph, config, cache_dir / "openvino" / "compiled" / graph.parent.name)
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
        return _stack(frames, boxes, scores, classes)


def _compiled(core, graph: Path, config: dict, shared: Path):
    """The converted graph compiled for the CPU through OpenVINO's compiled-model cache (about 8 s to compile;
    from the cache, given the graph's path, OpenVINO loads the compiled blob without reading the graph: 0.9 s
    where reading, reshaping and then loading took 1.9). OpenVINO writes its cache files in place, so a
    process that finds the shared cache empty compiles into a folder of its own and then publishes each file
    by an atomic rename: a worker starting meanwhile never reads half a file."""
    shared.mkdir(parents=True, exist_ok=True)
    if any(p for p in shared.iterdir() if not p.name.startswith(".")):
        return core.compile_model(str(graph), "CPU", {**config, "CACHE_DIR": str(shared)})
    private = Path(tempfile.mkdtemp(prefix=".compiling-", dir=shared))
    try:
        compiled = core.compile_model(str(graph), "CPU", {**config, "CACHE_DIR": str(private)})
        for path in private.iterdir():
            os.replace(path, shared / path.name)
        return compiled
    finally:
        shutil.rmtree(private, ignore_errors=True)


def _converted_graph(core, weights: Path, cache_dir: Path, shape: list[int]) -> Path:
    """The TensorFlow graph in OpenVINO's format with its input ``shape`` fixed (weights kept in 32-bit floats,
    as the graph has them), converted once per graph (by content) and shape into the cache."""
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()[:16]
    target = Path(cache_dir) / "openvino" / f"{digest}-fp32-{'x'.join(map(str, shape))}"
    if (target / "model.xml").exists() and (target / "model.bin").exists():
        return target / "model.xml"
    log.info("converting %s to OpenVINO's format (once) into %s", weights.name, target)

    def build():
        model = core.read_model(str(weights))
        model.reshape(shape)
        return model

    return _saved_graph(target, digest, build)


def _saved_graph(target: Path, digest: str, build) -> Path:
    """``target``/model.xml, saved from ``build()`` once: written into a folder of its own, then renamed into
    place (atomic: another worker sees all of it or none)."""
    import openvino as ov

    if (target / "model.xml").exists() and (target / "model.bin").exists():
        return target / "model.xml"
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=f".{digest}-", dir=target.parent))
    try:
        ov.save_model(build(), str(partial / "model.xml"), compress_to_fp16=False)
        try:
            os.rename(partial, target)
        except OSError:
            if not (target / "model.xml").exists():
                raise
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return target / "model.xml"


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
        return _stack(frames, boxes, scores, classes)


# Like the SSD's: weak boxes keep tracks alive through ByteTrack's second association without starting any.
ONNX_CONFIDENCE = 0.3
NMS_IOU = 0.5


def _class_wise_nms(xyxy: np.ndarray, scores: np.ndarray, classes: np.ndarray,
                    iou: float = NMS_IOU) -> np.ndarray:
    """Indices kept by non-maximum suppression within each class (boxes of different classes never
    suppress each other: a person carrying a bag keeps both)."""
    if not len(scores):
        return np.zeros(0, np.int64)
    xywh = np.concatenate([xyxy[:, :2], xyxy[:, 2:] - xyxy[:, :2]], axis=1)
    kept = cv2.dnn.NMSBoxesBatched(xywh.tolist(), scores.tolist(), classes.tolist(), 0.0, iou)
    return np.asarray(kept, np.int64).reshape(-1)


class OnnxCocoDetector:
    """A COCO detector exported to ONNX with NMS outside the graph.

    On the CPU it runs through OpenVINO, compiled once into the model cache (PicoDet-S: 13 ms a frame on
    2 threads, against 55 ms through ONNX Runtime; benchmarks/README.md); on a GPU through ONNX Runtime's CUDA
    provider where it is installed. Subclasses say how a frame becomes the input tensor and how the raw
    outputs become boxes in input pixels; the rest (threshold, class-wise NMS, back to frame pixels) is shared.
    The exports take one frame a call (their batch dimension is fixed at 1), so a batch goes frame by frame."""

    input_size = 416

    def __init__(self, weights: Path, confidence: float = ONNX_CONFIDENCE, threads: int | None = None,
                 device: str = "cpu", cache_dir: Path | None = None):
        self.confidence = confidence
        self.class_names = dict(COCO_NAMES)
        if device.startswith("cuda") and _onnxruntime_has_cuda():
            self._run, self.runtime = self._onnxruntime(weights, threads, device)
        else:
            self._run = self._openvino(weights, threads, cache_dir)
            self.runtime = "openvino"

    def _openvino(self, weights: Path, threads: int | None, cache_dir: Path | None):
        """The graph with the frame's conversion folded in (8-bit BGR pixels in; the model's colour order,
        scaling and layout done by OpenVINO), saved once into the cache and compiled from there."""
        import openvino as ov

        core = ov.Core()
        config = {"PERFORMANCE_HINT": "LATENCY"}
        if threads:
            config["INFERENCE_NUM_THREADS"] = int(threads)
        cache_dir = Path(cache_dir) if cache_dir is not None else Path(tempfile.gettempdir()) / "reelgraph-models"
        graph = _onnx_with_preprocessing(core, Path(weights), cache_dir, type(self).__name__, self._preprocess)
        model = _compiled(core, graph, config, cache_dir / "openvino" / "compiled" / graph.parent.name)
        request = model.create_infer_request()
        ports = list(model.outputs)

        def run(pixels: np.ndarray) -> list[np.ndarray]:
            result = request.infer([pixels[None]])
            return [result[port] for port in ports]

        return run

    def _onnxruntime(self, weights: Path, threads: int | None, device: str):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.log_severity_level = 3  # the exports list their weights as inputs too: a warning per weight
        if threads:
            options.intra_op_num_threads = int(threads)
        providers = [("CUDAExecutionProvider", {"device_id": int(device.partition(":")[2] or 0)}),
                     "CPUExecutionProvider"]
        session = ort.InferenceSession(str(weights), options, providers=providers)
        name = session.get_inputs()[0].name
        used = "onnxruntime-cuda" if session.get_providers()[0] == "CUDAExecutionProvider" else "onnxruntime-cpu"
        if used != "onnxruntime-cuda":
            log.warning("ONNX Runtime could not use %s for %s; it runs on the CPU", device, Path(weights).name)
        return (lambda pixels: session.run(None, {name: self._tensor(pixels)})), used

    def _resize(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(the frame as the model's input size, 8-bit BGR; the [sx, sy, sx, sy] back to the frame's pixels)."""
        raise NotImplementedError

    def _tensor(self, pixels: np.ndarray) -> np.ndarray:
        """The input tensor [1, 3, H, W] from the resized pixels (where OpenVINO does not do it in the graph)."""
        raise NotImplementedError

    def _preprocess(self, steps, color_format) -> None:
        """The same conversion as `_tensor`, as OpenVINO preprocessing steps after the conversion to float."""
        raise NotImplementedError

    def _decode(self, outputs: list[np.ndarray], threshold: float) -> tuple[np.ndarray, np.ndarray]:
        """(boxes xyxy in input pixels [N, 4], class scores [N, 80]) of the cells whose best class scores at
        least ``threshold`` (the rest are never decoded)."""
        raise NotImplementedError

    def detect(self, frames: list[Frame]) -> Detections:
        if not frames:
            return Detections.empty()
        boxes, scores, classes = [], [], []
        for frame in frames:
            pixels, scale = self._resize(frame.image)
            xyxy, class_scores = self._decode(self._run(pixels), self.confidence)
            cls = class_scores.argmax(axis=1)
            score = class_scores[np.arange(len(cls)), cls]
            h, w = frame.image.shape[:2]
            xyxy = np.clip(xyxy * scale, 0, [w, h, w, h])
            kept = _class_wise_nms(xyxy, score, cls)
            boxes.append(xyxy[kept])
            scores.append(score[kept])
            classes.append(cls[kept])
        return _stack(frames, boxes, scores, classes)


PREPROCESSING_VERSION = "p1"  # bump when a detector's `_preprocess` or `_resize` changes


def _onnx_with_preprocessing(core, weights: Path, cache_dir: Path, kind: str, preprocess) -> Path:
    """The ONNX graph in OpenVINO's format taking 8-bit BGR pixels (NHWC), its own conversion folded in,
    saved once per graph (by content) into the cache (whole or absent, as `_converted_graph`)."""
    import openvino as ov
    from openvino.preprocess import ColorFormat, PrePostProcessor

    digest = hashlib.sha256(weights.read_bytes()).hexdigest()[:16]
    # the folder names the conversion's version too: a change to it must not reuse a graph saved by an older one
    target = Path(cache_dir) / "openvino" / f"{digest}-{kind.lower()}-u8-{PREPROCESSING_VERSION}"

    def build():
        ppp = PrePostProcessor(core.read_model(str(weights)))
        ppp.input().tensor().set_element_type(ov.Type.u8).set_layout(ov.Layout("NHWC")).set_color_format(
            ColorFormat.BGR)
        ppp.input().model().set_layout(ov.Layout("NCHW"))
        preprocess(ppp.input().preprocess().convert_element_type(ov.Type.f32), ColorFormat)
        return ppp.build()

    return _saved_graph(target, digest, build)


def _grid_centres(size: int, strides: tuple[int, ...], offset: float) -> tuple[np.ndarray, np.ndarray]:
    """(cell positions [N, 2] in cells + offset, each cell's stride [N]) over every stride's grid, row-major."""
    cells, steps = [], []
    for stride in strides:
        n = -(-size // stride)
        ys, xs = np.mgrid[0:n, 0:n]
        cells.append(np.stack([xs.ravel(), ys.ravel()], axis=1) + offset)
        steps.append(np.full(n * n, stride))
    return np.concatenate(cells).astype(np.float32), np.concatenate(steps).astype(np.float32)


class YoloxDetector(OnnxCocoDetector):
    """YOLOX-Nano (Megvii, Apache-2.0): BGR 0-255, letterboxed at the top left on grey 114, no normalisation;
    one output [1, N, 85]: centre offsets and log sizes per grid cell (strides 8, 16, 32), objectness and
    class scores already sigmoid."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._cells, self._strides = _grid_centres(self.input_size, (8, 16, 32), 0.0)

    def _resize(self, image):
        h, w = image.shape[:2]
        ratio = min(self.input_size / h, self.input_size / w)
        resized = cv2.resize(image, (max(1, round(w * ratio)), max(1, round(h * ratio))),
                             interpolation=cv2.INTER_LINEAR)
        padded = np.full((self.input_size, self.input_size, 3), 114, np.uint8)
        padded[:resized.shape[0], :resized.shape[1]] = resized
        return padded, np.full(4, 1.0 / ratio, np.float32)

    def _tensor(self, pixels):
        return np.ascontiguousarray(pixels.transpose(2, 0, 1)[None].astype(np.float32))

    def _preprocess(self, steps, color_format):
        pass  # BGR, 0-255: the conversion to float is all

    def _decode(self, outputs, threshold):
        raw = outputs[0][0]
        scores = raw[:, 4:5] * raw[:, 5:]
        keep = scores.max(axis=1) >= threshold
        raw, scores = raw[keep], scores[keep]
        strides = self._strides[keep, None]
        centre = (raw[:, :2] + self._cells[keep]) * strides
        size = np.exp(np.minimum(raw[:, 2:4], 10.0)) * strides
        return np.concatenate([centre - size / 2, centre + size / 2], axis=1), scores


class PicoDetDetector(OnnxCocoDetector):
    """PicoDet-S (PaddleDetection, Apache-2.0): RGB, resized to the input without keeping the aspect, ImageNet
    mean and deviation; per stride (8, 16, 32, 64) a score map [1, N, 80] already sigmoid and a box map
    [1, N, 32]: distances left, top, right, bottom from the cell's centre, each a distribution over 8 bins
    (GFL) whose expectation, times the stride, is the distance."""

    _mean = np.array([0.485, 0.456, 0.406], np.float32) * 255
    _std = np.array([0.229, 0.224, 0.225], np.float32) * 255
    bins = 8

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._cells, self._strides = _grid_centres(self.input_size, (8, 16, 32, 64), 0.5)

    def _resize(self, image):
        h, w = image.shape[:2]
        resized = cv2.resize(image, (self.input_size, self.input_size), interpolation=cv2.INTER_LINEAR)
        sx, sy = w / self.input_size, h / self.input_size
        return resized, np.array([sx, sy, sx, sy], np.float32)

    def _tensor(self, pixels):
        rgb = cv2.cvtColor(pixels, cv2.COLOR_BGR2RGB).astype(np.float32)
        return np.ascontiguousarray(((rgb - self._mean) / self._std).transpose(2, 0, 1)[None])

    def _preprocess(self, steps, color_format):
        steps.convert_color(color_format.RGB).mean(self._mean.tolist()).scale(self._std.tolist())

    def _decode(self, outputs, threshold):
        # the score maps and box maps, each in stride order (the largest map first), told apart by their shapes
        maps = sorted((o[0] for o in outputs), key=lambda o: -o.shape[0])
        scores = np.concatenate([o for o in maps if o.shape[1] == 80])
        keep = scores.max(axis=1) >= threshold
        logits = np.concatenate([o for o in maps if o.shape[1] == 4 * self.bins])[keep].reshape(-1, 4, self.bins)
        logits = np.exp(logits - logits.max(axis=2, keepdims=True))
        distances = (logits / logits.sum(axis=2, keepdims=True)) @ np.arange(self.bins, dtype=np.float32)
        distances *= self._strides[keep, None]
        centre = self._cells[keep] * self._strides[keep, None]
        xyxy = np.concatenate([centre - distances[:, :2], centre + distances[:, 2:]], axis=1)
        return xyxy, scores[keep]


def _onnxruntime_has_cuda() -> bool:
    try:
        import onnxruntime as ort
    except ImportError:
        return False
    return "CUDAExecutionProvider" in ort.get_available_providers()


ONNX_DETECTORS = {"onnx-yolox": YoloxDetector, "onnx-picodet": PicoDetDetector}


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
