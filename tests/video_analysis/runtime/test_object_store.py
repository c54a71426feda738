import os
import time

import pytest

from video_analysis.runtime.local_store import LocalFolderStore
from video_analysis.runtime.object_store import ObjectChangedError
from video_analysis.runtime.s3_store import S3Store


def _all_keys(store, limit):
    keys, after, pages = [], None, 0
    while True:
        page = store.list_page(after, limit)
        keys += [o.key for o in page.objects]
        pages += 1
        if page.next_start_after is None:
            return keys, pages
        after = page.next_start_after


def test_local_listing_pages_in_key_order_and_skips_hidden_files(tmp_path):
    store = LocalFolderStore(tmp_path)
    for i in range(7):
        (tmp_path / f"cam/{i}.mp4").parent.mkdir(exist_ok=True)
        (tmp_path / f"cam/{i}.mp4").write_bytes(b"x" * i)
    (tmp_path / "cam/.upload-partial").write_bytes(b"half")
    keys, pages = _all_keys(store, limit=3)
    assert keys == [f"cam/{i}.mp4" for i in range(7)]
    assert pages == 3


def test_local_version_changes_when_the_file_is_rewritten(tmp_path):
    store = LocalFolderStore(tmp_path)
    (tmp_path / "a.mp4").write_bytes(b"one")
    first = store.head("a.mp4")
    os.utime(tmp_path / "a.mp4", ns=(time.time_ns() + 10**9,) * 2)
    (tmp_path / "a.mp4").write_bytes(b"two!")
    assert store.head("a.mp4").version != first.version
    with pytest.raises(ObjectChangedError):
        store.fetch(first)


def _s3_store(s3_bucket, tmp_path, moto_endpoint):
    client, bucket = s3_bucket
    return client, S3Store(bucket, cache_dir=tmp_path / "cache", endpoint_url=moto_endpoint, region_name="us-east-1")


def test_s3_listing_is_paginated(s3_bucket, tmp_path, moto_endpoint):
    client, store = _s3_store(s3_bucket, tmp_path, moto_endpoint)
    for i in range(12):
        client.put_object(Bucket=store.bucket, Key=f"cameras/c{i:02d}.mp4", Body=b"v")
    client.put_object(Bucket=store.bucket, Key="cameras/", Body=b"")  # folder placeholder
    keys, pages = _all_keys(store, limit=5)
    assert keys == [f"cameras/c{i:02d}.mp4" for i in range(12)]
    assert pages == 3


def test_s3_fetch_streams_once_into_the_cache(s3_bucket, tmp_path, moto_endpoint):
    client, store = _s3_store(s3_bucket, tmp_path, moto_endpoint)
    client.put_object(Bucket=store.bucket, Key="odd name, é.mp4", Body=b"0123456789" * 1000)
    obj = store.head("odd name, é.mp4")
    path = store.fetch(obj)
    assert path.read_bytes() == b"0123456789" * 1000
    client.delete_object(Bucket=store.bucket, Key="odd name, é.mp4")
    assert store.fetch(obj) == path  # served from the cache, no second download


def test_s3_fetch_refuses_a_version_replaced_after_listing(s3_bucket, tmp_path, moto_endpoint):
    client, store = _s3_store(s3_bucket, tmp_path, moto_endpoint)
    client.put_object(Bucket=store.bucket, Key="a.mp4", Body=b"first")
    listed = store.head("a.mp4")
    client.put_object(Bucket=store.bucket, Key="a.mp4", Body=b"second upload")
    with pytest.raises(ObjectChangedError):
        store.fetch(listed)


def test_s3_listing_passes_a_page_holding_only_folder_placeholders(s3_bucket, tmp_path, moto_endpoint):
    client, store = _s3_store(s3_bucket, tmp_path, moto_endpoint)
    for i in range(7):  # a whole listing page of placeholders comes before the first video
        client.put_object(Bucket=store.bucket, Key=f"a-folders/{i}/", Body=b"")
    client.put_object(Bucket=store.bucket, Key="b/clip.mp4", Body=b"v")
    keys, _ = _all_keys(store, limit=3)
    assert keys == ["b/clip.mp4"]


