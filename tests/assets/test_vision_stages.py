"""detections and tracks on the real sample clips, offline profile (PicoDet-S on the CPU)."""

import shutil

import pytest
from dagster import materialize

from assets import VIDEO_STAGES, detections, tracks
from orchestration.definitions import build_resources
from orchestration.failures import failure_reasons
from resources import ModelRegistryResource
from tests.helpers import PEOPLE_ON_SCREEN, SensorHarness, write_manifest
from video_analysis.vision.detectors import load_detector
from video_analysis.vision.frames import iter_frames

pytestmark = pytest.mark.slow

# Bottles on screen in bottle-detection.mp4 (640x360, 29.83 fps), counted by eye: frames were extracted to
# PNG with cv2 (every 150th frame, then every 30th frame as a contact sheet) and looked at one by one. Three
# bottles stand on a table (left, middle, right); a hand takes them away and puts them back over the clip.
# Keys are seconds (frame index / 29.83: frames 0, 90, 150, 270, 300, 450, 570, 600, 780, 900, 990, 1140),
# all moments with no hand in the picture and the same count for a second on either side.
BOTTLES_BY_EYE = {0.0: 3, 3.0: 3, 5.0: 3, 9.1: 2, 10.1: 2, 15.1: 3, 19.1: 1, 20.1: 1, 26.1: 2, 30.2: 3, 33.2: 2,
                  38.2: 3}
# Over the whole clip the same sheet shows 7 separate bottle appearances (left 3, middle 2, right 2). Track
# counts are not held to that: the offline SSD misses the middle bottle (it finds one bottle fewer than the
# eye on each of the frames above), so its tracks come out at about 5.


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
    for _, _, first, last, _, thumbnail in people:  # and no track glues two people together (the crossings were
        # timed by eye: a person seen stepping in 1.6 s early is still theirs)
        assert sum(first < end + 2 and last > start - 2 for start, end in PEOPLE_ON_SCREEN) == 1, (first, last)
        assert thumbnail.startswith(b"\xff\xd8") and len(thumbnail) < 20_000

    outcomes = _check_outcomes(result)
    assert all(outcomes.values()) and {asset for asset, _ in outcomes} == {
        "detections", "tracks", "embeddings", "summaries"}
    stamped = db.execute("SELECT DISTINCT model_name, model_version FROM detections").fetchall()
    assert stamped == [("picodet-s-416", "picodet-s-416-2021.10")]
    metadata = result.asset_materializations_for_node("detections")[0].metadata
    # 6 fps of the 10 fps clip is every 2nd frame: 697 of its 1394
    assert metadata["frames_processed"].value == 697 and metadata["per_class"].value["person"] > 300
    assert "data:image/jpeg;base64," in metadata["preview"].value


def test_bottle_clip_yields_bottles_not_people(dagster_instance, inbox, bottle_clip, db):
    partition = _register(dagster_instance, inbox, bottle_clip)
    first = _run(dagster_instance, partition)
    assert first.success, failure_reasons(first)
    classes = [t[1] for t in _tracks(db, partition)]
    assert classes.count("bottle") >= 3
    assert classes.count("person") < classes.count("bottle")

    # Bottles detected on the sampled frame nearest each moment counted by eye: within one of the eye count.
    frames = db.execute("SELECT frame_index, min(t), count(*) FILTER (WHERE class_name = 'bottle') FROM detections "
                        "WHERE partition_key = %s GROUP BY frame_index", (partition,)).fetchall()
    detected = {}
    for moment in BOTTLES_BY_EYE:
        near = sorted((abs(t - moment), bottles) for _, t, bottles in frames if abs(t - moment) <= 0.3)
        detected[moment] = near[0][1] if near else 0  # a sampled frame with no detections at all has no rows
    assert all(abs(detected[m] - BOTTLES_BY_EYE[m]) <= 1 for m in BOTTLES_BY_EYE), (detected, BOTTLES_BY_EYE)

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


class ZeroConfidenceModels(ModelRegistryResource):
    """The registry as configured, its detector loaded with confidence 0 (the resource has no threshold setting):
    random weights score below the default threshold, and the tiny YOLO's boxes are to reach the stages."""

    def load(self, task: str, allow_download: bool = True):
        if task != "detector":
            return super().load(task, allow_download)
        resolved = self.resolve(task, allow_download)
        return resolved, load_detector(resolved.backend, resolved.path, resolved.config_path, confidence=0.0)


def test_yolo_backend_runs_the_chain_through_the_registry(dagster_instance, inbox, bottle_clip, db, tmp_path,
                                                          tiny_yolo):
    manifest = write_manifest(tmp_path, {"yolo11n-tiny": {"task": "detector", "backend": "ultralytics",
                                                          "source": str(tiny_yolo), "version": "tiny-1"}},
                              {"full": {"detector": "yolo11n-tiny"}})
    resources = {**build_resources(), "models": ZeroConfidenceModels(profile="full", manifest=str(manifest))}
    partition = _register(dagster_instance, inbox, bottle_clip)
    config = {"ops": {"detections": {"config": {"sample_fps": 1}}}}
    result = _run(dagster_instance, partition, VIDEO_STAGES[:3], resources=resources, run_config=config)
    assert result.success, failure_reasons(result)
    metadata = result.asset_materializations_for_node("detections")[0].metadata
    assert (metadata["model"].value, metadata["model_version"].value, metadata["frames_processed"].value) == (
        "yolo11n-tiny", "tiny-1", 40)
    stage = db.execute("SELECT model_version FROM stage_runs WHERE stage = 'detections'").fetchone()
    assert stage == ("tiny-1",)
    outcomes = _check_outcomes(result)
    assert outcomes[("detections", "boxes_inside_frame")] and outcomes[("detections", "scores_in_unit_range")]

    # 1 fps of the 29.83 fps clip is every 30th frame (a whole step of its frames): 40 frames in its 39.9 s.
    sampled = [(frame.index, frame.timestamp) for frame in iter_frames(bottle_clip, sample_fps=1)]
    assert [index for index, _ in sampled] == list(range(0, 1189, 30))
    stored = db.execute("SELECT frame_index, min(t), max(t), count(*), min(x1), min(y1), max(x2), max(y2), "
                        "bool_and(x1 <= x2 AND y1 <= y2), min(confidence), max(confidence) "
                        "FROM detections WHERE partition_key = %s GROUP BY frame_index ORDER BY frame_index",
                        (partition,)).fetchall()
    # At confidence 0 every sampled frame has boxes, each stored under that frame's own index and time...
    assert [(row[0], row[1]) for row in stored] == [(index, pytest.approx(t, abs=1e-3)) for index, t in sampled]
    assert all(row[1] == row[2] and row[3] > 0 for row in stored)
    # ...and inside the 640x360 frame, with scores in [0, 1].
    for index, _, _, _, x1, y1, x2, y2, ordered, low, high in stored:
        assert x1 >= 0 and y1 >= 0 and x2 <= 640 and y2 <= 360 and ordered, index
        assert 0 <= low <= high <= 1, index
