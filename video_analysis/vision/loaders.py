"""One place that turns a resolved checkpoint (backend + files) into a loaded model, on one chosen device."""

from __future__ import annotations

from pathlib import Path

# Backends that run on the CPU whatever the device: they get no device argument.
CPU_ONLY_BACKENDS = ("openvino-tf", "opencv-tf")


def model_device(requested: str | None = None) -> str:
    """The device every model that can use a GPU is built on: ``auto`` (or nothing) takes the first CUDA
    device when torch sees one and the CPU otherwise; ``cpu``, ``cuda`` or ``cuda:N`` are taken as asked, and
    asking for CUDA where torch sees none is an error rather than a silent fall back."""
    choice = (requested or "auto").strip().lower()
    if choice == "cpu" or (choice == "auto" and not _cuda_driver_visible()):
        return "cpu"  # without importing torch: a model that runs without it loads in a fraction of the time
    import torch

    if choice == "auto":
        return "cuda:0" if torch.cuda.is_available() else "cpu"
    if choice == "cuda" or choice.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise RuntimeError(f"device {choice!r} was asked for (REELGRAPH_DEVICE), but torch sees no CUDA device "
                               "on this machine; use auto or cpu")
        return "cuda:0" if choice == "cuda" else choice
    raise ValueError(f"unknown device {requested!r}: use auto, cpu, cuda or cuda:N")


def _cuda_driver_visible() -> bool:
    """Whether a GPU driver torch could use is visible here (NVIDIA's, or AMD's, which a ROCm torch shows as
    CUDA): where none is, torch can see no CUDA device either."""
    import ctypes.util

    if any(Path(p).exists() for p in ("/dev/nvidiactl", "/dev/nvidia0", "/proc/driver/nvidia", "/dev/dxg",
                                      "/dev/kfd")):
        return True
    return any(ctypes.util.find_library(name) is not None for name in ("cuda", "amdhip64"))


def load_model(backend: str, path: Path, config: Path | None = None, cache_dir: Path | None = None,
               device: str | None = None, text_runtime: str = "torch"):
    """``cache_dir`` keeps what a backend derives from a checkpoint once (a converted graph, compiled code);
    ``device`` is as `model_device` takes it; ``text_runtime`` "onnx" runs a text model on the CPU through
    ONNX Runtime (exported into ``cache_dir``)."""
    device = "cpu" if backend in CPU_ONLY_BACKENDS else model_device(device)
    if backend in ("openvino-tf", "opencv-tf", "ultralytics", "onnx-yolox", "onnx-picodet"):
        from video_analysis.vision.detectors import load_detector

        return load_detector(backend, path, config, cache_dir=cache_dir, device=device)
    if backend in ("sentence-transformers", "transformers-clip"):
        from video_analysis.vision.embedders import load_embedder

        onnx_cache = cache_dir / "onnx" if text_runtime == "onnx" and cache_dir is not None else None
        return load_embedder(backend, path, device, onnx_cache=onnx_cache)
    if backend == "transformers-image-classification":
        from video_analysis.vision.appearance import ImageClassifier

        return ImageClassifier(path, device)
    if backend == "transformers-depth":
        from video_analysis.vision.appearance import DepthEstimator

        return DepthEstimator(path, device)
    if backend == "transformers-image-text-to-text":
        from video_analysis.vision.narration import VisionLanguageSummarizer

        return VisionLanguageSummarizer(path, device)
    raise ValueError(f"unknown model backend {backend!r}")