def test_s3_errors_say_whether_the_video_or_the_store_is_at_fault(s3_bucket, tmp_path, moto_endpoint):
    from botocore.exceptions import ClientError

    from video_analysis.runtime.object_store import ObjectStoreAccessError, ObjectStoreUnavailableError
    from video_analysis.runtime.s3_store import s3_error

    client, store = _s3_store(s3_bucket, tmp_path, moto_endpoint)
    client.put_object(Bucket=store.bucket, Key="a.mp4", Body=b"v")
    listed = store.head("a.mp4")
    down = S3Store(store.bucket, cache_dir=tmp_path / "down", endpoint_url="http://127.0.0.1:9")
    with pytest.raises(ObjectStoreUnavailableError, match="store is unavailable"):
        down.fetch(listed)
    client.delete_object(Bucket=store.bucket, Key="a.mp4")
    with pytest.raises(ObjectChangedError):
        store.fetch(listed)

    def answered(code: str):
        return s3_error(ClientError({"Error": {"Code": code, "Message": code}}, "GetObject"), "cannot fetch x")

    assert isinstance(answered("AccessDenied"), ObjectStoreAccessError)
    assert isinstance(answered("ExpiredToken"), ObjectStoreAccessError)
    assert "fix the credentials" in str(answered("AccessDenied"))
    assert isinstance(answered("SlowDown"), ObjectStoreUnavailableError)
    assert isinstance(answered("InternalError"), ObjectStoreUnavailableError)
    assert isinstance(answered("NoSuchKey"), ObjectChangedError)


def _bounded_store(s3_bucket, tmp_path, moto_endpoint, max_bytes):
    client, bucket = s3_bucket
    store = S3Store(bucket, cache_dir=tmp_path / "cache", cache_max_bytes=max_bytes, endpoint_url=moto_endpoint,
                    region_name="us-east-1")
    objects = []
    for name in ("a", "b", "c"):
        client.put_object(Bucket=bucket, Key=f"bounded/{name}.mp4", Body=name.encode() * 10_000)
        objects.append(store.head(f"bounded/{name}.mp4"))
    return store, objects


def _cached(store) -> set[str]:
    return {p.name.split(".mp4")[0][-1] for p in store.cache.root.rglob("*.mp4*") if not p.name.startswith(".")}


def test_the_download_cache_keeps_to_its_bound_evicting_the_least_recently_used(s3_bucket, tmp_path, moto_endpoint):
    store, (a, b, c) = _bounded_store(s3_bucket, tmp_path, moto_endpoint, max_bytes=25_000)
    store.fetch(a)
    time.sleep(0.01)
    store.fetch(b)
    time.sleep(0.01)
    store.fetch(a)  # used again: b is now the least recently used
    time.sleep(0.01)
    store.fetch(c)
    assert _cached(store) == {"a", "c"}
    assert sum(p.stat().st_size for p in store.cache.root.rglob("*") if p.is_file()) <= 25_000


def test_the_download_cache_never_evicts_a_file_a_step_holds_until_that_step_dies(
    s3_bucket, tmp_path, moto_endpoint
):
    import signal
    import subprocess
    import sys

    store, (a, b, c) = _bounded_store(s3_bucket, tmp_path, moto_endpoint, max_bytes=15_000)
    holder = (
        "import sys, time\n"
        "from video_analysis.runtime.s3_store import S3Store\n"
        f"store = S3Store({store.bucket!r}, cache_dir={str(tmp_path / 'cache')!r}, endpoint_url={moto_endpoint!r},"
        " region_name='us-east-1')\n"
        "with store.local_copy(store.head('bounded/a.mp4')):\n"
        "    print('holding', flush=True)\n"
        "    time.sleep(600)\n"
    )
    step = subprocess.Popen([sys.executable, "-c", holder], stdout=subprocess.PIPE, text=True)
    try:
        assert step.stdout.readline().strip() == "holding"
        store.fetch(b)  # a is held: it stays, and the cache goes over its bound rather than break the step
        assert _cached(store) == {"a", "b"}
        store.fetch(c)  # b is free: it goes
        assert _cached(store) == {"a", "c"}
    finally:
        step.send_signal(signal.SIGKILL)
        step.wait()
    store.fetch(b)  # the step was killed: the kernel dropped its hold, so a can go now
    assert _cached(store) == {"b"}


