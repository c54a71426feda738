import os
import time

import pytest

from video_analysis.runtime.object_store import LocalFolderStore, ObjectChangedError, S3Store


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

    from video_analysis.runtime.object_store import ObjectStoreAccessError, ObjectStoreUnavailableError, s3_error

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
