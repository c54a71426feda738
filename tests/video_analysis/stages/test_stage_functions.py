"""The per-stage library functions, called as a notebook or a benchmark would: no Dagster involved."""

import os
import shutil

import pytest

from configuration.settings import Settings
from models import ModelRegistry
from video_analysis.runtime.local_store import LocalFolderStore
from video_analysis.stages import MissingUpstreamError
from video_analysis.stages import attributes as attributes_stage
from video_analysis.stages import detections as detections_stage
from video_analysis.stages import embeddings as embeddings_stage
from video_analysis.stages import raw_video as raw_video_stage
from video_analysis.stages import tracks as tracks_stage
from video_analysis.store import catalog
from video_analysis.store.db import Database
from video_analysis.vision.detectors import load_detector
from video_analysis.vision.loaders import load_model

pytestmark = pytest.mark.slow


@pytest.fixture
def chain(db, pg_dsn, tmp_path, short_clip, state_home):
    """A registered, probed short clip plus the offline detector and text model."""
    store = LocalFolderStore(tmp_path / "inbox")
    store.root.mkdir()
    shutil.copy(short_clip, store.root / "short.mp4")
    obj = store.head("short.mp4")
    catalog.register(db, obj)
    registry = ModelRegistry(Settings.from_env().model_cache_dir(), profile="offline")
    detector_model = registry.resolve("detector")
    text_model = registry.resolve("text_embedder")
    database = Database(pg_dsn)
    raw_video_stage.run(database, obj.partition_key, store)
    return {
        "db": database, "key": obj.partition_key, "store": store, "detector_model": detector_model,
        "detector": load_model(detector_model.backend, detector_model.path, detector_model.config_path),
        "text_model": text_model, "embedder": load_model(text_model.backend, text_model.path),
    }


def _counts(db, key):
    return {table: db.execute(f"SELECT count(*) FROM {table} WHERE partition_key = %s", (key,)).fetchone()[0]
            for table in ("detections", "tracks", "track_attributes", "embeddings")}


def test_a_rerun_that_finds_nothing_replaces_the_tracks_and_what_describes_them(chain, db):
    c = chain
    detections_stage.run(c["db"], c["key"], c["store"], c["detector"], c["detector_model"].stamp, sample_fps=0)
    tracks_stage.run(c["db"], c["key"], c["store"])
    attributes_stage.run(c["db"], c["key"], c["store"], profile="offline")
    embeddings_stage.run(c["db"], c["key"], c["embedder"], c["text_model"].stamp)
    before = _counts(db, c["key"])
    assert before["tracks"] > 0 and before["embeddings"] == before["tracks"]

    # The same real detector, with a threshold nothing can pass: this run finds nothing.
    model = c["detector_model"]
    blind = load_detector(model.backend, model.path, model.config_path, confidence=1.01,
                          cache_dir=Settings.from_env().model_cache_dir())
    assert detections_stage.run(c["db"], c["key"], c["store"], blind, c["detector_model"].stamp, sample_fps=0).rows == 0
    result = tracks_stage.run(c["db"], c["key"], c["store"])

    assert result.rows == 0
    assert _counts(db, c["key"]) == {"detections": 0, "tracks": 0, "track_attributes": 0, "embeddings": 0}
    record = db.execute("SELECT status, row_count FROM stage_runs WHERE partition_key = %s AND stage = 'tracks'",
                        (c["key"],)).fetchone()
    assert record == ("done", 0)


def test_tracks_before_detections_is_a_clear_error(chain):
    with pytest.raises(MissingUpstreamError, match="detections have not been materialized"):
        tracks_stage.run(chain["db"], chain["key"], chain["store"])


def test_loading_models_leaves_the_process_environment_alone(state_home, monkeypatch, tiny_yolo):
    # conftest sets HF_HUB_OFFLINE for the test session; a user's process has it unset.
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    before = dict(os.environ)
    registry = ModelRegistry(Settings.from_env().model_cache_dir(), profile="offline")
    text_model = registry.resolve("text_embedder")
    embedder = load_model(text_model.backend, text_model.path)
    load_model("ultralytics", tiny_yolo)
    assert embedder.embed(["a person in a red coat"]).shape == (1, embedder.dim)
    assert dict(os.environ) == before


