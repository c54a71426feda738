import hashlib
import shutil

import pytest
from dagster import materialize

from assets import raw_video
from assets.partitions import VIDEOS_PARTITIONS_NAME
from orchestration.definitions import build_resources
from orchestration.failures import failure_reasons
from orchestration.recovery import recover
from resources import ObjectStoreResource, PostgresResource
from tests.helpers import FlakyS3Proxy, SensorHarness
from video_analysis.runtime.embedded_postgres import EmbeddedPostgres
from video_analysis.store import catalog


def _materialize(instance, partition_key, resources=None):
    return materialize([raw_video], partition_key=partition_key, instance=instance,
                       resources=resources or build_resources(), raise_on_error=False)


def _video_rows(db):
    return db.execute("SELECT partition_key, status, error, frame_count, fps, width, height FROM videos").fetchall()


def _failure_message(result) -> str:
    [reason] = failure_reasons(result)
    return reason


def test_sensor_registered_clip_materializes_with_real_figures(dagster_instance, inbox, person_clip, db):
    shutil.copyfile(person_clip, inbox / "one-by-one-person-detection.mp4")
    [partition] = SensorHarness(dagster_instance).tick()

    result = _materialize(dagster_instance, partition)

    assert result.success
    [(key, status, error, frames, fps, width, height)] = _video_rows(db)
    assert (key, status, error) == (partition, "ready", None)
    assert (frames, fps, width, height) == (1394, 10.0, 768, 432)
    metadata = result.asset_materializations_for_node("raw_video")[0].metadata
    assert metadata["frames"].value == 1394 and metadata["width"].value == 768
    digest = hashlib.sha256(person_clip.read_bytes()).hexdigest()  # of the bytes the user dropped
    assert metadata["sha256"].value == digest
    assert db.execute("SELECT sha256 FROM videos WHERE partition_key = %s", (partition,)).fetchone() == (digest,)
    assert "data:image/jpeg;base64," in metadata["thumbnail"].value
    assert db.execute("SELECT status, row_count FROM stage_runs").fetchall() == [("done", 1)]


def test_rematerializing_never_duplicates(dagster_instance, inbox, bottle_clip, db):
    shutil.copyfile(bottle_clip, inbox / "bottle.mp4")
    [partition] = SensorHarness(dagster_instance).tick()
    assert _materialize(dagster_instance, partition).success
    assert _materialize(dagster_instance, partition).success
    assert db.execute("SELECT count(*), max(attempts) FROM videos").fetchone() == (1, 2)
    assert db.execute("SELECT count(*) FROM stage_runs").fetchone()[0] == 1


def test_each_bad_input_fails_clearly_and_writes_nothing_else(dagster_instance, inbox, bad_files, db):
    for name, (path, _) in bad_files.items():
        shutil.copyfile(path, inbox / name)
    sensor = SensorHarness(dagster_instance)
    partitions = sensor.tick()
    assert len(partitions) == len(bad_files)

    for partition in partitions:
        result = _materialize(dagster_instance, partition)
        assert not result.success
        name = partition.split("@")[0]
        assert bad_files[name][1] in _failure_message(result)

    rows = {key.split("@")[0]: (status, error, frames) for key, status, error, frames, *_ in _video_rows(db)}
    assert set(rows) == set(bad_files)
    for name, (status, error, frames) in rows.items():
        assert status == "failed" and bad_files[name][1] in error and frames is None
    assert {r[0] for r in db.execute("SELECT DISTINCT status FROM stage_runs")} == {"failed"}
    # The failed versions are known partitions: the sensor does not retry them.
    assert sensor.tick() == [] and sensor.tick() == []


def test_odd_names_and_wrong_extension_with_real_content_succeed(dagster_instance, inbox, bottle_clip, db):
    for name in ["front door, cam 2.mp4", "vidéo été.mp4", "clip-in-an.avi"]:
        shutil.copyfile(bottle_clip, inbox / name)
    for partition in SensorHarness(dagster_instance).tick():
        assert _materialize(dagster_instance, partition).success
    rows = db.execute("SELECT object_key, container, frame_count FROM videos ORDER BY 1").fetchall()
    assert rows == [("clip-in-an.avi", "mp4", 1189), ("front door, cam 2.mp4", "mp4", 1189),
                    ("vidéo été.mp4", "mp4", 1189)]


def test_a_file_removed_before_its_run_fails_with_the_reason(dagster_instance, inbox, bottle_clip, db):
    shutil.copyfile(bottle_clip, inbox / "gone.mp4")
    [partition] = SensorHarness(dagster_instance).tick()
    (inbox / "gone.mp4").unlink()
    result = _materialize(dagster_instance, partition)
    assert "gone.mp4" in _failure_message(result) and "is not in" in _failure_message(result)
    assert db.execute("SELECT status FROM videos").fetchone()[0] == "failed"


def test_s3_object_with_an_odd_name_is_fetched_and_probed(dagster_instance, s3_bucket, person_clip, db):
    client, bucket = s3_bucket
    client.upload_file(str(person_clip), bucket, "cameras/hall 1/2026-03-01T09-00-00, été.mp4")
    [partition] = SensorHarness(dagster_instance).tick()
    assert _materialize(dagster_instance, partition).success
    row = db.execute("SELECT source, bucket, camera, recorded_at IS NOT NULL, frame_count FROM videos").fetchone()
    assert row == ("s3", bucket, "hall 1", True, 1394)


