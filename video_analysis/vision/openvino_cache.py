"""Graphs converted to OpenVINO's format and compiled once into the shared model cache, published atomically."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)


def compiled_model(core, graph: Path, config: dict, shared: Path):
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


def converted_graph(core, weights: Path, cache_dir: Path, shape: list[int]) -> Path:
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

    return saved_graph(target, digest, build)


def saved_graph(target: Path, digest: str, build) -> Path:
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
