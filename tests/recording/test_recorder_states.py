"""The recorder's states and gaps with a real database and a real (file) camera, no stream server: what it
records while the camera is missing, when it comes back, and a second recorder for the same camera."""

from __future__ import annotations

import shutil
import threading
import time

import av
import pytest

from tests.helpers import wait_for
from video_analysis.recording.cameras import Camera
from video_analysis.recording.health import HealthBoard
from video_analysis.recording.recorder import Recorder, RecorderBusy, failure_reason
from video_analysis.recording.segments import SegmentWriter
from video_analysis.runtime.object_store import LocalFolderStore
from video_analysis.store import cameras
from video_analysis.store.db import connect
from video_analysis.vision.probe import probe_video


@pytest.fixture
def cameras_db(db):
    db.execute("TRUNCATE cameras CASCADE")
    return db


def _recorder(pg_dsn, inbox, spool_root, camera):
    board = HealthBoard(lambda: connect(pg_dsn), [camera])
    return Recorder([camera], LocalFolderStore(inbox), spool_root, board)


def test_a_missing_camera_is_a_gap_until_its_first_packet_and_the_cut_segment_is_partial(
        tmp_path, pg_dsn, cameras_db, person_clip):
    inbox = tmp_path / "inbox"
    source = tmp_path / "camera.mp4"  # not there yet: the camera cannot be opened
    camera = Camera("door", str(source), segment_seconds=3600)  # the test's ~10 s fall within one segment
    recorder = _recorder(pg_dsn, inbox, tmp_path / "spool", camera)
    stop = threading.Event()
    thread = threading.Thread(target=recorder.run, args=(stop,))
    thread.start()
    try:
        state = lambda: {c.name: c for c in cameras.camera_health(cameras_db)}.get("door")  # noqa: E731
        wait_for(lambda: state() and state().state == "reconnecting", 20, "the missing camera noticed")
        (gap,) = state().gaps
        assert gap.ended_at is None and gap.reason.startswith("cannot open the stream")
        shutil.copyfile(person_clip, source)
        wait_for(lambda: state().state == "recording", 30, "recording once the camera is there")
        time.sleep(4)
        # a second recorder for the same camera leaves it to this one
        with pytest.raises(RecorderBusy):
            _recorder(pg_dsn, inbox, tmp_path / "spool", camera).run(threading.Event())
    finally:
        stop.set()
        thread.join(30)
    assert not thread.is_alive()
    door = state()
    (gap,) = door.gaps
    assert gap.ended_at is not None and gap.ended_at > gap.started_at
    assert door.state == "stopped" and door.last_segment_key.startswith("cameras/door/")
    segments = sorted((inbox / "cameras" / "door").glob("[0-9]*.mp4"))
    assert segments, "no segment published"
    probes = [probe_video(p) for p in segments]  # two only if the run crossed an hour boundary
    assert probes[-1].status == "partial", probes  # stopped long before its boundary
    assert 3 <= sum(p.duration_s for p in probes) <= 12, probes
    assert cameras.camera_health(cameras_db)[0].url == str(source)


def test_a_repeated_or_backward_timestamp_is_dropped_not_fatal(tmp_path, person_clip):
    with av.open(str(person_clip)) as source:
        stream = source.streams.video[0]
        writer = SegmentWriter(tmp_path / "segment.mp4", stream, 0.0, 60.0)
        packets = [p for _, p in zip(range(40), source.demux(stream), strict=False) if p.dts is not None]
        for index, packet in enumerate(packets):
            writer.write(packet, index / 10)
            if index == 20:  # the same timestamps again, as a camera's glitch or lost packets give
                again = av.Packet(bytes(packet))
                again.pts, again.dts, again.time_base = packet.pts + writer._origin, packet.dts + writer._origin, \
                    packet.time_base
                writer.write(again, index / 10)
        writer.close()
    assert writer.dropped == 1 and writer.packets == len(packets)
    assert probe_video(tmp_path / "segment.mp4").frame_count == len(packets)


def test_a_failure_reason_names_the_file_not_the_spool_path_and_masks_secrets():
    muxing = av.ArgumentError(22, "Invalid argument", "/var/lib/reelgraph/recording/lobby/.recording-x.mp4")
    assert failure_reason(muxing) == "Invalid argument (.recording-x.mp4)"
    full = OSError(28, "No space left on device", "/srv/inbox/cameras/lobby/.recording-y.mp4")
    assert failure_reason(full) == "No space left on device (.recording-y.mp4)"
    publishing = OSError(18, "Invalid cross-device link", b"/spool/lobby/.recording-z.mp4", None,
                         "/inbox/lobby/z.mp4")
    assert failure_reason(publishing) == "Invalid cross-device link (.recording-z.mp4 -> z.mp4)"
    assert failure_reason(RuntimeError("rtsp://viewer:s3cret@cam/lobby refused")) == \
        "rtsp://viewer:***@cam/lobby refused"


def test_publishing_never_replaces_a_segment_and_one_that_cannot_be_published_holds_up_none(tmp_path):
    from video_analysis.recording.recorder import Publisher
    from video_analysis.recording.segments import spool_name

    store = LocalFolderStore(tmp_path / "inbox")
    spool = tmp_path / "inbox" / "cameras" / "gate"
    spool.mkdir(parents=True)
    published: list[str] = []
    publisher = Publisher(store, "gate", published.append)
    publisher.start()
    first, gone, later = (spool / spool_name(name) for name in (
        "2026-01-15T08-00-00.mp4", "2026-01-15T08-10-00.mp4", "2026-01-15T08-20-00.mp4"))
    first.write_bytes(b"first recording")
    publisher.submit(first)
    wait_for(lambda: len(published) == 1, 10, "the first segment published", interval_s=0.05)
    # a recorder restarted within the second writes a segment of the same start: it is kept beside the first
    again = spool / spool_name("2026-01-15T08-00-00.mp4")
    again.write_bytes(b"after a restart")
    later.write_bytes(b"twenty past")
    for path in (again, gone, later):  # `gone` was never written: it cannot be published, and blocks nothing
        publisher.submit(path)
    wait_for(lambda: len(published) == 3, 10, "the others published", interval_s=0.05)
    publisher.close(timeout_s=10)
    folder = tmp_path / "inbox" / "cameras" / "gate"
    assert published == ["cameras/gate/2026-01-15T08-00-00.mp4", "cameras/gate/2026-01-15T08-00-00-2.mp4",
                         "cameras/gate/2026-01-15T08-20-00.mp4"]
    assert (folder / "2026-01-15T08-00-00.mp4").read_bytes() == b"first recording"
    assert (folder / "2026-01-15T08-00-00-2.mp4").read_bytes() == b"after a restart"
    assert not [p for p in spool.iterdir() if p.name.startswith(".")]  # nothing left in the spool
