"""Every model that can use a GPU takes its device from one place (loaders.model_device, REELGRAPH_DEVICE)."""

import numpy as np
import pytest
import torch

from video_analysis.vision.frames import Frame
from video_analysis.vision.loaders import load_model, model_device

HAS_CUDA = torch.cuda.is_available()


def _devices(model) -> set[str]:
    """Where a loaded model runs: the detector's own device (Ultralytics moves YOLO's weights on its first
    predict), otherwise where the weights are."""
    from video_analysis.vision.ultralytics_detector import UltralyticsDetector

    if isinstance(model, UltralyticsDetector):
        return {model.device}
    return {str(p.device) for p in model.model.parameters()}


def test_auto_takes_cuda_when_torch_sees_it_and_cpu_otherwise():
    assert model_device("auto") == model_device(None) == ("cuda:0" if HAS_CUDA else "cpu")
    assert model_device("CPU") == "cpu"
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        model_device("tpu")


@pytest.mark.skipif(HAS_CUDA, reason="this machine has CUDA: the error is for machines without")
def test_cuda_asked_for_where_there_is_none_is_an_error_not_a_silent_cpu(tmp_path, tiny_yolo, tiny_clip, tiny_vlm,
                                                                         tiny_attribute_models, monkeypatch):
    from models import ModelRegistry
    from resources import ModelRegistryResource

    # every backend that can use a GPU asks the one chooser: each refuses CUDA here rather than run on the CPU
    text = ModelRegistry(tmp_path, profile="offline").resolve("text_embedder")
    for backend, path in [("ultralytics", tiny_yolo), (text.backend, text.path), ("transformers-clip", tiny_clip),
                          ("transformers-image-classification", tiny_attribute_models["age"]),
                          ("transformers-depth", tiny_attribute_models["depth"]),
                          ("transformers-image-text-to-text", tiny_vlm)]:
        with pytest.raises(RuntimeError, match="torch sees no CUDA device"):
            load_model(backend, path, device="cuda")
    monkeypatch.setenv("REELGRAPH_DEVICE", "cuda:0")
    monkeypatch.setenv("REELGRAPH_MODEL_PROFILE", "offline")
    with pytest.raises(RuntimeError, match="REELGRAPH_DEVICE"):
        ModelRegistryResource().load("text_embedder")


def test_every_gpu_capable_backend_is_built_and_runs_on_the_chosen_device(tiny_yolo, tiny_text_embedder, tiny_clip,
                                                                       tiny_attribute_models, tiny_vlm):
    # on a CUDA machine this is the GPU check: each model is built there and runs once, inputs moved with it
    forced = "cuda:0" if HAS_CUDA else "cpu"
    loaded = {
        "ultralytics": load_model("ultralytics", tiny_yolo, device=forced),
        "sentence-transformers": load_model("sentence-transformers", tiny_text_embedder, device=forced),
        "clip": load_model("transformers-clip", tiny_clip, device=forced),
        "age": load_model("transformers-image-classification", tiny_attribute_models["age"], device=forced),
        "depth": load_model("transformers-depth", tiny_attribute_models["depth"], device=forced),
        "vlm": load_model("transformers-image-text-to-text", tiny_vlm, device=forced),
    }
    for name, model in loaded.items():
        assert _devices(model) == {forced}, name

    image = np.random.default_rng(0).integers(0, 255, (96, 128, 3), dtype=np.uint8)
    detections = loaded["ultralytics"].detect([Frame(0, 0.0, image), Frame(1, 0.5, image)])
    assert detections.xyxy.shape[1:] == (4,) and set(detections.frame_index) <= {0, 1}
    weights = {str(p.device) for p in loaded["ultralytics"].model.model.parameters()}
    assert weights == {forced}  # where Ultralytics moved the weights on the first predict
    assert loaded["sentence-transformers"].embed(["a person", "a bag"]).shape == (2, 32)
    assert loaded["clip"].embed_images([image]).shape == loaded["clip"].embed(["a person"]).shape == (1, 16)
    assert [label for label, _ in loaded["age"].classify([image, image])][0] in {"0-19", "20-39", "40-59", "60+"}
    assert len(loaded["depth"].relative_depth(image, [(10, 10, 50, 60)])) == 1
    assert isinstance(loaded["vlm"].write([image], {"people": 1}), str)


def test_the_registry_resource_builds_models_on_REELGRAPH_DEVICE(monkeypatch):
    from resources import ModelRegistryResource

    monkeypatch.setenv("REELGRAPH_DEVICE", "cpu")
    monkeypatch.setenv("REELGRAPH_MODEL_PROFILE", "offline")
    monkeypatch.setenv("REELGRAPH_TEXT_RUNTIME", "torch")
    _, embedder = ModelRegistryResource().load("text_embedder")
    assert embedder.backend == "torch" and _devices(embedder) == {"cpu"}
    # on the CPU the text model runs through ONNX Runtime by default (the export made once, then reused)
    monkeypatch.delenv("REELGRAPH_TEXT_RUNTIME")
    _, embedder = ModelRegistryResource().load("text_embedder")
    assert embedder.backend == "onnxruntime"
