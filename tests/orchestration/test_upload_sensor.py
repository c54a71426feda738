import json
import os
import time
from collections import Counter

import pytest

from tests.helpers import SensorHarness
from tests.http_servers import S3Proxy
from video_analysis.runtime.keys import partition_key_for


@pytest.fixture
def sensor(dagster_instance, db):
    return SensorHarness(dagster_instance)


def _age(path, seconds=60):
    past = time.time() - seconds
    os.utime(path, (past, past))


def test_a_dropped_clip_becomes_one_partition_and_one_run(sensor, inbox, person_clip, db):
    (inbox / "lobby").mkdir()
    clip = inbox / "lobby" / "one-by-one-person-detection.mp4"
    clip.write_bytes(person_clip.read_bytes())
    requested = sensor.tick()
    assert len(requested) == 1 and requested[0].startswith("lobby/one-by-one-person-detection.mp4@")
    assert sensor.partitions == requested
    row = db.execute("SELECT object_key, source, status FROM videos").fetchall()
    assert row == [("lobby/one-by-one-person-detection.mp4", "local", "registered")]
    assert sensor.tick() == []  # nothing new on the next tick


def test_restarts_and_cursor_resets_never_request_a_version_twice(sensor, inbox):
    for i in range(6):
        (inbox / f"clip{i}.mp4").write_bytes(b"footage %d" % i)
    sensor.tick_until_quiet()
    sensor.restart()
    sensor.tick_until_quiet()
    sensor.reset_cursor()
    sensor.tick_until_quiet()
    sensor.restart()
    sensor.reset_cursor()
    sensor.tick_until_quiet()
    assert len(sensor.run_keys) == 6
    assert Counter(sensor.run_keys).most_common(1)[0][1] == 1


def test_a_file_still_being_written_waits_for_a_later_tick(sensor, inbox, monkeypatch):
    monkeypatch.setenv("REELGRAPH_SETTLE_SECONDS", "30")
    done, growing = inbox / "a_done.mp4", inbox / "b_growing.mp4"
    done.write_bytes(b"finished upload")
    _age(done)
    growing.write_bytes(b"half of an upl")
    assert [k.split("@")[0] for k in sensor.tick()] == ["a_done.mp4"]
    growing.write_bytes(b"half of an upload, now complete")
    assert sensor.tick() == []
    _age(growing)
    assert [k.split("@")[0] for k in sensor.tick()] == ["b_growing.mp4"]
    assert sensor.tick() == []


def test_an_object_that_never_settles_blocks_nothing_after_it(sensor, inbox, monkeypatch):
    monkeypatch.setenv("REELGRAPH_SETTLE_SECONDS", "30")
    monkeypatch.setenv("REELGRAPH_OBJECTS_PER_TICK", "3")
    growing = inbox / "a_growing.mp4"
    growing.write_bytes(b"x")
    for i in range(7):
        (inbox / f"b{i}.mp4").write_bytes(b"done %d" % i)
        _age(inbox / f"b{i}.mp4")
    requested = []
    for size in range(2, 5):  # three ticks; it grows on every one, as a recording that is never closed
        growing.write_bytes(b"x" * size)
        requested.append(sorted(k.split("@")[0] for k in sensor.tick()))
    # 3 objects listed per tick, the growing one first: the 7 after it are all registered in 3 ticks
    assert requested == [["b0.mp4", "b1.mp4"], ["b2.mp4", "b3.mp4", "b4.mp4"], ["b5.mp4", "b6.mp4"]]
    assert list(json.loads(sensor.cursor)["pending"]) == ["a_growing.mp4"]  # still waiting, remembered