def test_only_tracks_of_the_cameras_classes_with_enough_evidence_are_kept(chain, db, tmp_path):
    from video_analysis.vision.evidence import TrackPolicy

    c = chain
    detections_stage.run(c["db"], c["key"], c["store"], c["detector"], c["detector_model"].stamp, sample_fps=0)
    everything = tracks_stage.run(c["db"], c["key"], c["store"])
    classes = set(everything.metadata["per_class"])
    assert everything.rows > 0 and everything.metadata["left_out"] == {}

    elsewhere = tracks_stage.run(c["db"], c["key"], c["store"], policy=TrackPolicy(frozenset({"horse"})))
    assert elsewhere.rows == 0 and set(elsewhere.metadata["left_out"]) == classes
    assert _counts(db, c["key"])["tracks"] == 0 and _counts(db, c["key"])["detections"] > 0  # detections stay

    unsure = tracks_stage.run(c["db"], c["key"], c["store"], policy=TrackPolicy(None, min_frames=10_000))
    assert unsure.rows == 0

    zones = tmp_path / "zones.yaml"  # this camera's own list wins over the default
    zones.write_text("track_classes:\n  '*': [" + ", ".join(sorted(classes)) + "]\n")
    again = tracks_stage.run(c["db"], c["key"], c["store"], policy=TrackPolicy(frozenset({"horse"})), zones_file=zones)
    assert again.rows == everything.rows


def test_track_pictures_come_from_the_detection_pass_without_seeking(chain, db):
    """The detection pass keeps each track's best-sighting crop; the tracks stage finds one for every track
    (the video is never opened again), the same picture a seek to that sighting gives."""
    from video_analysis.store.outputs import load_detections
    from video_analysis.vision.images import decode_jpeg
    from video_analysis.vision.passes import track_thumbnails, track_video

    c = chain
    detections_stage.run(c["db"], c["key"], c["store"], c["detector"], c["detector_model"].stamp)
    crops = db.execute("SELECT count(*) FROM sighting_crops WHERE partition_key = %s", (c["key"],)).fetchone()[0]
    # a re-run replaces them
    detections_stage.run(c["db"], c["key"], c["store"], c["detector"], c["detector_model"].stamp)
    assert db.execute("SELECT count(*) FROM sighting_crops WHERE partition_key = %s",
                      (c["key"],)).fetchone()[0] == crops > 0
    result = tracks_stage.run(c["db"], c["key"], c["store"])
    assert result.rows > 0 and result.metadata["crops_from_detection_pass"] == result.rows

    stored = dict(db.execute("SELECT track_id, thumbnail_jpeg FROM tracks WHERE partition_key = %s", (c["key"],)))
    detections, _ = load_detections(db, c["key"])
    record = catalog.stage_record(db, c["key"], "detections")
    tracks = track_video(detections, record.details["sampled_frames"], record.details["sample_fps"])
    with c["store"].local_copy(c["store"].head("short.mp4")) as path:
        seeked = track_thumbnails(path, [t for t in tracks if t.track_id in stored], crops={})
    for track_id, jpeg in stored.items():
        kept, sought = decode_jpeg(bytes(jpeg)).astype(int), decode_jpeg(seeked[track_id]).astype(int)
        assert kept.shape == sought.shape and abs(kept - sought).mean() < 6, track_id


def test_detection_runs_on_the_tiles_the_videos_camera_asks_for(chain, db, tmp_path):
    c = chain
    zones = tmp_path / "zones.yaml"
    zones.write_text("detector_tiles:\n  '*': 3x2\n")

    def recorded_tiles():
        return db.execute("SELECT details->>'tiles' FROM stage_runs WHERE partition_key = %s AND stage = "
                          "'detections'", (c["key"],)).fetchone()[0]

    class Counting:
        """The real detector, counting the images it is given."""

        def __init__(self, detector):
            self.detector, self.class_names, self.images = detector, detector.class_names, 0

        def detect(self, frames):
            self.images += len(frames)
            return self.detector.detect(frames)

    plain_detector, tiled_detector = Counting(c["detector"]), Counting(c["detector"])
    plain = detections_stage.run(c["db"], c["key"], c["store"], plain_detector, c["detector_model"].stamp, sample_fps=1)
    assert plain.metadata["tiles"] == recorded_tiles() == "off"
    tiled = detections_stage.run(c["db"], c["key"], c["store"], tiled_detector, c["detector_model"].stamp, sample_fps=1,
                       tiles="off", zones_file=zones)
    assert tiled.metadata["tiles"] == recorded_tiles() == "3x2"
    # the same frames, each seen whole and as 6 tiles
    frames = plain.metadata["frames_processed"]
    assert tiled.metadata["frames_processed"] == frames == plain_detector.images > 0
    assert tiled_detector.images == 7 * frames
    assert tiled.rows > 0 and plain.rows > 0
