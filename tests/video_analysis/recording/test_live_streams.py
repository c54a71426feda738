"""`reelgraph record` against real streams: RTSP servers and an HLS playlist fed with sample clips in real time.

Segments here are 10 s long (the cut does not depend on the length, and the suite stays short); the clip has
a keyframe every second, so a segment ends within a second after its boundary.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from testbed.streams import HlsCamera, RtspCamera, ensure_rtsp_server
from tests.helpers import REELGRAPH, wait_for
from tests.http_servers import webhook_sink
from video_analysis.recording.cameras import Camera
from video_analysis.recording.streams import StreamLost, StreamReader
from video_analysis.runtime.keys import facts_from_key
from video_analysis.runtime.local_store import LocalFolderStore
from video_analysis.vision.probe import probe_video

pytestmark = pytest.mark.slow

SEGMENT_S = 10


@pytest.fixture
def rtsp_server_binary():
    binary = ensure_rtsp_server()
    if binary is None:
        if os.environ.get("CI"):
            raise AssertionError("rtsp-server-perl is missing and could not be installed")
        pytest.skip("rtsp-server-perl is missing and cannot be installed here (not root)")
    return binary


@pytest.fixture
def cameras_db(db):
    db.execute("TRUNCATE cameras CASCADE")
    return db


class RecorderProcess:
    """`reelgraph record` as a user runs it, in its own process group."""

    def __init__(self, folder: Path, cameras: dict[str, str], env_extra: dict | None = None, stall_s: float = 3):
        self.cameras_file = folder / "cameras.yaml"
        lines = ["cameras:"]
        for name, url in cameras.items():
            lines += [f"  {name}:", f"    url: {url}", f"    segment_seconds: {SEGMENT_S}",
                      f"    stall_seconds: {stall_s}"]
        self.cameras_file.write_text("\n".join(lines) + "\n")
        self.env = {**os.environ, "REELGRAPH_CAMERAS": str(self.cameras_file), **(env_extra or {})}
        self.log_path = folder / "record.log"
        self.process = None

    def start(self) -> RecorderProcess:
        with open(self.log_path, "a") as log:
            self.process = subprocess.Popen([str(REELGRAPH), "-v", "record"], env=self.env, stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True)
        return self

    def log(self) -> str:
        return self.log_path.read_text()[-5000:]

    def signal(self, sig) -> None:
        os.kill(self.process.pid, sig)  # to the recorder alone, as docker stop or systemd would

    def stop(self, timeout_s: float = 30) -> int:
        self.signal(signal.SIGTERM)
        return self.process.wait(timeout_s)

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)


def _camera_status() -> dict[str, dict]:
    done = subprocess.run([str(REELGRAPH), "status", "--cameras", "--json"], capture_output=True, text=True,
                          timeout=120, check=True)
    return {c["name"]: c for c in json.loads(done.stdout)}


def _segments(inbox: Path, camera: str) -> list[Path]:
    return sorted(p for p in (inbox / "cameras" / camera).glob("*.mp4") if not p.name.startswith("."))


def _start_of(path: Path) -> datetime:
    return facts_from_key(f"cameras/x/{path.name}").recorded_at


def test_rtsp_and_hls_cameras_record_on_while_one_stream_is_down_for_30_s(
        tmp_path, inbox, cameras_db, person_clip, rtsp_server_binary, recorders, monkeypatch):
    front = RtspCamera(rtsp_server_binary, person_clip, tmp_path, "front").up()
    back = RtspCamera(rtsp_server_binary, person_clip, tmp_path, "back").up()
    yard = HlsCamera(person_clip, tmp_path, "yard").up()
    recorder = RecorderProcess(tmp_path, {"front": front.url, "back": back.url, "yard": yard.url}).start()
    recorders.append(recorder)
    try:
        wait_for(lambda: all(len(_segments(inbox, c)) >= 2 for c in ("front", "back")), 60,
                 "two segments from each RTSP camera", context=recorder.log)
        time.sleep((5 - time.time()) % SEGMENT_S)  # down mid-segment: the segment it cuts is then clear
        down_at = time.time()
        back.down()
        time.sleep(30)
        back.up()
        wait_for(lambda: _camera_status()["back"]["state"] == "recording", 60, "the back camera recording again",
                 context=recorder.log)
        recovered = time.time()
        wait_for(lambda: any(_start_of(p).timestamp() > recovered for p in _segments(inbox, "back")), 40,
                 "a segment of the back camera after the outage", context=recorder.log)
        assert recorder.stop() == 0, recorder.log()
    finally:
        for camera in (front, back, yard):
            camera.down()

    status = _camera_status()
    assert set(status) == {"front", "back", "yard"}
    # RTSP on the server's sender reports when the first came before the first packet; HLS on the receive time
    assert status["front"]["clock"] in ("stream", "receive") and status["yard"]["clock"] == "receive"
    # one gap, on the camera that went down, from its last packet to its first packet after
    assert status["front"]["gaps"] == [] and status["yard"]["gaps"] == []
    (gap,) = status["back"]["gaps"]
    started = datetime.fromisoformat(gap["from"]).timestamp()
    # by the stream's clock (RTCP reports place it within a few seconds), the 30 s and the reconnection
    assert abs(started - down_at) < 6 and 27 <= gap["seconds"] < 30 + 20, gap
    assert all(c["state"] == "stopped" for c in status.values())

    store = LocalFolderStore(inbox)
    listed = [o.key for o in store.list_page(None, 1000).objects]
    assert all(key.startswith("cameras/") for key in listed) and not any("/." in key for key in listed)
    for camera in ("front", "back", "yard"):
        segments = _segments(inbox, camera)
        assert len(segments) >= 4, (camera, segments)
        # after the first, segments start on a boundary, at its first keyframe (a second apart here). HLS arrives
        # a playlist segment (2 s here) at a time, so its receive clock settles only once a few have come: a
        # segment is then named by when its first frame was live, up to a playlist segment before the boundary
        # the recorder cut at (2 s seen on a loaded machine)
        within = 2 if camera == "yard" else 1
        for path in segments[1:]:
            start = _start_of(path)
            if camera != "back" or not (down_at - SEGMENT_S < start.timestamp() < recovered + SEGMENT_S):
                off = start.second % SEGMENT_S
                assert min(off, SEGMENT_S - off) <= within, (camera, path.name)
        probes = {p.name: probe_video(p) for p in segments}
        assert all(p.codec == "h264" and p.width == 768 for p in probes.values())
        # a segment from one boundary to the next is whole; the first after a (re)connection starts mid-way, and
        # the last ends when the recorder stops
        whole = [p for name, p in list(probes.items())[:-1] if _start_of(Path(name)).second % SEGMENT_S == 0
                 and p.status == "ready"]
        assert len(whole) >= 2 and all(SEGMENT_S - 0.5 <= p.duration_s <= SEGMENT_S + 1.5 for p in whole), probes
    # the segment the outage cut short is published, and marked partial
    back_probes = {p.name: probe_video(p) for p in _segments(inbox, "back")}
    cut = max(name for name in back_probes if _start_of(Path(name)).timestamp() < down_at)
    assert back_probes[cut].status == "partial", (cut, back_probes)
    assert "stops at" in back_probes[cut].notes[0]


def test_one_alert_per_outage_then_quiet_until_the_camera_recovers(cameras_db, monkeypatch):
    from dagster import build_sensor_context

    from orchestration.cameras import camera_silence_sensor
    from resources import PostgresResource
    from video_analysis.store import cameras
    from video_analysis.store.cameras import CameraRow

    alerts, sink = webhook_sink()
    monkeypatch.setenv("REELGRAPH_ALERT_WEBHOOK", f"http://127.0.0.1:{sink.port}/hooks/T0/SECRET")
    monkeypatch.setenv("REELGRAPH_CAMERA_LOST_SECONDS", "60")
    now = datetime.now(timezone.utc)
    lost = datetime.fromtimestamp(now.timestamp() - 90, tz=timezone.utc)
    cameras.save_camera(cameras_db, CameraRow("gate", "rtsp://h/gate", 600, "reconnecting", "stream", lost, now))
    cameras.save_camera(cameras_db, CameraRow("hall", "rtsp://h/hall", 600, "recording", "stream", now, now))
    cameras.open_gap(cameras_db, "gate", lost, "the stream broke off")
    # below the threshold: lost 30 s ago, with 60 s allowed, is not silent yet
    brief = datetime.fromtimestamp(now.timestamp() - 30, tz=timezone.utc)
    cameras.save_camera(cameras_db, CameraRow("yard", "rtsp://h/yard", 600, "reconnecting", "stream", brief, now))
    cameras.open_gap(cameras_db, "yard", brief, "the stream broke off")

    def tick():
        return camera_silence_sensor(build_sensor_context(resources={"database": PostgresResource()}))

    tick()
    tick()
    assert [a["camera"] for a in alerts] == ["gate"], alerts
    assert "stream lost" in alerts[0]["text"] and "gate" in alerts[0]["text"]
    cameras.close_open_gaps(cameras_db, "gate", now)
    tick()  # recovered: the next outage alerts again
    assert cameras_db.execute("SELECT alerted_at FROM cameras WHERE name = 'gate'").fetchone()[0] is None
    later = datetime.now(timezone.utc)
    cameras.open_gap(cameras_db, "gate", datetime.fromtimestamp(later.timestamp() - 70, tz=timezone.utc), "stalled")
    tick()
    assert [a["camera"] for a in alerts] == ["gate", "gate"]


def test_a_recorder_killed_mid_segment_leaves_nothing_listed_and_a_restart_publishes_what_it_had(
        tmp_path, inbox, cameras_db, person_clip, rtsp_server_binary, recorders):
    lobby = RtspCamera(rtsp_server_binary, person_clip, tmp_path, "lobby").up()
    recorder = RecorderProcess(tmp_path, {"lobby": lobby.url}).start()
    recorders.append(recorder)
    spool = inbox / "cameras" / "lobby"
    try:
        first = wait_for(lambda: _segments(inbox, "lobby"), 40, "a first segment", context=recorder.log)
        # kill it 5 s into the next segment, while its hidden file is being written
        wait_for(lambda: len(_segments(inbox, "lobby")) > len(first), 20, "a second segment", context=recorder.log)
        time.sleep(5)
        os.killpg(recorder.process.pid, signal.SIGKILL)
        recorder.process.wait(10)
        killed_at = time.time()
        (hidden,) = spool.glob(".recording-*")
        published = _segments(inbox, "lobby")
        listed = sorted(o.key for o in LocalFolderStore(inbox).list_page(None, 100).objects)
        assert listed == [f"cameras/lobby/{p.name}" for p in published]  # the half file is not listed
        time.sleep(4)
        restarted = RecorderProcess(tmp_path, {"lobby": lobby.url}).start()
        recorders.append(restarted)
        salvaged = spool / hidden.name.removeprefix(".recording-")
        wait_for(salvaged.exists, 30, "the killed segment published at restart", context=restarted.log)
        wait_for(lambda: any(_start_of(p).timestamp() > killed_at + SEGMENT_S for p in _segments(inbox, "lobby")),
                 40, "the next segment after the restart", context=restarted.log)
        assert restarted.stop() == 0
    finally:
        lobby.down()
    probe = probe_video(salvaged)
    assert probe.status == "partial" and 3 <= probe.duration_s <= SEGMENT_S, probe
    assert not list(spool.glob(".recording-*"))
    (gap,) = _camera_status()["lobby"]["gaps"]
    # from the last packet the killed recorder reported (its last 3 s may not have been) to the restart's first
    assert gap["reason"] == "the recorder was not running" and 4 <= gap["seconds"] < 30, gap


def test_a_stream_that_stalls_is_dropped_and_reconnected(tmp_path, inbox, cameras_db, person_clip,
                                                         rtsp_server_binary, recorders):
    lobby = RtspCamera(rtsp_server_binary, person_clip, tmp_path, "lobby").up()
    recorder = RecorderProcess(tmp_path, {"lobby": lobby.url}, stall_s=3).start()
    recorders.append(recorder)
    try:
        wait_for(lambda: _segments(inbox, "lobby"), 40, "a first segment", context=recorder.log)
        os.killpg(lobby.feed.pid, signal.SIGSTOP)  # the server stays up; no packet comes any more
        wait_for(lambda: _camera_status()["lobby"]["state"] == "reconnecting", 20, "the stall noticed",
                 context=recorder.log)
        os.killpg(lobby.feed.pid, signal.SIGCONT)
        wait_for(lambda: _camera_status()["lobby"]["state"] == "recording", 40, "recording again",
                 context=recorder.log)
        assert recorder.stop() == 0
    finally:
        lobby.down()
    (gap,) = _camera_status()["lobby"]["gaps"]
    # closed, with the stall as its reason (how long it looks depends on what the feed sends when it resumes)
    assert gap["to"] is not None and gap["reason"] == "stalled: no packet for 3 s", gap


def test_a_camera_that_stalls_while_connecting_is_refused_not_recorded_without_a_frame_size(
        tmp_path, person_clip, rtsp_server_binary):
    """FFmpeg's probe gives up before a picture arrives and hands back a stream of unknown frame size; the
    pictures that follow could never be written (MP4 refuses a stream without one)."""
    lobby = RtspCamera(rtsp_server_binary, person_clip, tmp_path, "lobby").up()
    camera = Camera(name="lobby", url=lobby.url, stall_seconds=2)
    try:
        wait_for(lambda: _opens(camera), 20, "the feed publishing")
        os.killpg(lobby.feed.pid, signal.SIGSTOP)
        time.sleep(1)
        with pytest.raises(StreamLost, match=r"^no picture within 2 s of connecting: the frame size is unknown$"):
            StreamReader(camera, threading.Event())
    finally:
        lobby.down()


def _opens(camera: Camera) -> bool:
    try:
        StreamReader(camera, threading.Event()).close()
        return True
    except StreamLost:
        return False


def test_a_camera_silent_while_the_recorder_connects_is_recorded_once_it_sends(tmp_path, inbox, cameras_db,
                                                                               person_clip, rtsp_server_binary,
                                                                               recorders):
    lobby = RtspCamera(rtsp_server_binary, person_clip, tmp_path, "lobby").up()
    camera = Camera(name="lobby", url=lobby.url, stall_seconds=3)
    recorder = RecorderProcess(tmp_path, {"lobby": lobby.url}, stall_s=3)
    recorders.append(recorder)
    try:
        wait_for(lambda: _opens(camera), 20, "the feed publishing")
        os.killpg(lobby.feed.pid, signal.SIGSTOP)  # the server answers; no picture comes
        recorder.start()
        reason = "no picture within 3 s of connecting: the frame size is unknown"
        wait_for(lambda: _camera_status().get("lobby", {}).get("last_error") == reason, 40,
                 "the connection refused for want of a picture", context=recorder.log)
        os.killpg(lobby.feed.pid, signal.SIGCONT)
        wait_for(lambda: _segments(inbox, "lobby"), 60, "a segment once the camera sends", context=recorder.log)
        assert recorder.stop() == 0
    finally:
        lobby.down()
    assert "Invalid argument" not in recorder.log()
    (gap,) = _camera_status()["lobby"]["gaps"]
    assert gap["reason"] == reason and gap["to"] is not None, gap
    probe = probe_video(_segments(inbox, "lobby")[0])
    assert probe.width == 768 and probe.frame_count > 0, probe


def test_a_demo_camera_uploads_segments_to_s3_with_no_temporary_keys(tmp_path, s3_bucket, cameras_db, person_clip,
                                                                       recorders):
    client, bucket = s3_bucket
    recorder = RecorderProcess(tmp_path, {"demo": str(person_clip)}).start()
    recorders.append(recorder)

    def keys():
        return sorted(o["Key"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", []))

    wait_for(lambda: len(keys()) >= 2, 40, "two segments uploaded", context=recorder.log)
    assert recorder.stop() == 0
    uploaded = keys()
    assert all(k.startswith("cameras/demo/") and k.endswith(".mp4") and "/." not in k for k in uploaded), uploaded
    assert facts_from_key(uploaded[0]).camera == "demo"
    spool = Path(os.environ["REELGRAPH_HOME"]) / "recording" / "demo"
    assert not list(spool.glob("*.mp4"))  # uploaded, then removed here


def test_a_hang_up_stops_the_recorder_as_sigterm_does_publishing_the_open_segment(tmp_path, inbox, cameras_db,
                                                                                  person_clip, recorders):
    """A closed terminal sends SIGHUP: the recorder closes and publishes the segment it was writing, then exits."""
    recorder = RecorderProcess(tmp_path, {"desk": str(person_clip)}).start()
    recorders.append(recorder)
    wait_for(lambda: len(_segments(inbox, "desk")) >= 1, 60, "a first segment", context=recorder.log)
    from video_analysis.recording.segments import leftovers

    writing = inbox / "cameras" / "desk"  # a local store's segments are written beside their published names
    wait_for(lambda: any(p.stat().st_size > 0 for p in leftovers(writing)), 30, "the next segment under way",
             interval_s=0.2, context=recorder.log)
    published_before = len(_segments(inbox, "desk"))
    recorder.signal(signal.SIGHUP)
    assert recorder.process.wait(30) == 0, recorder.log()
    assert "SIGHUP: closing the open segments" in recorder.log()
    segments = _segments(inbox, "desk")
    assert len(segments) == published_before + 1, recorder.log()  # the open one, published
    assert probe_video(segments[-1]).status in ("ready", "partial")


def test_a_stop_waits_for_the_uploads_in_flight_on_a_slow_link(tmp_path, s3_bucket, moto_endpoint, cameras_db,
                                                                person_clip, recorders):
    """Each upload takes 12 s (a slow uplink): a SIGTERM while one is under way waits for it and for the open
    segment's, instead of leaving them in a spool that Kubernetes deletes with the pod."""
    from tests.helpers import FlakyS3Proxy

    client, bucket = s3_bucket
    with FlakyS3Proxy(moto_endpoint, failures=0, put_delay_s=12) as proxy:
        recorder = RecorderProcess(tmp_path, {"demo": str(person_clip)},
                                   env_extra={"REELGRAPH_S3_ENDPOINT_URL": proxy.url}).start()
        recorders.append(recorder)
        wait_for(lambda: proxy.puts_started >= 1, 60, "an upload under way", interval_s=0.2, context=recorder.log)
        stopped_at = time.monotonic()
        assert recorder.stop(timeout_s=120) == 0, recorder.log()
        waited = time.monotonic() - stopped_at
        assert proxy.puts_done == proxy.puts_started >= 2, (proxy.puts_started, proxy.puts_done, recorder.log())
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert len(keys) == proxy.puts_done and all(k.startswith("cameras/demo/") for k in keys), keys
    assert waited > 12, waited  # it waited for the one under way and the open one's (the old limit was 10 s)
    spool = Path(os.environ["REELGRAPH_HOME"]) / "recording" / "demo"
    assert not list(spool.glob("*.mp4")) and "stay in the spool" not in recorder.log()