def test_a_modification_time_in_the_future_is_settled_by_a_steady_version(sensor, inbox, monkeypatch):
    monkeypatch.setenv("REELGRAPH_SETTLE_SECONDS", "2")
    skewed, after = inbox / "a_skewed_clock.mp4", inbox / "b_after.mp4"
    skewed.write_bytes(b"recorded by a camera whose clock runs a day ahead")
    future = time.time() + 86400
    os.utime(skewed, (future, future))
    after.write_bytes(b"an ordinary upload")
    _age(after)
    assert [k.split("@")[0] for k in sensor.tick()] == ["b_after.mp4"]
    time.sleep(2.2)
    assert [k.split("@")[0] for k in sensor.tick()] == ["a_skewed_clock.mp4"]
    assert sensor.tick() == []


def test_a_name_that_is_not_utf8_is_skipped_and_reported_once(sensor, inbox, db, capfd):
    os.close(os.open(os.path.join(os.fsencode(inbox), b"lobby-\xff\xfe.mp4"), os.O_CREAT | os.O_WRONLY))
    (inbox / "z_fine.mp4").write_bytes(b"fine")
    _age(inbox / "z_fine.mp4")
    assert [k.split("@")[0] for k in sensor.tick()] == ["z_fine.mp4"]
    sensor.tick_until_quiet()
    sensor.tick()
    warnings = [line for line in capfd.readouterr().err.splitlines() if "not valid UTF-8" in line]
    assert len(warnings) == 1 and "lobby-" in warnings[0]
    assert [row[0] for row in db.execute("SELECT object_key FROM videos")] == ["z_fine.mp4"]


def test_listing_is_bounded_per_tick(sensor, inbox, monkeypatch):
    monkeypatch.setenv("REELGRAPH_OBJECTS_PER_TICK", "5")
    for i in range(12):
        (inbox / f"seg{i:02d}.mp4").write_bytes(b"x%d" % i)
    sizes = [len(sensor.tick()) for _ in range(3)]
    assert sizes == [5, 5, 2]
    assert sensor.cursor_position() is None  # the pass wrapped around
    assert sensor.tick() == []


def test_non_video_names_and_hidden_partial_uploads_are_ignored(sensor, inbox, db):
    (inbox / "README.txt").write_text("camera notes")
    (inbox / ".upload-3f2a.mp4").write_bytes(b"partial")
    assert sensor.tick() == []
    assert db.execute("SELECT count(*) FROM videos").fetchone()[0] == 0


def test_odd_names_are_registered_under_safe_keys(sensor, inbox, db):
    names = ["front door.mp4", "entrée été.mp4", "a,b|c.mp4", "로비 카메라.mp4"]
    for name in names:
        (inbox / name).write_bytes(name.encode())
    requested = sensor.tick()
    assert len(requested) == 4
    assert not any(c in k for k in requested for c in ", |")
    stored = {row[0] for row in db.execute("SELECT object_key FROM videos")}
    assert stored == set(names)


def test_twenty_s3_uploads_give_one_partition_per_object_version(sensor, s3_bucket, db):
    client, bucket = s3_bucket

    def upload(key, body):
        client.put_object(Bucket=bucket, Key=key, Body=body)

    keys = [f"cameras/cam{i % 3}/2026-01-0{1 + i % 3}T10-{i:02d}-00.mp4" for i in range(12)]
    for key in keys:
        upload(key, f"original {key}".encode())
    sensor.tick_until_quiet()
    for key in keys[:4]:
        upload(key, f"original {key}".encode())  # duplicate: the same bytes again, the same version
    for key in keys[4:8]:
        upload(key, f"re-encoded {key}".encode())  # re-upload: new bytes, a new version
    sensor.tick_until_quiet()
    sensor.restart()
    sensor.reset_cursor()
    sensor.tick_until_quiet()

    expected = {partition_key_for(k, client.head_object(Bucket=bucket, Key=k)["ETag"]) for k in keys}
    assert len(sensor.partitions) == 16 == len(set(sensor.partitions))
    assert expected <= set(sensor.partitions)
    assert sorted(sensor.run_keys) == sorted(sensor.partitions)
    rows = db.execute("SELECT count(*), count(DISTINCT partition_key), count(camera) FROM videos").fetchone()
    assert rows == (16, 16, 16)


