"""detections and tracks on the real sample clips, offline profile (SSD-MobileNet-v2 on the CPU)."""

import shutil

import pytest
from dagster import materialize

from assets import VIDEO_STAGES, detections, tracks
from orchestration.definitions import build_resources
from orchestration.results import failure_reasons
from resources import ModelRegistryResource
from tests.conftest import write_manifest
from tests.orchestration.sensor_ticks import SensorHarness

pytestmark = pytest.mark.slow

# Counted by eye on a contact sheet of one-by-one-person-detection.mp4: six people cross the room one
# at a time, in these intervals (seconds).
PEOPLE_ON_SCREEN = [(8, 20), (24, 46), (52, 70), (76, 88), (94, 120), (124, 136)]


@pytest.fixture(autouse=True)
def offline_profile(monkeypatch):
    monkeypatch.setenv("REELGRAPH_MODEL_PROFILE", "offline")


def _run(instance, partition, selection=VIDEO_STAGES, resources=None, run_config=None):
    return materialize(selection, partition_key=partition, instance=instance, raise_on_error=False,
                       resources=resources or build_resources(), run_config=run_config)


def _register(instance, inbox, clip, name=None):
    shutil.copyfile(clip, inbox / (name or clip.name))
    [partition] = SensorHarness(instance).tick()
    return partition


def _tracks(db, partition, cls=None):
    return db.execute(
        "SELECT track_id, class_name, first_t, last_t, frames_seen, thumbnail_jpeg FROM tracks "
        "WHERE partition_key = %s AND (%s::text IS NULL OR class_name = %s) ORDER BY first_t",
        (partition, cls, cls),
    ).fetchall()


def _check_outcomes(result):
    return {(e.asset_check_key.asset_key.to_user_string(), e.check_name): e.passed
            for e in result.get_asset_check_evaluations()}


def test_person_clip_yields_one_track_per_person(dagster_instance, inbox, person_clip, db):
    partition = _register(dagster_instance, inbox, person_clip)
    result = _run(dagster_instance, partition)
    assert result.success, failure_reasons(result)

    people = _tracks(db, partition, "person")
    assert abs(len(people) - len(PEOPLE_ON_SCREEN)) <= 1, [(p[2], p[3]) for p in people]
    for start, end in PEOPLE_ON_SCREEN:  # every crossing is found, at the right time
        assert any(p[2] < end and p[3] > start for p in people), (start, end)
    for _, _, first, last, _, thumbnail in people:  # and no track glues two people together
        assert sum(first < end and last > start for start, end in PEOPLE_ON_SCREEN) == 1
        assert thumbnail.startswith(b"\xff\xd8") and len(thumbnail) < 20_000

    outcomes = _check_outcomes(result)
    assert all(outcomes.values()) and {asset for asset, _ in outcomes} == {
        "detections", "tracks", "embeddings", "summaries"}
    stamped = db.execute("SELECT DISTINCT model_name, model_version FROM detections").fetchall()
    assert stamped == [("ssd-mobilenet-v2-coco", "ssd-mobilenet-v2-coco-2018-03-29")]
    metadata = result.asset_materializations_for_node("detections")[0].metadata
    assert metadata["frames_processed"].value == 279 and metadata["per_class"].value["person"] > 100
    assert "data:image/jpeg;base64," in metadata["preview"].value


def test_bottle_clip_yields_bottles_not_people(dagster_instance, inbox, bottle_clip, db):
    partition = _register(dagster_instance, inbox, bottle_clip)
    first = _run(dagster_instance, partition)
    assert first.success, failure_reasons(first)
    classes = [t[1] for t in _tracks(db, partition)]
    assert classes.count("bottle") >= 3
    assert classes.count("person") < classes.count("bottle")

    counts = db.execute("SELECT (SELECT count(*) FROM detections), (SELECT count(*) FROM tracks)").fetchone()
    assert _run(dagster_instance, partition, [detections, tracks]).success  # re-materialize both stages
    assert db.execute("SELECT (SELECT count(*) FROM detections), (SELECT count(*) FROM tracks)").fetchone() == counts


def test_every_frame_when_asked(dagster_instance, inbox, short_clip, db):
    partition = _register(dagster_instance, inbox, short_clip)
    assert _run(dagster_instance, partition, VIDEO_STAGES[:1]).success
    config = {"ops": {"detections": {"config": {"sample_fps": 0, "batch_size": 16}}}}
    result = _run(dagster_instance, partition, [detections], run_config=config)
    assert result.success
    assert result.asset_materializations_for_node("detections")[0].metadata["frames_processed"].value == 48


def test_stages_refuse_a_video_that_failed_its_probe(dagster_instance, inbox, bad_files, db):
    path, _ = bad_files["notes.mp4"]
    partition = _register(dagster_instance, inbox, path)
    result = _run(dagster_instance, partition, [detections])
    assert "is not a usable video (raw_video is registered" in failure_reasons(result)[0]
    _run(dagster_instance, partition, VIDEO_STAGES[:1])
    result = _run(dagster_instance, partition, [detections])
    assert "raw_video is failed: not a video file" in failure_reasons(result)[0]
    status = db.execute("SELECT status, error FROM stage_runs WHERE stage = 'detections'").fetchone()
    assert status[0] == "failed" and "not a usable video" in status[1]


def test_yolo_backend_runs_the_chain_through_the_registry(dagster_instance, inbox, bottle_clip, db, tmp_path,
                                                          tiny_yolo):
    manifest = write_manifest(tmp_path, {"yolo11n-tiny": {"task": "detector", "backend": "ultralytics",
                                                          "source": str(tiny_yolo), "version": "tiny-1"}},
                              {"full": {"detector": "yolo11n-tiny"}})
    resources = {**build_resources(), "models": ModelRegistryResource(profile="full", manifest=str(manifest))}
    partition = _register(dagster_instance, inbox, bottle_clip)
    config = {"ops": {"detections": {"config": {"sample_fps": 1}}}}
    result = _run(dagster_instance, partition, VIDEO_STAGES[:3], resources=resources, run_config=config)
    assert result.success, failure_reasons(result)
    metadata = result.asset_materializations_for_node("detections")[0].metadata
    assert (metadata["model"].value, metadata["model_version"].value, metadata["frames_processed"].value) == (
        "yolo11n-tiny", "tiny-1", 40)
    stage = db.execute("SELECT model_version FROM stage_runs WHERE stage = 'detections'").fetchone()
    assert stage == ("tiny-1",)
