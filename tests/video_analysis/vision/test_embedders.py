"""The review service's query embedder: the packaged text model exported to ONNX, embedding as torch does."""

import numpy as np
import pytest

QUERIES = ["bottle", "a person in a red jacket walking north", "was anyone hanging around the door?",
           "gray car, stationary for 30 seconds", "  people   near the kitchen table  ", "ÉLÈVE à vélo"]


@pytest.fixture(scope="module")
def torch_embedder():
    from resources import ModelRegistryResource

    return ModelRegistryResource(profile="offline").load("text_embedder")[1]


def test_the_onnx_export_embeds_queries_as_torch_does_and_is_made_once(torch_embedder, tmp_path):
    from video_analysis.vision.embedders import OnnxTextEmbedder

    exported = OnnxTextEmbedder.exported(torch_embedder, tmp_path / "onnx")
    assert exported.backend == "onnxruntime" and exported.dim == torch_embedder.dim == 384
    vectors, expected = exported.embed(QUERIES), torch_embedder.embed(QUERIES)
    assert vectors.shape == (len(QUERIES), 384) and vectors.dtype == np.float32
    assert np.abs(vectors - expected).max() < 1e-5
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert np.allclose(exported.embed(QUERIES[:1]), vectors[:1], atol=1e-6)  # alone as in a batch
    [written] = list((tmp_path / "onnx").iterdir())  # the export only: nothing half-written beside it
    made = written.stat().st_mtime_ns
    again = OnnxTextEmbedder.exported(torch_embedder, tmp_path / "onnx")
    assert written.stat().st_mtime_ns == made and np.allclose(again.embed(QUERIES), vectors, atol=1e-6)


def test_a_model_pooled_otherwise_is_refused_and_not_exported(torch_embedder, tmp_path, monkeypatch):
    from video_analysis.vision.embedders import OnnxTextEmbedder

    pooling = torch_embedder.model[1]
    monkeypatch.setattr(pooling, "get_config_dict", lambda: {"pooling_mode": "cls"})
    with pytest.raises(ValueError, match="not a transformer and a mean"):
        OnnxTextEmbedder.exported(torch_embedder, tmp_path / "onnx")
    assert not (tmp_path / "onnx").exists()


def test_the_service_embeds_queries_through_torch_when_no_export_can_be_made(torch_embedder, monkeypatch, caplog):
    from orchestration.cli import _fast_query_embedder
    from video_analysis.runtime.settings import Settings
    from video_analysis.vision.embedders import OnnxTextEmbedder

    def refuse(*args, **kwargs):
        raise ValueError("not a transformer and a mean")

    monkeypatch.setattr(OnnxTextEmbedder, "exported", classmethod(refuse))
    assert _fast_query_embedder(torch_embedder, Settings.from_env()) is torch_embedder
    assert "queries are embedded through torch" in caplog.text
    monkeypatch.setenv("REELGRAPH_QUERY_EMBEDDER", "tensorrt")
    with pytest.raises(ValueError, match="REELGRAPH_QUERY_EMBEDDER must be one of onnx, torch"):
        Settings.from_env()
