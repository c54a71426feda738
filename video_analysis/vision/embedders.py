"""Embedding models behind small interfaces: text (sentence-transformers) and image-text (CLIP-style).

Vectors are L2-normalised float32, so cosine distance in pgvector equals 1 - dot product.
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)


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


def load_embedder(backend: str, path: Path, device: str = "cpu", onnx_cache: Path | None = None):
    """The model for ``backend``. With ``onnx_cache``, a sentence-transformers model on the CPU runs through
    ONNX Runtime (`load_text_embedder_onnx`), falling back to torch where no export can be made."""
    if backend == "sentence-transformers":
        if onnx_cache is not None and device == "cpu":
            return load_text_embedder_onnx(path, onnx_cache)
        return TextEmbedder(path, device)
    if backend == "transformers-clip":
        return ImageTextEmbedder(path, device)
    raise ValueError(f"unknown embedding backend {backend!r}")


def load_text_embedder_onnx(path: Path, cache: Path, threads: int = 1):
    """The text model through ONNX Runtime: from ``cache`` when exported before (~0.7 s: neither torch nor
    transformers is imported), else exported there from the torch model (~4 s, once per model). Where no
    export can be made (another pooling, no onnxruntime), the torch model, with a warning."""
    try:
        cached = OnnxTextEmbedder.cached(path, cache, threads)
    except Exception as exc:  # noqa: BLE001 - exported again below, or torch
        log.warning("the text model's ONNX export in %s did not load (%s: %s)", cache, type(exc).__name__, exc)
        cached = None
    if cached is not None:
        return cached
    embedder = TextEmbedder(path, "cpu")
    try:
        return OnnxTextEmbedder.exported(embedder, cache, threads, folder=path)
    except Exception as exc:  # noqa: BLE001 - torch embeds the same vectors, only slower to load and run
        log.warning("text is embedded through torch (%s: %s)", type(exc).__name__, exc)
        return embedder


# Sentences an exported model must embed as torch does before it replaces it (lengths and cases differ; the
# last is longer than the model's input, so truncation is checked too).
_EXPORT_CHECKS = ("a person in a red jacket walking north", "bottle", "  Two people near the door, one running  ",
                  "a gray car, stationary for 30 seconds in the restricted zone", "ÉLÈVE à vélo",
                  " ".join(["a person walks past the parked van and stops by the gate"] * 60))


class OnnxTextEmbedder:
    """A sentence-transformers model (a transformer, then the mean of its tokens) run by ONNX Runtime, its
    text split into tokens by the model's own ``tokenizer.json`` through `tokenizers`.

    Loads in well under a second, where importing sentence-transformers and torch takes 4-9 s in a fresh
    process: each run's `embeddings` and `summaries` steps paid that. A query takes ~10 ms on one CPU thread
    against ~38 ms through torch (benchmarks/README.md). Its vectors equal torch's to ~1e-7, so they are
    compared with stored ones as they are. An export is kept with torch's vectors for a few sentences and
    checked against them on every load: one that embeds differently is deleted, never used.
    """

    backend = "onnxruntime"

    def __init__(self, onnx_path: Path, tokenizer, dim: int, threads: int = 1):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = max(1, threads)
        options.inter_op_num_threads = 1
        # idle threads must not spin on the cores PostgreSQL needs next (as torch's did; see Settings)
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = onnxruntime.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
        self.inputs = [i.name for i in self.session.get_inputs()]
        self.onnx_path, self.tokenizer, self.dim, self.threads = Path(onnx_path), tokenizer, dim, max(1, threads)

    def with_threads(self, threads: int) -> OnnxTextEmbedder:
        """The same export on ``threads`` CPU threads (a new session; this one is left as it is)."""
        return self if max(1, threads) == self.threads else OnnxTextEmbedder(self.onnx_path, self.tokenizer,
                                                                            self.dim, threads)

    @classmethod
    def cached(cls, path: Path, cache: Path, threads: int = 1) -> OnnxTextEmbedder | None:
        """The export of the model in ``path`` kept in ``cache``, checked; None when there is none. One that
        does not load or fails its check is deleted (the next load exports again), and its error raised."""
        onnx_path, reference_path = _export_paths(path, cache)
        if not (onnx_path.exists() and reference_path.exists()):
            return None
        try:
            reference = json.loads(reference_path.read_text())
            tokenizer = _fast_tokenizer(Path(path) / reference.get("tokenizer", "."), int(reference["max_length"]))
            exported = cls(onnx_path, tokenizer, int(reference["dim"]), threads)
            _check(exported, np.asarray(reference["vectors"], np.float32))
        except Exception:
            # damaged, or embedding differently: deleted, so that the next load exports again
            onnx_path.unlink(missing_ok=True)
            reference_path.unlink(missing_ok=True)
            raise
        return exported

    @classmethod
    def exported(cls, embedder: TextEmbedder, cache: Path, threads: int = 1,
                 folder: Path | None = None) -> OnnxTextEmbedder:
        """``embedder``'s model in ONNX, exported into ``cache`` unless there already; ValueError when its
        pipeline is not a transformer and a mean, or the export does not embed as torch does. ``folder`` is
        the folder the model was loaded from (what `cached` is given), else its transformer's own."""
        modules = list(embedder.model)
        pooling = modules[1].get_config_dict() if len(modules) > 1 and hasattr(modules[1], "get_config_dict") else {}
        modes = {key for key, value in pooling.items() if key.startswith("pooling_mode_") and value}  # before 5.0
        mean = pooling.get("pooling_mode") == "mean" or modes == {"pooling_mode_mean_tokens"}
        if not (mean and type(modules[0]).__name__ == "Transformer"
                and all(type(m).__name__ == "Normalize" for m in modules[2:])):
            raise ValueError(f"not a transformer and a mean: {[type(m).__name__ for m in modules]}")
        folder = Path(folder) if folder is not None else Path(modules[0].auto_model.name_or_path)
        max_length = int(embedder.model.max_seq_length)
        tokenizer = _fast_tokenizer(_tokenizer_folder(folder, modules[0]), max_length)  # before any export
        onnx_path, reference_path = _export_paths(folder, cache)
        cache.mkdir(parents=True, exist_ok=True)
        if not onnx_path.exists():
            _write_whole(onnx_path, lambda partial: _export(modules[0].auto_model, embedder.model.tokenizer, partial))
        expected = embedder.embed(list(_EXPORT_CHECKS))
        exported = cls(onnx_path, tokenizer, embedder.dim, threads)
        try:
            _check(exported, expected)  # an export that differs is never used
        except ValueError:
            onnx_path.unlink(missing_ok=True)  # nor kept: the next start exports again
            raise
        reference = {"max_length": max_length, "dim": embedder.dim, "checks": list(_EXPORT_CHECKS),
                     "tokenizer": str(_tokenizer_folder(folder, modules[0]).relative_to(folder)),
                     "vectors": expected.tolist()}
        _write_whole(reference_path, lambda partial: partial.write_text(json.dumps(reference)))
        return exported

    def embed(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        vectors = []
        for start in range(0, len(texts), batch_size):
            # str() of each, as sentence-transformers does; its other text handling (lower-casing a model asks
            # for, prompts) is not repeated here: a model that uses it fails the check and stays on torch
            encodings = self.tokenizer.encode_batch([str(text) for text in texts[start:start + batch_size]])
            tokens = {"input_ids": np.array([e.ids for e in encodings], np.int64),
                      "attention_mask": np.array([e.attention_mask for e in encodings], np.int64),
                      "token_type_ids": np.array([e.type_ids for e in encodings], np.int64)}
            hidden = self.session.run(None, {name: tokens[name] for name in self.inputs})[0]
            mask = tokens["attention_mask"][..., None].astype(np.float32)
            vectors.append((hidden * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1e-9))
        return _normalise(np.concatenate(vectors))


def _fast_tokenizer(folder: Path, max_length: int):
    """The model's tokenizer.json through `tokenizers`, truncating and padding as sentence-transformers does
    (its own settings in the file, such as a shorter truncation, are replaced)."""
    from tokenizers import Tokenizer

    path = Path(folder) / "tokenizer.json"
    if not path.is_file():
        raise ValueError(f"no tokenizer.json in {folder}: only a fast tokenizer's file can be used without torch")
    tokenizer = Tokenizer.from_file(str(path))
    config_path = Path(folder) / "tokenizer_config.json"
    config = json.loads(config_path.read_text()) if config_path.is_file() else {}
    pad = config.get("pad_token") or "[PAD]"
    pad = pad.get("content") if isinstance(pad, dict) else pad
    pad_id = tokenizer.token_to_id(pad)
    if pad_id is None:
        raise ValueError(f"the tokenizer in {folder} has no padding token {pad!r}")
    tokenizer.no_truncation()
    tokenizer.enable_truncation(max_length=max_length)
    tokenizer.enable_padding(pad_id=pad_id, pad_token=pad)
    return tokenizer


def _tokenizer_folder(folder: Path, transformer) -> Path:
    """Where the model's tokenizer files are: its own folder, or the transformer's subfolder within it
    (``0_Transformer`` in older sentence-transformers layouts)."""
    own = Path(transformer.auto_model.name_or_path)
    inside = own.resolve().is_relative_to(Path(folder).resolve()) if own.exists() else False
    return own if inside and (own / "tokenizer.json").is_file() else Path(folder)


def _export_paths(folder: Path, cache: Path) -> tuple[Path, Path]:
    """The export of the weights in ``folder`` and its reference vectors, named after the weights (their
    files' names, sizes and times) and the export's format, so changed weights are exported again."""
    import hashlib

    folder = Path(folder)
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix != ".onnx") if folder.is_dir() else []
    stamp = "\n".join(f"{p.relative_to(folder)} {p.stat().st_size} {p.stat().st_mtime_ns}" for p in files)
    digest = hashlib.sha256(f"export {_EXPORT_FORMAT}\n{folder.resolve()}\n{stamp}".encode()).hexdigest()[:16]
    return cache / f"{digest}.onnx", cache / f"{digest}.json"


def _write_whole(path: Path, write) -> None:
    """``write(partial)`` then a rename: a process killed mid-write leaves no file under ``path``."""
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    try:
        write(partial)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


# Raised whenever _export writes a different graph or the reference changes. 2: tokens through `tokenizers`,
# torch's vectors kept beside the graph.
_EXPORT_FORMAT = 2


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


def _check(exported: OnnxTextEmbedder, expected: np.ndarray) -> None:
    """ValueError unless ``exported`` embeds the check sentences as torch did (``expected``)."""
    vectors = exported.embed(list(_EXPORT_CHECKS))
    if vectors.shape != expected.shape:
        raise ValueError(f"the ONNX export embeds {vectors.shape}, torch {expected.shape}")
    difference = float(np.abs(vectors - expected).max())
    if difference > 1e-4:
        raise ValueError(f"the ONNX export embeds differently from torch (largest difference {difference:.1e})")