class SlowHeadsProxy(S3Proxy):
    """A local HTTP proxy in front of moto's S3 whose every HEAD takes ``delay_s`` (a slow or distant store);
    other requests pass at once. Counts the HEADs it received."""

    def __init__(self, upstream: str, delay_s: float):
        self.delay_s, self.heads = delay_s, 0
        self.head_paths: list[str] = []
        super().__init__(upstream)

    def intercept(self, handler, body: bytes) -> bool:
        if handler.command == "HEAD":
            self.heads += 1
            self.head_paths.append(handler.path)
            time.sleep(self.delay_s)
        return False


def test_remembered_objects_are_looked_at_again_within_a_20_s_budget_per_tick(sensor, s3_bucket, moto_endpoint,
                                                                               monkeypatch):
    client, bucket = s3_bucket
    keys = [f"cameras/dock/2026-03-01T10-{i:02d}-00.mp4" for i in range(24)]
    for key in keys:
        client.put_object(Bucket=bucket, Key=key, Body=b"still being written")
    monkeypatch.setenv("REELGRAPH_SETTLE_SECONDS", "3600")
    assert sensor.tick() == []  # all listed, none settled: each is remembered
    assert sorted(json.loads(sensor.cursor)["pending"]) == keys
    proxy = SlowHeadsProxy(moto_endpoint, delay_s=1.5)
    try:
        monkeypatch.setenv("REELGRAPH_S3_ENDPOINT_URL", proxy.url)
        monkeypatch.setenv("REELGRAPH_OBJECTS_PER_TICK", "1")  # one listed; the 23 others are looked at by HEAD
        started = time.monotonic()
        assert sensor.tick() == []
        took = time.monotonic() - started
    finally:
        proxy.close()
    # 23 HEADs of 1.5 s would take 34.5 s; HEADs start until 20 s have gone, so 14 at most (13 on a busy machine)
    assert 12 <= proxy.heads <= 14, proxy.heads
    assert 19.5 <= took < 24, took
    assert sorted(json.loads(sensor.cursor)["pending"]) == keys  # the ones not looked at are still remembered


def test_remembered_objects_take_turns_when_the_budget_cannot_look_at_them_all(s3_bucket, moto_endpoint,
                                                                              monkeypatch):
    from datetime import datetime, timezone

    from resources import ObjectStoreResource
    from video_analysis.runtime.discovery import ScanCursor, scan

    client, bucket = s3_bucket
    keys = [f"cameras/yard/2026-03-01T11-{i:02d}-00.mp4" for i in range(20)]
    for key in keys:
        client.put_object(Bucket=bucket, Key=key, Body=b"still being written")
    proxy = SlowHeadsProxy(moto_endpoint, delay_s=0.3)
    try:
        monkeypatch.setenv("REELGRAPH_S3_ENDPOINT_URL", proxy.url)
        store, now = ObjectStoreResource().store(), datetime.now(timezone.utc)
        cursor = scan(store, ScanCursor(None), set(), now=now, settle_seconds=3600, limit=100).cursor
        assert sorted(cursor.pending) == keys and proxy.heads == 0  # all listed at once, all remembered
        looked_at = []
        for _ in range(3):  # one listed a tick, the rest by HEAD for as long as a 1 s budget allows
            before = len(proxy.head_paths)
            cursor = scan(store, cursor, set(), now=now, settle_seconds=3600, limit=1, budget_s=1.0).cursor
            looked_at.append(set(proxy.head_paths[before:]))
    finally:
        proxy.close()
    assert all(0 < len(tick) < 19 for tick in looked_at), looked_at
    # each tick looks at the ones that waited longest: never the same few again while others wait
    assert not looked_at[0] & looked_at[1] and not looked_at[1] & looked_at[2], looked_at
    assert sorted(cursor.pending) == keys
