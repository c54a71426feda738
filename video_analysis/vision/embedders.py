"""Embedding models behind small interfaces: text (sentence-transformers) and image-text (CLIP-style).

Vectors are L2-normalised float32, so cosine distance in pgvector equals 1 - dot product.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


class TextEmbedder:
    """A sentence-transformers model from a local folder (e.g. all-MiniLM-L6-v2 shipped in a package)."""

    def __init__(self, path: Path, device: str = "cpu"):
        from sentence_transformers import SentenceTransformer

        # A local folder must never trigger a hub lookup; said per load, never through the process environment.
        self.model = SentenceTransformer(str(path), device=device, local_files_only=True)
        dimension = getattr(self.model, "get_embedding_dimension", None) or \
            self.model.get_sentence_embedding_dimension
        self.dim = int(dimension())

    def embed(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        return _normalise(self.model.encode(texts, batch_size=batch_size, convert_to_numpy=True,
                                            show_progress_bar=False))


class ImageTextEmbedder:
    """A CLIP-family checkpoint (transformers): images and text in one space, so text finds images."""

    def __init__(self, path: Path, device: str = "cpu"):
        import torch
        from transformers import AutoModel, AutoProcessor

        self.torch = torch
        self.device = device
        self.model = AutoModel.from_pretrained(str(path)).to(device).eval()
        self.processor = AutoProcessor.from_pretrained(str(path))
        self.dim = int(self.model.config.projection_dim)

    def embed_images(self, images_rgb: list[np.ndarray]) -> np.ndarray:
        if not images_rgb:
            return np.zeros((0, self.dim), np.float32)
        with self.torch.inference_mode():
            inputs = self.processor(images=images_rgb, return_tensors="pt").to(self.device)
            features = self.model.get_image_features(**inputs)
        return _normalise(_as_array(features))

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        with self.torch.inference_mode():
            inputs = self.processor(text=texts, return_tensors="pt", padding=True, truncation=True).to(self.device)
            features = self.model.get_text_features(**inputs)
        return _normalise(_as_array(features))


def _as_array(features) -> np.ndarray:
    tensor = getattr(features, "pooler_output", features)  # newer transformers return a model output
    return tensor.detach().float().cpu().numpy()


def load_embedder(backend: str, path: Path, device: str = "cpu"):
    if backend == "sentence-transformers":
        return TextEmbedder(path, device)
    if backend == "transformers-clip":
        return ImageTextEmbedder(path, device)
    raise ValueError(f"unknown embedding backend {backend!r}")