def test_cameras_record_while_another_process_holds_the_databases_migrations(tmp_path, inbox, cameras_db, pg_dsn,
                                                                             person_clip, recorders):
    """The database cannot answer while another process holds the migration lock (an index build can take
    minutes): the cameras record and publish meanwhile, and the camera's state reaches the database after."""
    from video_analysis.store.db import connect
    from video_analysis.store.schema import _MIGRATION_LOCK

    holder = connect(pg_dsn, autocommit=True)
    holder.execute("SELECT pg_advisory_lock(%s)", (_MIGRATION_LOCK,))
    try:
        recorder = RecorderProcess(tmp_path, {"desk": str(person_clip)}).start()
        recorders.append(recorder)
        wait_for(lambda: len(_segments(inbox, "desk")) >= 1, 40, "a segment published while the database waits",
                 context=recorder.log)
        assert "desk" not in {r[0] for r in cameras_db.execute("SELECT name FROM cameras")}  # it did wait
        # and a stop meanwhile is not held up by the database call still waiting
        assert recorder.stop(timeout_s=30) == 0, recorder.log()
    finally:
        holder.execute("SELECT pg_advisory_unlock(%s)", (_MIGRATION_LOCK,))
        holder.close()
    again = RecorderProcess(tmp_path, {"desk": str(person_clip)}).start()
    recorders.append(again)
    wait_for(lambda: _camera_status().get("desk", {}).get("state") == "recording", 60, "the camera's state saved",
             context=again.log)
    assert again.stop() == 0


def test_the_recorder_needs_no_deep_learning_stack(tmp_path):
    cameras_file = tmp_path / "cameras.yaml"
    cameras_file.write_text("cameras:\n  lobby: rtsp://viewer:${PW}@127.0.0.1/lobby\n")
    code = ("import sys; from orchestration.cli import main; rc = main(['record', '--check']); "
            "assert 'torch' not in sys.modules and 'ultralytics' not in sys.modules, 'torch imported'; sys.exit(rc)")
    done = subprocess.run([str(Path(REELGRAPH).parent / "python"), "-c", code], capture_output=True, text=True,
                          env={**os.environ, "REELGRAPH_CAMERAS": str(cameras_file), "PW": "s3cret"}, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "rtsp://viewer:***@127.0.0.1/lobby" in done.stdout and "s3cret" not in done.stdout + done.stderr
