"""One place that turns a resolved checkpoint (backend + files) into a loaded model."""

from __future__ import annotations

from pathlib import Path


def load_model(backend: str, path: Path, config: Path | None = None, cache_dir: Path | None = None):
    """``cache_dir`` keeps what a backend derives from a checkpoint once (a converted graph, compiled code)."""
    if backend in ("openvino-tf", "opencv-tf", "ultralytics"):
        from video_analysis.vision.detectors import load_detector

        return load_detector(backend, path, config, cache_dir=cache_dir)
    if backend in ("sentence-transformers", "transformers-clip"):
        from video_analysis.vision.embedders import load_embedder

        return load_embedder(backend, path)
    if backend == "transformers-image-classification":
        from video_analysis.vision.appearance import ImageClassifier

        return ImageClassifier(path)
    if backend == "transformers-depth":
        from video_analysis.vision.appearance import DepthEstimator

        return DepthEstimator(path)
    if backend == "transformers-image-text-to-text":
        from video_analysis.vision.narration import VisionLanguageSummarizer

        return VisionLanguageSummarizer(path)
    raise ValueError(f"unknown model backend {backend!r}")
