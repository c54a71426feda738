"""Shared fixtures: a real embedded PostgreSQL, moto's real S3 HTTP server, the sample clips.

Shared helpers (not fixtures) live in tests/helpers.py, generated media in tests/media.py; test modules import
those, never this file.
"""

import os
import shutil
import tempfile
import uuid
from pathlib import Path

import pytest

from configuration.process import prepare_process
from orchestration.cli import take_interrupts_back
from tests.helpers import REPO, free_port, seeded_torch
from video_analysis.runtime.home import StateHome

SAMPLE_CLIPS = ("one-by-one-person-detection.mp4", "bottle-detection.mp4")

# One state folder per test session, set before any project module reads the environment, so a
# test run never touches a developer's .reelgraph folder or another run's server.
_SESSION_HOME = Path(tempfile.mkdtemp(prefix="reelgraph-test-"))
os.environ["REELGRAPH_HOME"] = str(_SESSION_HOME)
os.environ.pop("REELGRAPH_DATABASE_URL", None)
os.environ.pop("REELGRAPH_S3_BUCKET", None)
os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# The offline profile's detectors that are downloaded on a user's machine come from the shared folder here.
os.environ.setdefault("REELGRAPH_MODEL_DIR", str(REPO.parent / "shared" / "models" / "permissive"))
(_SESSION_HOME / "dagster").mkdir()
os.environ["DAGSTER_HOME"] = str(_SESSION_HOME / "dagster")
prepare_process(StateHome(_SESSION_HOME))  # what every entry point does: the tests are one too
# ... and the stop signals as the CLI takes them: a suite started in the background (SIGINT ignored) would
# otherwise, after its first in-process Dagster run, start every process with SIGTERM ignored
take_interrupts_back()


def _sample_folder() -> Path:
    configured = os.environ.get("REELGRAPH_SAMPLE_VIDEOS")
    return Path(configured) if configured else REPO.parent / "shared" / "data" / "videos"


def _missing_samples() -> list[str]:
    folder = _sample_folder()
    return [name for name in SAMPLE_CLIPS if not (folder / name).is_file()]


def _samples_required() -> bool:
    """In CI (CI=true/1/yes) or with REELGRAPH_REQUIRE_SAMPLES=1, absent clips fail the run."""
    return (os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")
            or os.environ.get("REELGRAPH_REQUIRE_SAMPLES") == "1")


def _missing_samples_message(missing: list[str]) -> str:
    return (f"sample clips missing from {_sample_folder()}: {', '.join(missing)} "
            "(set REELGRAPH_SAMPLE_VIDEOS to the folder that holds them)")


def pytest_sessionstart(session):
    """Where the clips are required, their absence stops the session before any test runs (exit status 4); so
    does the absence of the offline detector's weights, which would otherwise leave the SSD running in their
    place and fail tests far from the cause."""
    missing = _missing_samples()
    if missing and _samples_required():
        raise pytest.UsageError(_missing_samples_message(missing) + "; required because CI or "
                                "REELGRAPH_REQUIRE_SAMPLES=1 is set")
    weights = Path(os.environ["REELGRAPH_MODEL_DIR"]) / "picodet_s_416_coco.onnx"
    if not weights.is_file() and _samples_required():
        raise pytest.UsageError(f"the offline detector's weights are missing: {weights} (set REELGRAPH_MODEL_DIR to "
                                "the folder that holds picodet_s_416_coco.onnx and yolox_nano.onnx)")


# The modules that take longest, longest first: `make test` runs the suite on two processes (pytest-xdist,
# --dist loadscope), each taking whole modules in this order, so the long ones start at once, side by side,
# and the short ones fill in around them. Order changes nothing else: no test depends on another's.
LONGEST_FIRST = ("tests/test_dev_end_to_end.py", "tests/video_analysis/recording/test_cameras_under_dev.py",
                 "tests/video_analysis/recording/test_live_streams.py", "tests/service/test_review.py",
                 "tests/assets/test_understanding.py", "tests/test_cli.py")


