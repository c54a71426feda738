import hashlib
import threading

import numpy as np
import pytest

from models import ModelRegistry, ModelUnavailableError
from models.registry import MANIFEST
from tests.helpers import write_manifest
from tests.http_servers import LocalServer
from video_analysis.vision.detectors import load_detector
from video_analysis.vision.frames import Frame
from video_analysis.vision.ultralytics_detector import UltralyticsDetector


def test_offline_profile_resolves_the_packaged_ssd_and_verifies_it(tmp_path):
    model = ModelRegistry(tmp_path, profile="offline").resolve_checkpoint("ssd-mobilenet-v2-coco", "offline")
    assert (model.name, model.backend, model.profile) == ("ssd-mobilenet-v2-coco", "openvino-tf", "offline")
    assert model.path.name == "frozen_inference_graph.pb" and model.config_path.suffix == ".pbtxt"
    assert list((tmp_path / "verified").iterdir())  # checksum verified once, then remembered


def test_auto_falls_back_to_offline_and_says_why(tmp_path, monkeypatch):
    monkeypatch.setenv("YOLO_OFFLINE", "1")
    model = ModelRegistry(tmp_path, profile="auto").resolve("detector")
    assert model.profile == "offline"
    assert "full-profile weights unreachable" in model.note and "yolo11n.pt" in model.note


def test_full_profile_without_weights_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("YOLO_OFFLINE", "1")
    with pytest.raises(ModelUnavailableError, match="yolo11n.pt is not cached"):
        ModelRegistry(tmp_path, profile="full").resolve("detector")


def test_a_corrupted_checkpoint_fails_its_checksum(tmp_path):
    weights = tmp_path / "w.pt"
    weights.write_bytes(b"not the weights")
    manifest = write_manifest(tmp_path, {"d": {"task": "detector", "backend": "ultralytics", "source": str(weights),
                                               "version": "1", "sha256": "0" * 64}}, {"offline": {"detector": "d"}})
    with pytest.raises(ModelUnavailableError, match="fails its checksum"):
        ModelRegistry(tmp_path / "cache", manifest=manifest, profile="offline").resolve("detector")


def test_a_folder_checkpoint_with_one_file_changed_fails_its_checksum(tmp_path):
    import shutil
    import time

    from models.registry import folder_sha256

    shipped = ModelRegistry(tmp_path / "cache", profile="offline").resolve("text_embedder").path  # verified
    folder = tmp_path / "minilm"
    shutil.copytree(shipped, folder, ignore=shutil.ignore_patterns("__pycache__"))
    manifest = write_manifest(tmp_path, {"m": {"task": "text_embedder", "backend": "sentence-transformers",
                                               "source": str(folder), "version": "1",
                                               "sha256": folder_sha256(shipped)}}, {"offline": {"text_embedder": "m"}})
    registry = ModelRegistry(tmp_path / "cache", manifest=manifest, profile="offline")
    assert registry.resolve("text_embedder").path == folder
    time.sleep(0.01)
    with open(folder / "config.json", "a") as handle:
        handle.write(" ")
    with pytest.raises(ModelUnavailableError, match="fails its checksum"):
        registry.resolve("text_embedder")


def test_every_packaged_checkpoint_and_config_in_the_manifest_is_checksummed():
    import yaml

    entries = yaml.safe_load(MANIFEST.read_text())["checkpoints"]
    for name, entry in entries.items():
        if entry["source"].startswith("package:"):
            assert len(entry.get("sha256", "")) == 64, name
        if entry.get("config"):
            assert len(entry.get("config_sha256", "")) == 64, name


def test_unknown_profile_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="full, offline or auto"):
        ModelRegistry(tmp_path, profile="fast")


