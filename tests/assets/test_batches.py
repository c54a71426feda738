"""Many videos in one run, the way a backfill launches them: one model load, per-video results, and a bad
video that fails only itself."""

import shutil

import pytest
from dagster import materialize
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from assets import VIDEO_STAGES
from orchestration.definitions import build_resources
from orchestration.failures import failure_reasons
from tests.helpers import SensorHarness

pytestmark = pytest.mark.slow

STAGES = [a.key.to_user_string() for a in VIDEO_STAGES]


@pytest.fixture(autouse=True)
def offline_profile(monkeypatch):
    monkeypatch.setenv("REELGRAPH_MODEL_PROFILE", "offline")


def _register(instance, inbox, files: dict) -> list[str]:
    for name, path in files.items():
        shutil.copyfile(path, inbox / name)
    return sorted(SensorHarness(instance).tick())  # the sensor lists, and registers, in key order


def _run_range(instance, first, last):
    return materialize(VIDEO_STAGES, instance=instance, resources=build_resources(), raise_on_error=False,
                       tags={ASSET_PARTITION_RANGE_START_TAG: first, ASSET_PARTITION_RANGE_END_TAG: last})


def _materialized(result) -> dict[str, list[str]]:
    found = {}
    for event in result.get_asset_materialization_events():
        materialization = event.event_specific_data.materialization
        found.setdefault(materialization.asset_key.to_user_string(), []).append(materialization.partition)
    return {stage: sorted(partitions) for stage, partitions in found.items()}


def test_one_run_carries_a_batch_of_videos_through_every_stage(dagster_instance, inbox, short_clip, db):
    keys = _register(dagster_instance, inbox, {f"cam-{i}.mp4": short_clip for i in range(3)})
    result = _run_range(dagster_instance, keys[0], keys[-1])
    assert result.success, failure_reasons(result)

    assert _materialized(result) == {stage: keys for stage in STAGES}
    done = db.execute("SELECT stage, count(*), count(DISTINCT run_id) FROM stage_runs WHERE status = 'done' "
                      "GROUP BY stage").fetchall()
    assert sorted(done) == sorted((stage, 3, 1) for stage in STAGES)
    # each partition's materialization carries its own counts, and the batch-wide model stamp
    for event in result.get_asset_materialization_events():
        materialization = event.event_specific_data.materialization
        if materialization.asset_key.to_user_string() == "detections":
            stored = db.execute("SELECT count(*) FROM detections WHERE partition_key = %s",
                                (materialization.partition,)).fetchone()[0]
            assert materialization.metadata["dagster/row_count"].value == stored > 0
            assert materialization.metadata["videos_in_run"].value == 3
            assert materialization.metadata["model"].value == "picodet-s-416"
    checks = {(e.asset_check_key.asset_key.to_user_string(), e.check_name): e for e in
              result.get_asset_check_evaluations()}
    assert checks[("detections", "boxes_inside_frame")].passed
    assert "passed for all 3 videos" in checks[("detections", "boxes_inside_frame")].metadata["detail"].value

    counts = db.execute("SELECT (SELECT count(*) FROM detections), (SELECT count(*) FROM tracks)").fetchone()
    assert _run_range(dagster_instance, keys[0], keys[-1]).success  # a re-run replaces, never duplicates
    assert db.execute("SELECT (SELECT count(*) FROM detections), (SELECT count(*) FROM tracks)").fetchone() == counts


def test_a_bad_video_in_a_batch_fails_alone_and_by_name(dagster_instance, inbox, short_clip, bad_files, db):
    truncated, message = bad_files["truncated.mp4"]
    keys = _register(dagster_instance, inbox, {"a.mp4": short_clip, "b-broken.mp4": truncated, "c.mp4": short_clip})
    good, bad = [keys[0], keys[2]], keys[1]
    assert bad.startswith("b-broken")

    result = _run_range(dagster_instance, keys[0], keys[-1])
    assert not result.success
    [reason] = failure_reasons(result)
    assert reason.startswith("raw_video: 1 of 3 videos failed at raw_video: ")
    assert bad in reason and message in reason and good[0] not in reason
    # the good videos are materialized (Dagster knows), the bad one is not, and nothing downstream ran
    assert _materialized(result) == {"raw_video": good}
    states = db.execute("SELECT partition_key, stage, status FROM stage_runs ORDER BY 1").fetchall()
    assert states == [(good[0], "raw_video", "done"), (bad, "raw_video", "failed"), (good[1], "raw_video", "done")]
    assert db.execute("SELECT status FROM videos WHERE partition_key = %s", (bad,)).fetchone() == ("failed",)
