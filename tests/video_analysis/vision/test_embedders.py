"""The text model on the CPU: the packaged model exported to ONNX once, embedding as torch does, loaded
without torch afterwards."""

import json
import subprocess
import sys

import numpy as np
import pytest

from tests.helpers import REPO

QUERIES = ["bottle", "a person in a red jacket walking north", "was anyone hanging around the door?",
           "gray car, stationary for 30 seconds", "  people   near the kitchen table  ", "ÉLÈVE à vélo"]


@pytest.fixture(scope="module")
def text_model(tmp_path_factory):
    from models import ModelRegistry

    return ModelRegistry(tmp_path_factory.mktemp("models"), profile="offline").resolve("text_embedder")


@pytest.fixture(scope="module")
def torch_embedder(text_model):
    from video_analysis.vision.loaders import load_model

    embedder = load_model(text_model.backend, text_model.path, device="cpu", text_runtime="torch")
    assert embedder.backend == "torch"
    return embedder


def test_the_onnx_export_embeds_queries_as_torch_does_and_is_made_once(torch_embedder, tmp_path):
    from video_analysis.vision.embedders import OnnxTextEmbedder

    exported = OnnxTextEmbedder.exported(torch_embedder, tmp_path / "onnx")
    assert exported.backend == "onnxruntime" and exported.dim == torch_embedder.dim == 384
    vectors, expected = exported.embed(QUERIES), torch_embedder.embed(QUERIES)
    assert vectors.shape == (len(QUERIES), 384) and vectors.dtype == np.float32
    assert np.abs(vectors - expected).max() < 1e-5
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert np.allclose(exported.embed(QUERIES[:1]), vectors[:1], atol=1e-6)  # alone as in a batch
    written = sorted((tmp_path / "onnx").iterdir())  # the graph and torch's vectors: nothing half-written
    assert [p.suffix for p in written] == [".json", ".onnx"] and written[0].stem == written[1].stem
    made = written[1].stat().st_mtime_ns
    again = OnnxTextEmbedder.exported(torch_embedder, tmp_path / "onnx")
    assert written[1].stat().st_mtime_ns == made and np.allclose(again.embed(QUERIES), vectors, atol=1e-6)


_LOAD_IN_A_FRESH_PROCESS = """
import json, sys, time
from pathlib import Path
from video_analysis.vision.loaders import load_model
started = time.perf_counter()
embedder = load_model(sys.argv[1], Path(sys.argv[2]), cache_dir=Path(sys.argv[3]), device=sys.argv[5],
                      text_runtime="onnx")
vectors = embedder.embed(json.loads(sys.argv[4])).tolist()
print(json.dumps({"backend": embedder.backend, "seconds": time.perf_counter() - started, "vectors": vectors,
                  "imported": [m for m in ("torch", "transformers", "sentence_transformers") if m in sys.modules]}))
"""


