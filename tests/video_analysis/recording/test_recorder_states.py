"""The recorder's states and gaps with a real database and a real (file) camera, no stream server: what it
records while the camera is missing, when it comes back, and a second recorder for the same camera."""

from __future__ import annotations

import shutil
import threading
import time

import av
import numpy as np
import pytest

from tests.helpers import wait_for
from video_analysis.recording.camera_recorder import failure_reason
from video_analysis.recording.cameras import Camera
from video_analysis.recording.health import HealthBoard
from video_analysis.recording.recorder import Recorder
from video_analysis.recording.segments import SegmentWriter
from video_analysis.recording.spool_lock import RecorderBusy
from video_analysis.runtime.local_store import LocalFolderStore
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
    from video_analysis.recording.publisher import Publisher
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


def _received(count: int, fps: float = 25.0, start: float = 1_000_000.0, jitter_s: float = 0.03):
    """(stream seconds, receive time) of a live stream: each packet arrives a little after its stream time."""
    rng = np.random.default_rng(0)
    return [(i / fps, start + i / fps + float(rng.uniform(0, jitter_s))) for i in range(count)]


def test_one_packet_stamped_40_s_ahead_is_a_jump_there_and_back_not_40_s_of_early_wall_times():
    from video_analysis.recording.streams import ReceiveClock

    clock, jumps, worst = ReceiveClock(stall_s=10), [], 0.0
    for index, (seconds, received) in enumerate(_received(1501)):
        if index == 500:
            seconds += 40.0  # one packet's timestamp 40 s ahead
        wall, jump = clock.wall(seconds, received)
        worst = max(worst, abs(wall - received))
        if jump:
            jumps.append((index, round(jump)))
    assert jumps == [(500, 40), (501, -40)] and worst < 0.1


def test_an_encoder_restart_resetting_stream_time_30_s_back_is_one_jump_and_wall_times_go_on():
    from video_analysis.recording.streams import ReceiveClock

    clock, jumps, walls = ReceiveClock(stall_s=10), [], []
    for index, (seconds, received) in enumerate(_received(1626)):
        wall, jump = clock.wall(seconds - (30.0 if index >= 900 else 0.0), received)
        walls.append(wall)
        jumps += [(index, round(jump))] if jump else []
    assert jumps == [(900, -30)]
    assert all(b > a for a, b in zip(walls, walls[1:], strict=False))  # wall time never runs backwards


def test_a_burst_of_buffered_packets_on_connecting_settles_on_the_live_edge_without_a_jump():
    from video_analysis.recording.streams import ReceiveClock

    clock, jumps = ReceiveClock(stall_s=10), []
    live = _received(600)
    burst = [(seconds, live[50][1]) for seconds, _ in live[:50]]  # 2 s buffered, all arriving at once
    for seconds, received in burst + live[50:]:
        wall, jump = clock.wall(seconds, received)
        jumps += [jump] if jump else []
    assert jumps == [] and abs(wall - live[-1][1]) < 0.1


def test_a_segment_keeps_every_packet_across_timestamp_jumps_either_way(tmp_path, person_clip):
    with av.open(str(person_clip)) as source:
        stream = source.streams.video[0]
        writer = SegmentWriter(tmp_path / "segment.mp4", stream, 0.0, 60.0)
        packets = [p for _, p in zip(range(60), source.demux(stream), strict=False) if p.dts is not None]
        forty = int(40 / stream.time_base)
        for index, packet in enumerate(packets):
            shift = forty if 20 <= index < 40 else -forty if index >= 40 else 0  # ahead 40 s, then 40 s back
            packet.pts, packet.dts = packet.pts + shift, packet.dts + shift
            if index in (20, 40):
                writer.continue_after_jump(packet)
            writer.write(packet, index / 10)
        writer.close()
    assert (writer.dropped, writer.packets) == (0, len(packets))
    probe = probe_video(tmp_path / "segment.mp4")
    assert probe.frame_count == len(packets) and probe.duration_s < 10  # one timeline, not 40 s of hole
    # each packet after a jump follows the one before by a frame's step, as the rest do (10 fps: 0.1 s)
    with av.open(str(tmp_path / "segment.mp4")) as written:
        video = written.streams.video[0]
        dts = [p.dts for p in written.demux(video) if p.dts is not None]
    steps = {round(float((b - a) * video.time_base), 3) for a, b in zip(dts, dts[1:], strict=False)}
    assert steps == {0.1}, steps


