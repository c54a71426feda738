"""Bulk registration (no runs) and the catalogue selection a backfill is built from, on moto's S3."""

from datetime import datetime, timezone

import pytest

from assets.partitions import VIDEOS_PARTITIONS_NAME
from orchestration.backfill import register_objects
from resources import ObjectStoreResource, PostgresResource
from tests.helpers import SensorHarness
from video_analysis.store import catalog

KEYS = [
    "cameras/a/2026-01-15T08-00-00.mp4",
    "cameras/a/2026-01-15T08-10-00.mp4",
    "cameras/a/2026-01-16T08-00-00.mp4",
    "cameras/a/readme.txt",
    "cameras/ab/2026-01-15T08-00-00.mp4",  # another camera whose name starts like "a"
    "cameras/b/2026-01-15T08-00-00.mp4",
    "phone uploads/clip (1).mp4",
]


@pytest.fixture
def bucket(s3_bucket):
    client, name = s3_bucket
    for key in KEYS:
        client.put_object(Bucket=name, Key=key, Body=b"footage " + key.encode())
    return name


def _object_keys(db, partition_keys) -> list[str]:
    rows = db.execute("SELECT object_key FROM videos WHERE partition_key = ANY(%s)", (list(partition_keys),))
    return [key for (key,) in rows.fetchall()]


def _utc(text):
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


def test_register_adds_partitions_under_a_prefix_and_the_sensor_leaves_them_alone(bucket, dagster_instance, db):
    store = ObjectStoreResource().store()
    # objects still being written (modified within the settle time) are left for later, as by the sensor
    assert register_objects(store, PostgresResource(), dagster_instance, settle_seconds=3600) == []
    added = register_objects(store, PostgresResource(), dagster_instance, prefix="cameras/a/", page_size=2)
    assert sorted(_object_keys(db, added)) == [
        "cameras/a/2026-01-15T08-00-00.mp4", "cameras/a/2026-01-15T08-10-00.mp4", "cameras/a/2026-01-16T08-00-00.mp4"]
    assert sorted(dagster_instance.get_dynamic_partitions(VIDEOS_PARTITIONS_NAME)) == sorted(added)
    assert register_objects(store, PostgresResource(), dagster_instance, prefix="cameras/a/") == []

    # the upload sensor asks runs only for what was not registered
    requested = SensorHarness(dagster_instance).tick()
    assert sorted(_object_keys(db, requested)) == [
        "cameras/ab/2026-01-15T08-00-00.mp4", "cameras/b/2026-01-15T08-00-00.mp4", "phone uploads/clip (1).mp4"]
    assert db.execute("SELECT count(*) FROM videos").fetchone() == (6,)


def test_selection_by_camera_time_prefix_and_failure(bucket, dagster_instance, db):
    register_objects(ObjectStoreResource().store(), PostgresResource(), dagster_instance)

    def selected(**fields):
        keys = catalog.select_videos(db, catalog.VideoSelection(**fields))
        return [_object_keys(db, [key])[0] for key in keys]

    assert len(selected()) == 6
    assert selected(camera="a", since=_utc("2026-01-15T08:05"), until=_utc("2026-01-16T00:00")) == [
        "cameras/a/2026-01-15T08-10-00.mp4"]
    assert selected(prefix="cameras/a") == [
        "cameras/a/2026-01-15T08-00-00.mp4", "cameras/a/2026-01-15T08-10-00.mp4",
        "cameras/a/2026-01-16T08-00-00.mp4", "cameras/ab/2026-01-15T08-00-00.mp4"]
    assert selected(prefix="phone uploads/") == ["phone uploads/clip (1).mp4"]
    assert selected(prefix="cameras/a_") == []  # a prefix is literal, not a LIKE pattern

    [broken] = catalog.select_videos(db, catalog.VideoSelection(camera="b"))
    catalog.mark_failed(db, broken, "not a video file")
    assert selected(camera="b") == []
    assert selected(camera="b", include_failed=True) == ["cameras/b/2026-01-15T08-00-00.mp4"]