def test_a_partial_download_left_by_a_killed_step_is_evicted(s3_bucket, tmp_path, moto_endpoint):
    store, (a, _, _) = _bounded_store(s3_bucket, tmp_path, moto_endpoint, max_bytes=15_000)
    leftover = store.cache.root / store.bucket / ".part-killed"
    leftover.parent.mkdir(parents=True)
    leftover.write_bytes(b"x" * 10_000)  # nobody holds it: the step writing it is gone
    store.fetch(a)
    assert not leftover.exists() and _cached(store) == {"a"}


def test_an_upload_lands_under_the_stores_prefix_where_the_sensor_lists(s3_bucket, tmp_path, moto_endpoint):
    client, bucket = s3_bucket
    store = S3Store(bucket, "site-a/", cache_dir=tmp_path / "cache", endpoint_url=moto_endpoint,
                    region_name="us-east-1")
    segment = tmp_path / "segment.mp4"
    segment.write_bytes(b"a recorded segment")
    uploaded = store.put(segment, "cameras/gate/2026-01-15T08-00-00.mp4")
    assert uploaded.key == "site-a/cameras/gate/2026-01-15T08-00-00.mp4"
    assert store.put(segment, uploaded.key).key == uploaded.key  # already under it: not prefixed twice
    keys, _ = _all_keys(store, limit=10)
    assert keys == ["site-a/cameras/gate/2026-01-15T08-00-00.mp4"]


def test_s3_footage_in_an_archive_class_says_how_to_restore_it_and_a_colder_class_is_seen(s3_bucket, tmp_path,
                                                                                      moto_endpoint):
    from video_analysis.runtime.object_store import ArchivedFootageError

    client, bucket = s3_bucket
    client.put_object(Bucket=bucket, Key="cameras/a/old.mp4", Body=b"x" * 100, StorageClass="GLACIER")
    client.put_object(Bucket=bucket, Key="cameras/a/warm.mp4", Body=b"y" * 100, StorageClass="STANDARD_IA")
    client.put_object(Bucket=bucket, Key="cameras/a/new.mp4", Body=b"z" * 100)
    store = S3Store(bucket, cache_dir=tmp_path, endpoint_url=moto_endpoint, region_name="us-east-1")
    found = {o.key: o for o in store.list_page(None, 10).objects}
    with pytest.raises(ArchivedFootageError, match="restore-object --bucket .* --key 'cameras/a/old.mp4'"):
        store.fetch(found["cameras/a/old.mp4"])
    assert store.fetch(found["cameras/a/warm.mp4"]).read_bytes() == b"y" * 100  # a cold class that reads at once
    # what the lifecycle rule moved is recorded by its class; what it has not moved yet is not cold
    assert store.move_to_cold(found["cameras/a/warm.mp4"]) == "STANDARD_IA"
    assert store.move_to_cold(found["cameras/a/new.mp4"]) is None


def test_local_footage_moved_to_the_cold_folder_keeps_its_version_and_reads_there(tmp_path):
    store = LocalFolderStore(tmp_path / "hot", tmp_path / "cold")
    (tmp_path / "hot" / "cameras" / "a").mkdir(parents=True)
    (tmp_path / "hot" / "cameras" / "a" / "s.mp4").write_bytes(b"segment")
    [obj] = store.list_page(None, 10).objects
    assert store.move_to_cold(obj) == "cold folder"
    assert store.list_page(None, 10).objects == []  # the upload sensor does not see it again
    assert store.head(obj.key).version == obj.version
    assert store.fetch(obj) == tmp_path / "cold" / "cameras" / "a" / "s.mp4"
    assert store.move_to_cold(obj) == "cold folder"  # a sweep that stopped before saying so, run again
    assert store.delete(obj) and not store.delete(obj)