def test_a_stream_without_keyframes_is_written_out_as_it_comes_not_held_in_memory(tmp_path, person_clip):
    """Fragments were cut at keyframes only: a camera that sends none had every packet held in memory until the
    segment closed (400 MB of packets gave 450 MB of RSS and 0 bytes on disk)."""
    import os

    path = tmp_path / "keyless.mp4"
    with av.open(str(person_clip)) as source:
        stream = source.streams.video[0]
        writer = SegmentWriter(path, stream, 0.0, 1e9)
        written, behind = 0, []
        for index, packet in enumerate(p for p in source.demux(stream) if p.dts is not None):
            packet.is_keyframe = index == 0  # the first keyframe opens the segment; none after it
            writer.write(packet, index / 10)
            written += packet.size
            if index and index % 100 == 0:
                behind.append(written - os.path.getsize(path))
        writer.close()
    # at most a couple of seconds of packets (one fragment) wait in memory at any time
    assert max(behind) < 200_000, behind
    assert probe_video(path).frame_count == writer.packets


def test_a_camera_that_publishes_nothing_for_two_segment_lengths_is_silent_and_not_a_moment_before(cameras_db):
    """Packets arrive but no segment is published (an upload path that fails, a writer stuck): after two
    segment lengths since its last segment the camera is silent, and the silence says why."""
    from datetime import datetime, timedelta, timezone

    from video_analysis.store.cameras import CameraRow, camera_health, save_camera

    now = datetime.now(timezone.utc)
    for name, quiet_s in (("published-recently", 2 * 600 - 30), ("quiet-too-long", 2 * 600 + 30)):
        save_camera(cameras_db, CameraRow(name, "rtsp://cam", 600, "recording", "stream", last_packet_at=now,
                                          last_segment_at=now - timedelta(seconds=quiet_s)))
    found = {c.name: c for c in camera_health(cameras_db, now=now)}
    assert found["published-recently"].silent_since is None and found["published-recently"].silence is None
    quiet = found["quiet-too-long"]
    assert quiet.silent_since == now - timedelta(seconds=2 * 600 + 30)
    assert quiet.silence.startswith("nothing published for 20 min") and quiet.silence.endswith(
        "(two segments are 20 min)"), quiet.silence


def test_a_camera_that_cannot_be_reached_is_tried_again_after_1_2_4_8_then_every_10_s(tmp_path, monkeypatch):
    """The backoff between connection attempts: doubling from 1 s, never above 10 s; one gap for the outage."""
    from video_analysis.recording import camera_recorder
    from video_analysis.recording.streams import StreamLost

    class Unreachable:
        def __init__(self, camera, stop):
            raise StreamLost("cannot open the stream: Connection refused")

    class CountedStop(threading.Event):
        """A stop that records each wait the recorder asks for, and stops it after seven."""

        def __init__(self):
            super().__init__()
            self.waits = []

        def wait(self, timeout=None):
            self.waits.append(timeout)
            if len(self.waits) >= 7:
                self.set()
            return self.is_set()

    monkeypatch.setattr(camera_recorder, "StreamReader", Unreachable)
    camera = Camera("gate", "rtsp://127.0.0.1:9/stream")
    board = HealthBoard(lambda: connect("postgresql://nobody@127.0.0.1:9/x"), [camera])
    stop = CountedStop()
    thread = camera_recorder.CameraRecorder(camera, LocalFolderStore(tmp_path / "inbox"), tmp_path / "spool", board,
                                            stop)
    thread._record()
    assert stop.waits == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0, 10.0]
    assert [event[0] for event in board._gap_events] == ["open"]  # one gap, however many attempts


def test_an_rtsp_clock_more_than_5_minutes_off_is_replaced_by_the_receive_time():
    """A camera whose own clock (RTCP sender reports) is wrong by more than 5 minutes, as the docs promise, is
    not believed: segments are named by when their packets arrived."""
    from types import SimpleNamespace

    from video_analysis.recording.streams import StreamReader

    received = time.time()
    for off_s, clock in ((290, "stream"), (-290, "stream"), (310, "receive"), (-310, "receive")):
        reader = object.__new__(StreamReader)  # the clock's choice alone: no connection needed
        reader.camera = Camera("gate", "rtsp://127.0.0.1:9/stream")
        reader.container = SimpleNamespace(start_time_realtime=(received + off_s) * 1e6)
        anchor = reader._anchor(2.0, received)
        assert reader.clock == clock, off_s
        assert anchor == pytest.approx(received + off_s if clock == "stream" else received - 2.0)


def test_rtsp_is_asked_for_over_tcp_then_over_udp_where_the_server_refuses_tcp(monkeypatch):
    from video_analysis.recording import streams

    asked = []

    def server_without_tcp(url, options=None, **kwargs):
        asked.append(options.get("rtsp_transport"))
        if options.get("rtsp_transport") == "tcp":
            raise av.error.InvalidDataError(1094995529, "461 Unsupported transport")
        return "opened over udp"

    monkeypatch.setattr(streams.av, "open", server_without_tcp)
    reader = object.__new__(streams.StreamReader)
    reader.camera = Camera("gate", "rtsp://127.0.0.1:9/stream")
    assert reader._open() == "opened over udp" and asked == ["tcp", "udp"]
