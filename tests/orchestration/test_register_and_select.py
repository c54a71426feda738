"""Bulk registration (no runs) and the catalogue selection a backfill is built from, on moto's S3."""

from datetime import datetime, timezone

import pytest

from assets.partitions import VIDEOS_PARTITIONS_NAME
from orchestration.backfill import register_objects
from resources import ObjectStoreResource, PostgresResource
from tests.helpers import SensorHarness
from tests.http_servers import graphql_server
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


class RecordingWebserver:
    """A real HTTP server answering the GraphQL a backfill sends: every catalogued video is a partition, and each
    launch is recorded and accepted."""

    def __init__(self, partitions: list[str]):
        self.launched: list[dict] = []
        self.partitions = partitions
        self.server = graphql_server(self.answer)
        self.url = self.server.url

    def answer(self, request: dict) -> dict:
        if "launchPartitionBackfill" in request["query"]:
            self.launched.append(request["variables"]["params"])
            return {"launchPartitionBackfill": {"__typename": "LaunchBackfillSuccess", "backfillId": "bf1"}}
        return {"assetNodes": [{"assetKey": key, "partitionKeys": self.partitions}
                               for key in request["variables"]["keys"]]}

    def close(self):
        self.server.close()


def test_backfill_from_a_stage_since_a_time_launches_that_stage_on_for_the_videos_recorded_since(db, capsys):
    from orchestration.cli import main
    from video_analysis.runtime.object_store import ObjectInfo

    keys = {}
    for key in ("cameras/a/2026-01-15T08-00-00.mp4", "cameras/a/2026-01-15T08-10-00.mp4",
                "cameras/b/2026-01-16T08-00-00.mp4"):
        obj = ObjectInfo(key=key, version="1", size=1, last_modified=_utc("2026-01-17T00:00"), source="local")
        catalog.register(db, obj)
        keys[key] = obj.partition_key
    webserver = RecordingWebserver(list(keys.values()))
    try:
        since = ["--since", "2026-01-15T10:05+02:00", "--from-stage", "tracks", "--url", webserver.url]  # 08:05 UTC
        assert main(["backfill", *since, "--dry-run"]) == 0
        assert "2 catalogued videos match: 2 videos through tracks -> attributes -> embeddings -> summaries" in (
            capsys.readouterr().out)
        assert webserver.launched == []  # a dry run launches nothing
        assert main(["backfill", *since]) == 0
        assert "backfill bf1 launched" in capsys.readouterr().out
        assert main(["backfill", "--since", "2026-01-16T08:00", "--url", webserver.url]) == 0  # UTC, inclusive
    finally:
        webserver.close()
    first, whole_chain = webserver.launched
    assert first["assetSelection"] == [{"path": [stage]} for stage in ("tracks", "attributes", "embeddings",
                                                                        "summaries")]
    assert first["partitionNames"] == [keys["cameras/a/2026-01-15T08-10-00.mp4"],
                                       keys["cameras/b/2026-01-16T08-00-00.mp4"]]
    assert whole_chain["assetSelection"][0] == {"path": ["raw_video"]} and len(whole_chain["assetSelection"]) == 6
    assert whole_chain["partitionNames"] == [keys["cameras/b/2026-01-16T08-00-00.mp4"]]