def test_s3_mirror_is_downloaded_once_then_served_from_the_cache(tmp_path, s3_bucket, tiny_yolo):
    client, bucket = s3_bucket
    client.upload_file(str(tiny_yolo), bucket, "models/yolo11n-tiny.pt")
    digest = hashlib.sha256(tiny_yolo.read_bytes()).hexdigest()
    manifest = write_manifest(tmp_path, {"tiny": {"task": "detector", "backend": "ultralytics", "version": "tiny-1",
                                                  "source": f"s3://{bucket}/models/yolo11n-tiny.pt",
                                                  "sha256": digest}}, {"full": {"detector": "tiny"}})
    registry = ModelRegistry(tmp_path / "cache", manifest=manifest, profile="full")
    first = registry.resolve("detector")
    client.delete_object(Bucket=bucket, Key="models/yolo11n-tiny.pt")
    assert registry.resolve("detector").path == first.path  # no second download


def test_weights_without_a_manifest_checksum_are_pinned_on_first_download(tmp_path, s3_bucket, tiny_yolo, caplog):
    import json
    import time

    client, bucket = s3_bucket
    client.upload_file(str(tiny_yolo), bucket, "models/unpinned.pt")
    source = f"s3://{bucket}/models/unpinned.pt"
    manifest = write_manifest(tmp_path, {"tiny": {"task": "detector", "backend": "ultralytics", "version": "tiny-1",
                                                  "source": source}}, {"full": {"detector": "tiny"}})
    registry = ModelRegistry(tmp_path / "cache", manifest=manifest, profile="full")
    with caplog.at_level("WARNING"):
        path = registry.resolve("detector").path
    digest = hashlib.sha256(tiny_yolo.read_bytes()).hexdigest()
    assert json.loads((tmp_path / "cache" / "pins.json").read_text()) == {source: {"sha256": digest}}
    assert f"sha256: {digest}" in caplog.text  # what to paste into the manifest
    time.sleep(0.05)  # past the file system's timestamp granularity: the change is seen
    path.write_bytes(b"X" + path.read_bytes()[1:])  # the cached file changes afterwards
    with pytest.raises(ModelUnavailableError, match="fails its checksum"):
        registry.resolve("detector")


def test_yolo_built_from_config_runs_through_the_registry_loader(tmp_path, tiny_yolo):
    manifest = write_manifest(tmp_path, {"tiny": {"task": "detector", "backend": "ultralytics", "version": "tiny-1",
                                                  "source": str(tiny_yolo)}}, {"full": {"detector": "tiny"}})
    model = ModelRegistry(tmp_path / "cache", manifest=manifest, profile="full").resolve("detector")
    assert load_detector(model.backend, model.path).confidence == 0.25  # the default threshold

    # Random weights score nothing above the default threshold: at confidence 0 every frame has boxes, so
    # their geometry and frame bookkeeping are checked.
    detector = load_detector(model.backend, model.path, confidence=0.0)
    assert isinstance(detector, UltralyticsDetector) and len(detector.class_names) == 80
    assert detector.confidence == 0.0
    rng = np.random.default_rng(3)
    indexes = [4, 9, 14]  # sampled frames keep their own indexes and times, not their position in the batch
    frames = [Frame(i, i / 10, rng.integers(0, 256, (360, 640, 3), dtype=np.uint8)) for i in indexes]
    found = detector.detect(frames)
    assert len(found) > 0 and found.xyxy.shape == (len(found), 4)
    assert set(found.frame_index.tolist()) == set(indexes)  # every frame has boxes, each under its own index
    for index in indexes:
        assert np.allclose(found.timestamp[found.frame_index == index], index / 10)
    x1, y1, x2, y2 = found.xyxy.T
    assert (x1 >= 0).all() and (y1 >= 0).all() and (x2 <= 640).all() and (y2 <= 360).all()
    assert (x1 <= x2).all() and (y1 <= y2).all()
    assert ((found.confidence >= 0) & (found.confidence <= 1)).all()
    assert set(found.class_id.tolist()) <= set(detector.class_names)


