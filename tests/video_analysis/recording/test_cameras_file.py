"""The cameras file and segment naming: what a user writes, and the keys the pipeline reads back."""

from datetime import datetime, timezone

import pytest

from video_analysis.recording.cameras import CamerasFileError, load_cameras
from video_analysis.recording.segments import next_boundary, segment_key, segment_name
from video_analysis.runtime.keys import facts_from_key


def _write(tmp_path, text):
    path = tmp_path / "cameras.yaml"
    path.write_text(text)
    return path


def test_credentials_come_from_the_environment_and_are_never_shown(tmp_path):
    path = _write(tmp_path, """
cameras:
  lobby:
    url: rtsp://viewer:${LOBBY_PASSWORD}@10.0.0.7:554/stream1
    segment_seconds: 60
  yard: http://10.0.0.8/live/index.m3u8?token=${LOBBY_PASSWORD}
  demo:
    url: /videos/demo.mp4
""")
    lobby, yard, demo = load_cameras(path, environ={"LOBBY_PASSWORD": "s3cret!"})
    assert lobby.url == "rtsp://viewer:s3cret!@10.0.0.7:554/stream1"
    assert lobby.shown_url == "rtsp://viewer:***@10.0.0.7:554/stream1" and "s3cret" not in repr(lobby)
    # a password with '@', ':' or '/' is encoded into the URL, and still masked whole
    (odd, *_) = load_cameras(path, environ={"LOBBY_PASSWORD": "p@ss:w/rd"})
    assert odd.url == "rtsp://viewer:p%40ss%3Aw%2Frd@10.0.0.7:554/stream1"
    assert odd.shown_url == "rtsp://viewer:***@10.0.0.7:554/stream1"
    assert (lobby.kind, yard.kind, demo.kind) == ("rtsp", "hls", "file")
    assert (lobby.segment_seconds, yard.segment_seconds) == (60, 600)
    assert yard.shown_url == "http://10.0.0.8/live/index.m3u8?***"  # a token in the query is masked too
    assert (lobby.stall_seconds, yard.stall_seconds) == (10, 30)  # HLS waits a playlist segment between reads


def test_secrets_in_a_urls_path_are_masked_and_a_literal_hash_in_a_password_is_refused_without_showing_it(
        tmp_path):
    path = _write(tmp_path, """
cameras:
  dvr: rtsp://10.0.0.9:554/user=admin&password=Hunter2x&channel=1&stream=0.sdp
  signed: https://cdn.example.com/live/a9F3kQ7zR2mX8vB1nL4pW6tY/index.m3u8
  plain: http://10.0.0.8/live/stream1/index.m3u8
""")
    dvr, signed, plain = load_cameras(path, {})
    assert dvr.shown_url == "rtsp://10.0.0.9:554/user=admin&password=***&channel=1&stream=0.sdp"
    assert signed.shown_url == "https://cdn.example.com/live/***/index.m3u8"
    assert plain.shown_url == "http://10.0.0.8/live/stream1/index.m3u8"
    assert "Hunter2x" not in repr(dvr) and "a9F3kQ7zR2mX8vB1nL4pW6tY" not in repr(signed)

    hashed = _write(tmp_path, "cameras:\n  gate: rtsp://viewer:Xq#Zz9word@10.0.0.7/stream1\n")
    with pytest.raises(CamerasFileError, match="does not parse: write '#'") as refused:
        load_cameras(hashed, {})
    assert "Xq" not in str(refused.value) and "Zz9word" not in str(refused.value)


@pytest.mark.parametrize("text, says", [
    ("cameras:\n  lobby:\n    url: rtsp://u:${NOT_SET_ANYWHERE}@h/s\n", "${NOT_SET_ANYWHERE}, which is not set"),
    ("cameras:\n  'lobby/../x':\n    url: rtsp://h/s\n", "a name is letters"),
    ("cameras:\n  lobby:\n    segment_seconds: 60\n", "needs a `url`"),
    ("cameras:\n  lobby:\n    url: rtsp://h/s\n    segment_seconds: 5\n", "between 10 and 86400"),
    ("cameras:\n  lobby:\n    url: rtsp://h/s\n    segmnt_seconds: 60\n", "unknown setting(s) segmnt_seconds"),
    ("cameras: [\n", "not valid YAML"),
    ("lobby: rtsp://h/s\n", "expected a `cameras:` mapping"),
])
def test_a_cameras_file_that_cannot_be_used_says_where_and_why(tmp_path, text, says):
    with pytest.raises(CamerasFileError) as raised:
        load_cameras(_write(tmp_path, text), environ={})
    assert says in str(raised.value)


def test_a_missing_cameras_file_says_how_to_give_one(tmp_path):
    with pytest.raises(CamerasFileError, match="REELGRAPH_CAMERAS"):
        load_cameras(tmp_path / "nothing.yaml", {})


def test_segments_end_on_wall_clock_boundaries_and_their_keys_carry_camera_and_start():
    at = datetime(2026, 12, 4, 10, 3, 20, 500000, tzinfo=timezone.utc).timestamp()
    assert datetime.fromtimestamp(next_boundary(at, 600), tz=timezone.utc) == \
        datetime(2026, 12, 4, 10, 10, tzinfo=timezone.utc)
    assert datetime.fromtimestamp(next_boundary(at + 400, 600), tz=timezone.utc) == \
        datetime(2026, 12, 4, 10, 20, tzinfo=timezone.utc)
    name = segment_name(at)
    assert name == "2026-12-04T10-03-20.mp4"
    assert segment_name(at + 0.3, {name}) == "2026-12-04T10-03-20_2.mp4"  # never over an earlier segment
    facts = facts_from_key(segment_key("lobby", segment_name(at + 0.3, {name})))
    assert facts.camera == "lobby"
    assert facts.recorded_at == datetime(2026, 12, 4, 10, 3, 20, tzinfo=timezone.utc)