def pytest_collection_modifyitems(session, config, items):
    rank = {module: i for i, module in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(rank)))


@pytest.fixture(scope="session", autouse=True)
def shared_model_cache(tmp_path_factory):
    """One model cache for the test processes of a run (pytest -n) and the `reelgraph dev` stacks they start:
    the detector's graph is converted and compiled, and the text model exported, once a run rather than once
    a state folder. Where a test process is alone, its state folder's own cache serves."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = tmp_path_factory.getbasetemp().parent / "models"  # the run's folder, beside each process's
        shared.mkdir(exist_ok=True)
        os.environ["REELGRAPH_MODEL_CACHE"] = str(shared)
    yield


@pytest.fixture(scope="session")
def state_home():
    from video_analysis.runtime.home import StateHome

    home = StateHome(_SESSION_HOME).ensure()
    yield home
    from video_analysis.runtime.embedded_postgres import EmbeddedPostgres

    EmbeddedPostgres(home.pgdata).discard()  # under root the data lives outside the home
    shutil.rmtree(home.root, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_dsn(state_home):
    """The embedded PostgreSQL + pgvector server, migrated."""
    from video_analysis.store import db

    dsn = db.resolve_dsn(None, state_home.pgdata)
    db.prepare(dsn)
    return dsn


@pytest.fixture
def db(pg_dsn):
    """An autocommit connection to an emptied database."""
    from video_analysis.store.db import connect

    conn = connect(pg_dsn, autocommit=True)
    conn.execute("TRUNCATE videos, descriptions, description_vectors, camera_daily_reports, erasures CASCADE")
    conn.execute("TRUNCATE vector_index_holds")
    yield conn
    conn.close()


@pytest.fixture
def inbox(tmp_path, monkeypatch, state_home):
    folder = tmp_path / "inbox"
    folder.mkdir()
    monkeypatch.setenv("REELGRAPH_INBOX", str(folder))
    monkeypatch.setenv("REELGRAPH_SETTLE_SECONDS", "0")
    return folder


@pytest.fixture(scope="session")
def moto_endpoint():
    """moto's threaded server: a real S3 HTTP endpoint on 127.0.0.1 (no patched clients)."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def s3_bucket(moto_endpoint, monkeypatch, state_home):
    """A fresh bucket, configured for the project through the environment, as a user would."""
    import boto3

    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "REELGRAPH_S3_ENDPOINT_URL": moto_endpoint,
        "REELGRAPH_SETTLE_SECONDS": "0",
    }.items():
        monkeypatch.setenv(name, value)
    bucket = f"raw-videos-{uuid.uuid4().hex[:8]}"
    client = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    client.create_bucket(Bucket=bucket)
    monkeypatch.setenv("REELGRAPH_S3_BUCKET", bucket)
    return client, bucket


@pytest.fixture(scope="session")
def sample_videos() -> Path:
    """The folder of the sample clips. Absent clips fail the test in CI, and skip it (saying why) elsewhere."""
    missing = _missing_samples()
    if missing and _samples_required():
        pytest.fail(_missing_samples_message(missing), pytrace=False)
    if missing:
        pytest.skip(_missing_samples_message(missing) + "; set CI or REELGRAPH_REQUIRE_SAMPLES=1 to fail instead")
    return _sample_folder()


@pytest.fixture(scope="session")
def person_clip(sample_videos) -> Path:
    return sample_videos / "one-by-one-person-detection.mp4"


@pytest.fixture(scope="session")
def bottle_clip(sample_videos) -> Path:
    return sample_videos / "bottle-detection.mp4"


@pytest.fixture(scope="session")
def synthetic_clip(tmp_path_factory) -> Path:
    """A valid 3 s MP4 (30 seeded frames of 160x120 at 10 fps, MPEG-4 part 2, index after the frames)."""
    from tests.media import write_video

    return write_video(tmp_path_factory.mktemp("synthetic") / "synthetic.mp4", 30, rate=10, codec="mpeg4",
                       size=(160, 120))