def test_load_detector_honours_a_zero_confidence(tmp_path, tiny_yolo):
    registry = ModelRegistry(tmp_path, profile="offline")
    ssd = registry.resolve_checkpoint("ssd-mobilenet-v2-coco")
    for backend in ("openvino-tf", "opencv-tf"):
        assert load_detector(backend, ssd.path, ssd.config_path, cache_dir=tmp_path).confidence == 0.3  # default
        assert load_detector(backend, ssd.path, ssd.config_path, confidence=0.0, cache_dir=tmp_path).confidence == 0
    for name in ("picodet-s-416", "yolox-nano"):
        onnx = registry.resolve_checkpoint(name)
        assert load_detector(onnx.backend, onnx.path, cache_dir=tmp_path).confidence == 0.3
        assert load_detector(onnx.backend, onnx.path, confidence=0.0, cache_dir=tmp_path).confidence == 0.0
    assert load_detector("ultralytics", tiny_yolo, confidence=0.0).confidence == 0.0


def test_shipped_manifest_names_a_detector_for_both_profiles():
    import yaml

    spec = yaml.safe_load(MANIFEST.read_text())
    for profile in ("full", "offline"):
        named = spec["profiles"][profile]["detector"]
        for name in [named] if isinstance(named, str) else named:
            assert spec["checkpoints"][name]["version"] and spec["checkpoints"][name]["task"] == "detector"
    # every offline detector fetched from a URL is pinned by its sha256
    for name in spec["profiles"]["offline"]["detector"]:
        entry = spec["checkpoints"][name]
        assert not entry["source"].startswith("https://") or len(entry["sha256"]) == 64


@pytest.fixture
def weights_server(tmp_path):
    """A real HTTP server on loopback publishing a weights file, counting the requests for it."""
    import functools
    import http.server

    published = tmp_path / "published"
    published.mkdir()
    (published / "net.onnx").write_bytes(b"weights " * 1000)
    requests = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            requests.append(self.path)
            super().do_GET()

        def log_message(self, *args):
            pass

    with LocalServer(functools.partial(Handler, directory=str(published))) as server:
        yield server.url, published, requests


def _url_manifest(folder, url, sha256, fallback_source):
    return write_manifest(folder, {
        "net": {"task": "detector", "backend": "onnx-picodet", "source": url, "sha256": sha256, "version": "1"},
        "packaged": {"task": "detector", "backend": "ultralytics", "source": str(fallback_source), "version": "2"},
    }, {"offline": {"detector": ["net", "packaged"]}})


def test_weights_at_a_url_are_fetched_once_checked_and_else_the_next_detector_serves(tmp_path, weights_server,
                                                                                      monkeypatch, tiny_yolo):
    base, published, requests = weights_server
    monkeypatch.delenv("REELGRAPH_MODEL_DIR", raising=False)
    digest = hashlib.sha256((published / "net.onnx").read_bytes()).hexdigest()
    manifest = _url_manifest(tmp_path, f"{base}/net.onnx", digest, tiny_yolo)
    model = ModelRegistry(tmp_path / "cache", manifest=manifest, profile="offline").resolve("detector")
    assert (model.name, model.note) == ("net", "") and model.path.name == "net.onnx"
    assert model.path.parent == tmp_path / "cache" / "downloads" / digest[:16]
    ModelRegistry(tmp_path / "cache", manifest=manifest, profile="offline").resolve("detector")
    assert requests == ["/net.onnx"]  # cached: never fetched again

    # changed upstream: refused, deleted from the cache, and the next detector in the list serves, saying why
    (published / "net.onnx").write_bytes(b"other bytes")
    (tmp_path / "second").mkdir()
    manifest = _url_manifest(tmp_path / "second", f"{base}/net.onnx", digest, tiny_yolo)
    fallback = ModelRegistry(tmp_path / "cache2", manifest=manifest, profile="offline").resolve("detector")
    assert fallback.name == "packaged" and "net: " in fallback.note and "fails its checksum" in fallback.note
    assert not list((tmp_path / "cache2" / "downloads").rglob("net.onnx"))

    # air-gapped: a local folder holding the file by name serves it without any request
    local = tmp_path / "local"
    local.mkdir()
    (local / "net.onnx").write_bytes(b"weights " * 1000)
    monkeypatch.setenv("REELGRAPH_MODEL_DIR", str(local))
    served = ModelRegistry(tmp_path / "cache3", manifest=manifest, profile="offline", allow_download=False)
    assert served.resolve("detector").path == local / "net.onnx" and len(requests) == 2



