"""YOLOX-Nano and PicoDet-S COCO ONNX exports (Apache-2.0): run on OpenVINO or ONNX Runtime, decoded, class-wise NMS."""

from __future__ import annotations

import hashlib
import logging
import tempfile
from pathlib import Path

import cv2
import numpy as np

from video_analysis.vision.coco_classes import COCO_NAMES
from video_analysis.vision.detections import Detections
from video_analysis.vision.frames import Frame
from video_analysis.vision.openvino_cache import compiled_model, saved_graph

log = logging.getLogger(__name__)

# Like the SSD's: weak boxes keep tracks alive through ByteTrack's second association without starting any.
ONNX_CONFIDENCE = 0.3
NMS_IOU = 0.5

PREPROCESSING_VERSION = "p1"  # bump when a detector's `_preprocess` or `_resize` changes


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
        model = compiled_model(core, graph, config, cache_dir / "openvino" / "compiled" / graph.parent.name)
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
        return Detections.from_frames(frames, boxes, scores, classes)


def _onnx_with_preprocessing(core, weights: Path, cache_dir: Path, kind: str, preprocess) -> Path:
    """The ONNX graph in OpenVINO's format taking 8-bit BGR pixels (NHWC), its own conversion folded in,
    saved once per graph (by content) into the cache (whole or absent, as `converted_graph`)."""
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

    return saved_graph(target, digest, build)


def _onnxruntime_has_cuda() -> bool:
    try:
        import onnxruntime as ort
    except ImportError:
        return False
    return "CUDAExecutionProvider" in ort.get_available_providers()


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


ONNX_DETECTORS = {"onnx-yolox": YoloxDetector, "onnx-picodet": PicoDetDetector}
