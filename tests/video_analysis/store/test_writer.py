"""The one partition writer: a re-run replaces, and two runs of one partition at once never duplicate rows."""

import threading
import time
from datetime import datetime, timezone

import numpy as np
import pytest

from video_analysis.runtime.object_store import ObjectInfo
from video_analysis.store import catalog
from video_analysis.store.db import connect
from video_analysis.store.outputs import ModelStamp, replace_detections
from video_analysis.store.writer import NotInTransactionError, replace_partition_rows
from video_analysis.vision.detections import Detections

MODEL = ModelStamp("test-detector", "v1")


def _register(db, key: str = "cam/a.mp4") -> str:
    obj = ObjectInfo(key=key, version="v1", size=1, last_modified=datetime(2026, 1, 1, tzinfo=timezone.utc),
                     source="local")
    catalog.register(db, obj)
    return obj.partition_key


def _detections(n: int, frame_offset: int = 0) -> Detections:
    rng = np.random.default_rng(7)
    corners = rng.uniform(0, 100, (n, 2)).astype(np.float32)
    return Detections(xyxy=np.hstack([corners, corners + 10]), confidence=np.full(n, 0.9, np.float32),
                      class_id=np.zeros(n, np.int32), frame_index=np.arange(n, dtype=np.int32) + frame_offset,
                      timestamp=np.arange(n, dtype=np.float64))


def _count(db, key):
    return db.execute("SELECT count(*) FROM detections WHERE partition_key = %s", (key,)).fetchone()[0]


def test_a_rerun_replaces_the_partitions_rows_only(db, pg_dsn):
    mine, other = _register(db, "cam/a.mp4"), _register(db, "cam/b.mp4")
    for key, n in ((mine, 30), (other, 5)):
        with connect(pg_dsn) as conn, conn.transaction():
            replace_detections(conn, key, _detections(n), {0: "person"}, MODEL)
    with connect(pg_dsn) as conn, conn.transaction():
        replace_detections(conn, mine, _detections(12), {0: "person"}, MODEL)
    assert (_count(db, mine), _count(db, other)) == (12, 5)


def test_two_writers_of_one_partition_at_once_leave_one_copy(db, pg_dsn):
    key = _register(db)
    first_wrote, first_may_commit, second_started = threading.Event(), threading.Event(), threading.Event()
    second_pid: list[int] = []
    errors: list[Exception] = []

    def first():
        # Writes, then holds its transaction (and the partition's lock) open until the second writer waits.
        with connect(pg_dsn) as conn, conn.transaction():
            replace_detections(conn, key, _detections(40), {0: "person"}, MODEL)
            first_wrote.set()
            assert first_may_commit.wait(30), "the test never let the first writer commit"

    def second():
        assert first_wrote.wait(30)
        with connect(pg_dsn) as conn:
            second_pid.append(conn.info.backend_pid)
            second_started.set()
            with conn.transaction():
                replace_detections(conn, key, _detections(40, frame_offset=1000), {0: "person"}, MODEL)

    threads = [threading.Thread(target=lambda f=f: _run(f, errors)) for f in (first, second)]
    for thread in threads:
        thread.start()
    try:
        assert second_started.wait(30)
        # The overlap is certain: the second writer is seen waiting for the advisory lock the first one holds
        # (or, were there no lock, it finishes while the first one's transaction is still open).
        waited = False
        deadline = time.monotonic() + 30
        while threads[1].is_alive() and time.monotonic() < deadline:
            waited = db.execute("SELECT count(*) FROM pg_locks WHERE pid = %s AND locktype = 'advisory' "
                                "AND NOT granted", (second_pid[0],)).fetchone()[0] == 1
            if waited:
                break
            time.sleep(0.02)
    finally:
        first_may_commit.set()
        for thread in threads:
            thread.join(30)
    assert not errors
    assert _count(db, key) == 40
    # The later writer's rows are the ones kept.
    assert db.execute("SELECT min(frame_index) FROM detections WHERE partition_key = %s", (key,)).fetchone()[0] == 1000
    assert waited, "the second writer never waited for the first one's lock"


def _run(fn, errors):
    try:
        fn()
    except Exception as exc:  # surfaced by the test's assertion
        errors.append(exc)


def test_the_writer_refuses_an_autocommit_connection(db):
    key = _register(db)
    with pytest.raises(NotInTransactionError):
        replace_partition_rows(db, "detections", key, ("frame_index",), [])
