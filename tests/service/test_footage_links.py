"""Where `GET /api/videos/{partition}/video` sends a player: the bytes of an S3 object through a presigned URL,
and 410 once the key holds a newer upload. The app runs in process over a real database and moto's S3 server."""

from datetime import datetime, timezone

import httpx
import pytest
from fastapi.testclient import TestClient

from resources import ObjectStoreResource
from service.app import ServiceContext, create_app
from video_analysis.runtime.object_store import ObjectInfo
from video_analysis.store import catalog
from video_analysis.store.db import PooledDatabase, connect, session


@pytest.fixture
def footage(pg_dsn, s3_bucket, state_home):
    client, bucket = s3_bucket
    store = ObjectStoreResource().store()
    database = PooledDatabase(pg_dsn, max_size=2)
    app = create_app(ServiceContext(database=database, store=store, text_embedder=None, text_model_name="none"))
    registered: list[str] = []
    try:
        with TestClient(app, base_url="http://127.0.0.1") as browser:
            yield client, bucket, store, browser, registered
    finally:
        database.close()
        with connect(pg_dsn, autocommit=True) as conn:
            conn.execute("DELETE FROM videos WHERE partition_key = ANY(%s)", (registered,))


def _register(pg_dsn, obj: ObjectInfo, registered: list[str]) -> str:
    with session(pg_dsn) as conn:
        catalog.register(conn, obj)
    registered.append(obj.partition_key)
    return obj.partition_key


def test_s3_footage_is_a_presigned_redirect_to_exactly_that_version(pg_dsn, footage):
    client, bucket, store, browser, registered = footage
    client.put_object(Bucket=bucket, Key="cameras/gate/clip.mp4", Body=b"\x00\x00\x00\x18ftypmp42" + b"x" * 1000)
    partition = _register(pg_dsn, store.head("cameras/gate/clip.mp4"), registered)
    answer = browser.get(f"/api/videos/{partition}/video", follow_redirects=False)
    assert answer.status_code == 307
    location = answer.headers["location"]
    assert location.startswith(store.client.meta.endpoint_url) and "Signature" in location
    fetched = httpx.get(location, headers={"Range": "bytes=4-11"})
    assert fetched.status_code == 206 and fetched.content == b"ftypmp42"


def test_footage_whose_key_now_holds_a_newer_upload_answers_410_naming_the_newer_one(pg_dsn, footage):
    client, bucket, store, browser, registered = footage
    client.put_object(Bucket=bucket, Key="cameras/gate/replaced.mp4", Body=b"the first upload")
    first = _register(pg_dsn, store.head("cameras/gate/replaced.mp4"), registered)
    client.put_object(Bucket=bucket, Key="cameras/gate/replaced.mp4", Body=b"the upload that replaced it")
    newer = store.head("cameras/gate/replaced.mp4").partition_key
    answer = browser.get(f"/api/videos/{first}/video", follow_redirects=False)
    assert answer.status_code == 410 and newer in answer.json()["detail"], answer.text
    assert bucket not in answer.text  # the client learns which video, not where the store keeps it


def test_a_day_at_the_end_of_the_calendar_is_a_client_error_not_a_500(footage):
    *_, browser, _ = footage
    answer = browser.get("/api/cameras/lobby/day", params={"day": "9999-12-31"})
    assert answer.status_code == 422 and "day must be before 9999-12-31" in answer.json()["detail"]
    assert browser.get("/api/cameras/lobby/day", params={"day": "9999-12-30"}).status_code == 404  # no such camera


def test_footage_gone_from_the_store_is_404_without_the_bucket(pg_dsn, footage):
    client, bucket, store, browser, registered = footage
    gone = ObjectInfo(key="cameras/gate/deleted.mp4", version="v1", size=1, source="s3", bucket=bucket,
                      last_modified=datetime(2026, 1, 1, tzinfo=timezone.utc))
    partition = _register(pg_dsn, gone, registered)
    answer = browser.get(f"/api/videos/{partition}/video", follow_redirects=False)
    assert answer.status_code == 404 and partition in answer.json()["detail"]
    assert bucket not in answer.text and "s3://" not in answer.text, answer.text


def test_a_request_that_waits_5_s_for_a_free_connection_gets_503_with_retry_after(pg_dsn, state_home):
    """Every pooled connection busy (as under a burst): a request waits for one up to 5 s, then is told to come
    back, instead of holding a worker thread for as long as the burst lasts."""
    import time

    database = PooledDatabase(pg_dsn, max_size=2, wait_s=5.0)  # as `reelgraph serve` builds it, with two connections
    app = create_app(ServiceContext(database=database, store=ObjectStoreResource().store(), text_embedder=None,
                                    text_model_name="none"))
    try:
        with TestClient(app, base_url="http://127.0.0.1") as browser:
            assert browser.get("/api/videos").status_code == 200
            with database.session(), database.session():  # every connection taken
                started = time.monotonic()
                busy = browser.get("/api/videos")
                waited = time.monotonic() - started
            assert busy.status_code == 503 and busy.headers["retry-after"] == "5", busy.text
            assert 5.0 <= waited < 5.0 + 3.0, waited
            assert browser.get("/api/videos").status_code == 200  # the connections back: served again
    finally:
        database.close()