def test_a_partition_with_no_registered_object_fails_clearly(dagster_instance, db):
    dagster_instance.add_dynamic_partitions(VIDEOS_PARTITIONS_NAME, ["made-up.mp4@abc"])
    result = _materialize(dagster_instance, "made-up.mp4@abc")
    assert "no video is registered for partition 'made-up.mp4@abc'" in _failure_message(result)


@pytest.fixture
def private_server(tmp_path):
    server = EmbeddedPostgres(tmp_path / "pg" / "postgres")
    yield server
    server.discard()


def test_a_database_that_goes_away_mid_run_leaves_nothing_half_written(
    dagster_instance, inbox, person_clip, private_server, monkeypatch
):
    monkeypatch.setenv("REELGRAPH_DATABASE_URL", private_server.start())
    shutil.copyfile(person_clip, inbox / "clip.mp4")
    [partition] = SensorHarness(dagster_instance).tick()

    class StopsDatabaseDuringProbe(ObjectStoreResource):
        """The real store; the database server is shut down once the video has been fetched."""

        def store(self):
            real = super().store()
            original_fetch = real.fetch

            def fetch(obj):
                path = original_fetch(obj)
                private_server.stop()
                return path

            real.fetch = fetch
            return real

    resources = {"database": PostgresResource(), "object_store": StopsDatabaseDuringProbe()}
    result = _materialize(dagster_instance, partition, resources)
    assert not result.success
    assert "connection" in _failure_message(result).lower()

    monkeypatch.setenv("REELGRAPH_DATABASE_URL", private_server.start())
    with PostgresResource().session() as conn:
        [video] = catalog.list_status(conn)
    # Only the "in flight" marker got written before the server went away: no probe figures.
    assert (video.status, video.frame_count, video.stages["raw_video"]["status"]) == ("registered", None, "running")

    recover(dagster_instance, PostgresResource())  # what `reelgraph dev` and `reelgraph process` do first
    with PostgresResource().session() as conn:
        [video] = catalog.list_status(conn)
    assert video.stages["raw_video"]["status"] == "failed"
    assert "ended (FAILURE) before it could record" in video.stages["raw_video"]["error"]
    assert _materialize(dagster_instance, partition).success


def test_an_object_answered_503_then_ok_completes_and_is_never_marked_failed(
    dagster_instance, s3_bucket, moto_endpoint, bottle_clip, db, monkeypatch
):
    client, bucket = s3_bucket
    client.upload_file(str(bottle_clip), bucket, "cameras/dock/2026-03-01T09-00-00.mp4")
    [partition] = SensorHarness(dagster_instance).tick()
    with FlakyS3Proxy(moto_endpoint, failures=3) as proxy:
        monkeypatch.setenv("REELGRAPH_S3_ENDPOINT_URL", proxy.url)
        result = _materialize(dagster_instance, partition)
    assert result.success, failure_reasons(result)
    assert proxy.refused == 3  # the store really answered SlowDown, and the client backed off and retried
    assert db.execute("SELECT status, error FROM videos").fetchone() == ("ready", None)


def test_a_store_that_stays_down_fails_the_run_but_not_the_video(
    dagster_instance, s3_bucket, moto_endpoint, bottle_clip, db, monkeypatch
):
    client, bucket = s3_bucket
    client.upload_file(str(bottle_clip), bucket, "cameras/dock/2026-03-01T10-00-00.mp4")
    [partition] = SensorHarness(dagster_instance).tick()
    with FlakyS3Proxy(moto_endpoint, failures=None) as proxy:
        monkeypatch.setenv("REELGRAPH_S3_ENDPOINT_URL", proxy.url)
        result = _materialize(dagster_instance, partition)
    assert not result.success
    assert "store is unavailable" in _failure_message(result)
    assert proxy.refused == 9  # the first request and 8 retries (botocore's max_attempts counts retries)
    # The video is not blamed: it stays registered, so a retry or a backfill picks it up again.
    assert db.execute("SELECT status, error FROM videos").fetchone() == ("registered", None)
    run = dagster_instance.get_run_by_id(result.run_id)
    assert run.tags.get("dagster/retry_on_asset_or_op_failure") != "false"  # run retries may re-run it
    monkeypatch.setenv("REELGRAPH_S3_ENDPOINT_URL", moto_endpoint)
    assert _materialize(dagster_instance, partition).success


def test_a_bad_file_turns_run_retries_off_for_its_run(dagster_instance, inbox, bad_files, db):
    path, _ = bad_files["empty.mp4"]
    shutil.copyfile(path, inbox / "empty.mp4")
    [partition] = SensorHarness(dagster_instance).tick()
    result = _materialize(dagster_instance, partition)
    assert not result.success
    run = dagster_instance.get_run_by_id(result.run_id)
    assert run.tags.get("dagster/retry_on_asset_or_op_failure") == "false"