@pytest.fixture
def bad_files(tmp_path, synthetic_clip) -> dict[str, tuple[Path, str]]:
    """Unusable inputs, each with a fragment of the error a user should see (video_analysis/vision/probe.py).

    Made from the synthetic clip and a seeded generator: no sample clip needed, the same bytes every run.
    """
    import numpy as np

    folder = tmp_path / "bad"
    folder.mkdir()
    data = synthetic_clip.read_bytes()
    noise = np.random.default_rng(1234).integers(0, 256, 4096, dtype=np.uint8).tobytes()
    unreadable = "the file cannot be opened as a media container"
    files = {
        "empty.mp4": (b"", "the file is empty (0 bytes)"),
        # an upload cut off before its index (written last) arrived
        "truncated.mp4": (data[: len(data) // 3], unreadable),
        "notes.mp4": (b"meeting notes, not footage\n" * 20, "not a video file: its content is text"),
        "image.mp4": (b"\x89PNG\r\n\x1a\n" + bytes(200), "not a video file: its content is a PNG image"),
        # an MP4 signature, then noise
        "garbage.mp4": (data[:12] + noise, unreadable),
    }
    result = {}
    for name, (content, message) in files.items():
        path = folder / name
        path.write_bytes(content)
        result[name] = (path, message)
    return result


@pytest.fixture
def dagster_instance(tmp_path):
    """A persistent (SQLite) Dagster instance in its own folder; reopen it to simulate a restart."""
    from dagster import instance_for_test

    folder = tmp_path / "dagster"
    folder.mkdir()
    with instance_for_test(temp_dir=str(folder)) as instance:
        yield instance


@pytest.fixture(scope="session")
def tiny_yolo(tmp_path_factory) -> Path:
    """A yolo11n built from its config (random weights) and saved as a checkpoint: no download."""
    from ultralytics import YOLO

    path = tmp_path_factory.mktemp("yolo") / "yolo11n-tiny.pt"
    with seeded_torch(11):
        YOLO("yolo11n.yaml").save(str(path))
    return path


@pytest.fixture(scope="session")
def short_clip(tmp_path_factory, bottle_clip) -> Path:
    """The first 48 frames of the bottle clip, re-encoded as MPEG-4 part 2 (OpenCV writes mp4v here)."""
    import cv2

    path = tmp_path_factory.mktemp("clips") / "short.mp4"
    source = cv2.VideoCapture(str(bottle_clip))
    fps = source.get(cv2.CAP_PROP_FPS)
    writer = None
    for _ in range(48):
        ok, frame = source.read()
        assert ok
        if writer is None:
            writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, frame.shape[1::-1])
        writer.write(frame)
    writer.release()
    source.release()
    return path


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory) -> Path:
    """A 2-layer CLIP with a minimal BPE vocabulary, saved like a hub checkpoint (random weights)."""
    import json
    import string

    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor, CLIPTokenizer

    folder = tmp_path_factory.mktemp("clip")
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for char in string.ascii_lowercase + string.digits:
        vocab.setdefault(char, len(vocab))
        vocab.setdefault(char + "</w>", len(vocab))
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    tokenizer = CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"))
    processor = CLIPProcessor(image_processor=CLIPImageProcessor(size={"shortest_edge": 32},
                                                                 crop_size={"height": 32, "width": 32}),
                              tokenizer=tokenizer)
    layers = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2}
    config = CLIPConfig(text_config={**layers, "vocab_size": len(vocab), "max_position_embeddings": 32,
                                     "bos_token_id": 0, "eos_token_id": 1, "pad_token_id": 1},
                        vision_config={**layers, "image_size": 32, "patch_size": 8}, projection_dim=16)
    target = folder / "tiny-clip"
    with seeded_torch(12):
        CLIPModel(config).save_pretrained(target)
    processor.save_pretrained(target)
    return target


