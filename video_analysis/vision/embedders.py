"""Embedding models behind small interfaces: text (sentence-transformers) and image-text (CLIP-style).

Vectors are L2-normalised float32, so cosine distance in pgvector equals 1 - dot product.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np


def _normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


class TextEmbedder:
    """A sentence-transformers model from a local folder (e.g. all-MiniLM-L6-v2 shipped in a package)."""

    backend = "torch"

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

    backend = "torch"

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


# Sentences an exported model must embed as torch does before it replaces it (lengths and cases differ).
_EXPORT_CHECKS = ("a person in a red jacket walking north", "bottle", "  Two people near the door, one running  ",
                  "a gray car, stationary for 30 seconds in the restricted zone")


class OnnxTextEmbedder:
    """A sentence-transformers model (a transformer, then the mean of its tokens) run by ONNX Runtime.

    For the review service, whose answer waits on one query's embedding: ~10 ms on one CPU thread against
    ~38 ms through torch (benchmarks/README.md). Its vectors equal torch's to ~1e-7, so they are compared
    with the stored ones as they are; an export that does not is never used. Exported once per model into
    ``cache`` (~4 s), then loaded from there.
    """

    backend = "onnxruntime"

    def __init__(self, onnx_path: Path, tokenizer, max_length: int, dim: int, threads: int = 1):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = max(1, threads)
        options.inter_op_num_threads = 1
        # idle threads must not spin on the cores PostgreSQL needs next (as torch's did; see Settings)
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = onnxruntime.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
        self.inputs = [i.name for i in self.session.get_inputs()]
        self.tokenizer, self.max_length, self.dim = tokenizer, max_length, dim

    @classmethod
    def exported(cls, embedder: TextEmbedder, cache: Path, threads: int = 1) -> OnnxTextEmbedder:
        """``embedder``'s model in ONNX, exported into ``cache`` unless there already; ValueError when its
        pipeline is not a transformer and a mean, or the export does not embed as torch does."""
        modules = list(embedder.model)
        pooling = modules[1].get_config_dict() if len(modules) > 1 and hasattr(modules[1], "get_config_dict") else {}
        modes = {key for key, value in pooling.items() if key.startswith("pooling_mode_") and value}  # before 5.0
        mean = pooling.get("pooling_mode") == "mean" or modes == {"pooling_mode_mean_tokens"}
        if not (mean and type(modules[0]).__name__ == "Transformer"
                and all(type(m).__name__ == "Normalize" for m in modules[2:])):
            raise ValueError(f"not a transformer and a mean: {[type(m).__name__ for m in modules]}")
        tokenizer, max_length = embedder.model.tokenizer, int(embedder.model.max_seq_length)
        onnx_path = cache / f"{_weights_digest(embedder)}.onnx"
        if not onnx_path.exists():
            cache.mkdir(parents=True, exist_ok=True)
            partial = onnx_path.with_name(f".{onnx_path.name}.{os.getpid()}")
            try:
                _export(modules[0].auto_model, tokenizer, partial)
                os.replace(partial, onnx_path)  # whole or not at all: a process killed mid-export leaves none
            finally:
                partial.unlink(missing_ok=True)
        exported = cls(onnx_path, tokenizer, max_length, embedder.dim, threads)
        try:
            _check(exported, embedder)  # on every load (~0.1 s): an export that differs is never used
        except ValueError:
            onnx_path.unlink(missing_ok=True)  # nor kept: the next start exports again
            raise
        return exported

    def embed(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        vectors = []
        for start in range(0, len(texts), batch_size):
            batch = [str(text) for text in texts[start:start + batch_size]]  # as sentence-transformers 6
            tokens = self.tokenizer(batch, padding=True, truncation="longest_first", max_length=self.max_length,
                                    return_tensors="np")
            hidden = self.session.run(None, {name: tokens[name].astype(np.int64) for name in self.inputs})[0]
            mask = tokens["attention_mask"][..., None].astype(np.float32)
            vectors.append((hidden * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1e-9))
        return _normalise(np.concatenate(vectors))


def _weights_digest(embedder: TextEmbedder) -> str:
    """Names an export after the weights it came from (their files' names, sizes and times) and the exporter."""
    import hashlib

    import torch

    folder = Path(embedder.model[0].auto_model.name_or_path)
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix != ".onnx") if folder.is_dir() else []
    stamp = "\n".join(f"{p.relative_to(folder)} {p.stat().st_size} {p.stat().st_mtime_ns}" for p in files)
    exporter = f"export {_EXPORT_FORMAT}, torch {torch.__version__}"
    return hashlib.sha256(f"{exporter}\n{folder}\n{stamp}".encode()).hexdigest()[:16]


_EXPORT_FORMAT = 1  # raised whenever _export writes a different graph


def _export(model, tokenizer, path: Path) -> None:
    import torch

    names = [name for name in tokenizer.model_input_names if name in ("input_ids", "attention_mask", "token_type_ids")]

    class LastHiddenState(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, *inputs):
            return self.model(**dict(zip(names, inputs, strict=True))).last_hidden_state

    sample = tokenizer(["a person walking"], return_tensors="pt")
    axes = {name: {0: "batch", 1: "tokens"} for name in [*names, "hidden"]}
    with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's notes on BERT's graph; _check compares the result
        torch.onnx.export(LastHiddenState().eval(), tuple(sample[name] for name in names), str(path),
                          input_names=names, output_names=["hidden"], dynamic_axes=axes, opset_version=17,
                          dynamo=False)


def _check(exported: OnnxTextEmbedder, embedder: TextEmbedder) -> None:
    difference = float(np.abs(exported.embed(list(_EXPORT_CHECKS)) - embedder.embed(list(_EXPORT_CHECKS))).max())
    if difference > 1e-4:
        raise ValueError(f"the ONNX export embeds differently from torch (largest difference {difference:.1e})")