def _load_in_a_fresh_process(text_model, cache):
    import torch

    device = "cpu" if torch.cuda.is_available() else "auto"  # "auto" is the GPU there, and torch runs it
    out = subprocess.run([sys.executable, "-c", _LOAD_IN_A_FRESH_PROCESS, text_model.backend, str(text_model.path),
                          str(cache), json.dumps(QUERIES), device], capture_output=True, text=True, cwd=REPO,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_a_step_loads_the_exported_model_without_torch_and_embeds_as_torch_does(text_model, torch_embedder, tmp_path):
    first = _load_in_a_fresh_process(text_model, tmp_path)  # exports: torch loads once
    assert first["backend"] == "onnxruntime" and "torch" in first["imported"]
    again = _load_in_a_fresh_process(text_model, tmp_path)
    assert again["backend"] == "onnxruntime" and again["imported"] == []  # neither torch nor transformers
    assert np.abs(np.asarray(again["vectors"]) - torch_embedder.embed(QUERIES)).max() < 1e-5

    # an export that no longer embeds as torch did is deleted, never used, and made again
    [reference] = (tmp_path / "onnx").glob("*.json")
    stored = json.loads(reference.read_text())
    stored["vectors"][0] = [-v for v in stored["vectors"][0]]
    reference.write_text(json.dumps(stored))
    remade = _load_in_a_fresh_process(text_model, tmp_path)
    assert remade["backend"] == "onnxruntime" and "torch" in remade["imported"]
    assert json.loads(reference.read_text())["vectors"][0] != stored["vectors"][0]


def test_where_no_export_can_be_made_the_text_model_runs_through_torch(text_model, tmp_path, monkeypatch, caplog):
    from video_analysis.vision.embedders import OnnxTextEmbedder
    from video_analysis.vision.loaders import load_model

    def refuse(*args, **kwargs):
        raise ValueError("not a transformer and a mean")

    monkeypatch.setattr(OnnxTextEmbedder, "exported", classmethod(refuse))
    embedder = load_model(text_model.backend, text_model.path, cache_dir=tmp_path, device="cpu", text_runtime="onnx")
    assert embedder.backend == "torch" and "text is embedded through torch" in caplog.text


def test_a_model_pooled_otherwise_is_refused_and_not_exported(torch_embedder, tmp_path, monkeypatch):
    from video_analysis.vision.embedders import OnnxTextEmbedder

    pooling = torch_embedder.model[1]
    monkeypatch.setattr(pooling, "get_config_dict", lambda: {"pooling_mode": "cls"})
    with pytest.raises(ValueError, match="not a transformer and a mean"):
        OnnxTextEmbedder.exported(torch_embedder, tmp_path / "onnx")
    assert not (tmp_path / "onnx").exists()


def test_the_service_embeds_queries_through_torch_when_no_export_can_be_made(torch_embedder, monkeypatch, caplog):
    from configuration.settings import Settings
    from orchestration.cli import _fast_query_embedder
    from video_analysis.vision.embedders import OnnxTextEmbedder

    def refuse(*args, **kwargs):
        raise ValueError("not a transformer and a mean")

    monkeypatch.setattr(OnnxTextEmbedder, "exported", classmethod(refuse))
    assert _fast_query_embedder(torch_embedder, Settings.from_env()) is torch_embedder
    assert "queries are embedded through torch" in caplog.text
    monkeypatch.setenv("REELGRAPH_QUERY_EMBEDDER", "tensorrt")  # the setting's former name, still read
    with pytest.raises(ValueError, match="REELGRAPH_QUERY_EMBEDDER must be one of onnx, torch"):
        Settings.from_env()
    monkeypatch.setenv("REELGRAPH_TEXT_RUNTIME", "torch")
    assert Settings.from_env().text_runtime == "torch"
    monkeypatch.setenv("REELGRAPH_TEXT_RUNTIME", "tpu")
    with pytest.raises(ValueError, match="REELGRAPH_TEXT_RUNTIME must be one of onnx, torch"):
        Settings.from_env()


def test_an_export_is_loaded_from_the_cache_and_one_that_embeds_otherwise_is_made_again(tiny_text_embedder, tmp_path):
    from video_analysis.vision.embedders import OnnxTextEmbedder, TextEmbedder, load_text_embedder_onnx

    torch_vectors = TextEmbedder(tiny_text_embedder).embed(QUERIES)
    assert OnnxTextEmbedder.cached(tiny_text_embedder, tmp_path) is None  # nothing exported yet
    first = load_text_embedder_onnx(tiny_text_embedder, tmp_path)
    cached = OnnxTextEmbedder.cached(tiny_text_embedder, tmp_path, threads=2)
    assert first.backend == cached.backend == "onnxruntime" and cached.threads == 2
    assert np.abs(cached.embed(QUERIES) - torch_vectors).max() < 1e-5

    [graph] = tmp_path.glob("*.onnx")
    graph.write_bytes(OnnxTextEmbedder.__doc__.encode())  # not a graph at all
    again = load_text_embedder_onnx(tiny_text_embedder, tmp_path)  # warned, exported again
    assert again.backend == "onnxruntime" and np.abs(again.embed(QUERIES) - torch_vectors).max() < 1e-5
    assert OnnxTextEmbedder.cached(tiny_text_embedder, tmp_path) is not None