def _tiny_vit_classifier(folder: Path, labels: list[str], seed: int) -> Path:
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor

    config = ViTConfig(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                       intermediate_size=64, num_labels=len(labels), id2label=dict(enumerate(labels)),
                       label2id={label: i for i, label in enumerate(labels)})
    with seeded_torch(seed):
        ViTForImageClassification(config).save_pretrained(folder)
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_attribute_models(tmp_path_factory) -> dict[str, Path]:
    """Random-weight age and gender classifiers and a DPT depth model, saved like hub checkpoints."""
    from transformers import DPTConfig, DPTForDepthEstimation, DPTImageProcessor

    folder = tmp_path_factory.mktemp("attribute-models")
    depth = folder / "depth"
    config = DPTConfig(hidden_size=32, num_hidden_layers=4, num_attention_heads=2, intermediate_size=64, image_size=32,
                       patch_size=8, backbone_out_indices=[0, 1, 2, 3], neck_hidden_sizes=[8, 16, 32, 32],
                       fusion_hidden_size=16, reassemble_factors=[4, 2, 1, 0.5])
    with seeded_torch(13):
        DPTForDepthEstimation(config).save_pretrained(depth)
    DPTImageProcessor(size={"height": 32, "width": 32}, keep_aspect_ratio=False).save_pretrained(depth)
    return {
        "age": _tiny_vit_classifier(folder / "age", ["0-19", "20-39", "40-59", "60+"], seed=15),
        "gender": _tiny_vit_classifier(folder / "gender", ["female", "male"], seed=16),
        "depth": depth,
    }


@pytest.fixture(scope="session")
def tiny_vlm(tmp_path_factory) -> Path:
    """A 2-layer LLaVA (CLIP vision + Llama text) with a character-level vocabulary and a chat template."""
    import string

    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
        PreTrainedTokenizerFast,
    )

    target = tmp_path_factory.mktemp("vlm") / "tiny-vlm"
    vocab = {w: i for i, w in enumerate(dict.fromkeys(["<pad>", "<s>", "</s>", "<unk>", "<image>",
                                                       *string.printable[:95]]))}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Split("", "isolated")
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<s>", eos_token="</s>",
                                        pad_token="<pad>", unk_token="<unk>",
                                        extra_special_tokens={"image_token": "<image>"})
    template = ("{% for m in messages %}{% for c in m['content'] %}{% if c['type'] == 'image' %}<image>"
                "{% else %}{{ c['text'] }}{% endif %}{% endfor %}{% endfor %}")
    layers = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2}
    config = LlavaConfig(
        vision_config=CLIPVisionConfig(**layers, image_size=32, patch_size=8),
        text_config=LlamaConfig(**layers, vocab_size=len(vocab), num_key_value_heads=2, max_position_embeddings=4096),
        image_token_index=vocab["<image>"], vision_feature_layer=-1)
    with seeded_torch(14):
        LlavaForConditionalGeneration(config).save_pretrained(target)
    images = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    LlavaProcessor(image_processor=images, tokenizer=tokenizer, patch_size=8, vision_feature_select_strategy="default",
                   chat_template=template, num_additional_image_tokens=1).save_pretrained(target)
    return target


@pytest.fixture(scope="session")
def tiny_text_embedder(tmp_path_factory) -> Path:
    """A 2-layer BERT and a mean pooling, saved as a sentence-transformers folder (random weights)."""
    import string

    from sentence_transformers import SentenceTransformer
    from sentence_transformers import models as st_models
    from transformers import BertConfig, BertModel, BertTokenizerFast

    folder = tmp_path_factory.mktemp("text-embedder")
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *string.ascii_lowercase, *string.digits]
    (folder / "vocab.txt").write_text("\n".join(words) + "\n")
    BertTokenizerFast(str(folder / "vocab.txt")).save_pretrained(folder / "bert")
    config = BertConfig(vocab_size=len(words), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64)
    with seeded_torch(17):
        BertModel(config).save_pretrained(folder / "bert")
    transformer = st_models.Transformer(str(folder / "bert"), max_seq_length=32)
    target = folder / "tiny-text-embedder"
    SentenceTransformer(modules=[transformer, st_models.Pooling(32, "mean")], device="cpu").save(str(target))
    return target