def test_a_model_upgrade_changes_the_stage_code_version(tmp_path, monkeypatch, tiny_yolo):
    from assets.video_stage import model_code_version

    versions = []
    for version in ("yolo-v1", "yolo-v2"):
        (tmp_path / version).mkdir()
        manifest = write_manifest(tmp_path / version,
                                  {"d": {"task": "detector", "backend": "ultralytics", "source": str(tiny_yolo),
                                         "version": version}}, {"full": {"detector": "d"}})
        monkeypatch.setenv("REELGRAPH_MODELS_MANIFEST", str(manifest))
        monkeypatch.setenv("REELGRAPH_MODEL_PROFILE", "full")
        versions.append(model_code_version("detect-v1", "detector"))
    assert versions == ["detect-v1:yolo-v1", "detect-v1:yolo-v2"]


def test_the_model_cache_is_the_state_folders_unless_configured(tmp_path, monkeypatch):
    from configuration.settings import Settings
    from resources import ModelRegistryResource

    monkeypatch.delenv("REELGRAPH_MODEL_CACHE", raising=False)
    monkeypatch.setenv("REELGRAPH_HOME", str(tmp_path / "home"))
    assert ModelRegistryResource().registry().cache_dir == tmp_path / "home" / "models"
    monkeypatch.setenv("REELGRAPH_MODEL_CACHE", str(tmp_path / "shared-models"))
    assert Settings.from_env().model_cache_dir() == tmp_path / "shared-models"
    assert ModelRegistryResource().registry().cache_dir == tmp_path / "shared-models"


def test_a_model_loaded_ahead_is_the_one_every_later_run_of_the_process_gets(tmp_path, monkeypatch):
    """`reelgraph process` loads the models on a thread while Dagster sets the run up: the steps of that run,
    and of the next, must get that same model rather than load it again."""
    import resources.models as model_resources
    from resources import ModelRegistryResource

    monkeypatch.setenv("REELGRAPH_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("REELGRAPH_MODEL_CACHE", raising=False)
    monkeypatch.setattr(model_resources, "_loaded", {})
    loads = []
    real_load_model = model_resources.load_model
    monkeypatch.setattr(model_resources, "load_model", lambda *a, **k: loads.append(a[0]) or real_load_model(*a, **k))

    ahead = ModelRegistryResource(profile="offline")
    thread = threading.Thread(target=ahead.preload, args=("detector",))
    thread.start()
    _, first_run = ModelRegistryResource(profile="offline").load("detector")  # waits for the load under way
    thread.join()
    _, next_run = ModelRegistryResource(profile="offline").load("detector")
    assert first_run is next_run
    assert len(loads) == 1


def test_a_model_that_cannot_be_loaded_ahead_is_reported_by_the_step_that_needs_it(tmp_path, monkeypatch):
    from resources import ModelRegistryResource

    monkeypatch.setenv("REELGRAPH_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("REELGRAPH_MODEL_CACHE", raising=False)
    monkeypatch.setenv("REELGRAPH_MODEL_DIR", str(tmp_path / "nothing-here"))
    full = ModelRegistryResource(profile="full")
    assert full.preload("detector") is False  # nothing downloaded ahead, nothing raised on the side thread
    with pytest.raises(ModelUnavailableError):
        full.load("detector", allow_download=False)
    with pytest.raises(ModelUnavailableError):  # tried again, not a remembered failure
        full.load("detector", allow_download=False)


def test_a_step_waiting_on_a_load_ahead_that_failed_loads_the_model_itself(monkeypatch):
    import resources.models as model_resources

    monkeypatch.setattr(model_resources, "_loaded", {})
    started, release = threading.Event(), threading.Event()

    def failing_ahead():
        started.set()
        release.wait(10)
        raise ImportError("deadlock detected by the import system")  # what only the side thread hit

    ahead = threading.Thread(target=lambda: pytest.raises(ImportError, model_resources._load_once, ("m",),
                                                          failing_ahead))
    ahead.start()
    started.wait(10)
    threading.Timer(0.3, release.set).start()
    assert model_resources._load_once(("m",), lambda: "loaded by the step") == "loaded by the step"
    ahead.join(10)
