import hashlib

import pytest

from video_analysis.vision.probe import VideoProbeError, probe_video


def test_person_clip_is_described_from_what_decodes(person_clip):
    probe = probe_video(person_clip)
    assert (probe.frame_count, probe.fps, probe.width, probe.height) == (1394, 10.0, 768, 432)
    assert probe.container == "mp4" and probe.codec == "h264"
    assert probe.duration_s == pytest.approx(139.4)
    assert probe.size_bytes == person_clip.stat().st_size
    assert probe.sha256 == hashlib.sha256(person_clip.read_bytes()).hexdigest()
    assert probe.thumbnail_jpeg.startswith(b"\xff\xd8") and len(probe.thumbnail_jpeg) < 20_000


def test_bottle_clip(bottle_clip):
    probe = probe_video(bottle_clip)
    assert (probe.frame_count, probe.width, probe.height) == (1189, 640, 360)
    assert probe.fps == pytest.approx(29.83, abs=0.01)


def test_container_comes_from_content_not_extension(tmp_path, bottle_clip):
    renamed = tmp_path / "clip.avi"
    renamed.write_bytes(bottle_clip.read_bytes())
    probe = probe_video(renamed)
    assert probe.container == "mp4"
    assert probe.sha256 == hashlib.sha256(bottle_clip.read_bytes()).hexdigest()  # the same bytes, the same digest


def test_the_synthetic_clip_the_bad_files_come_from_is_itself_valid(synthetic_clip):
    probe = probe_video(synthetic_clip)
    assert (probe.frame_count, probe.header_frame_count, probe.fps, probe.width, probe.height) == (30, 30, 10.0,
                                                                                                   160, 120)
    assert (probe.container, probe.codec, probe.duration_s, probe.status) == ("mp4", "mpeg4", 3.0, "ready")
    assert probe.sha256 == hashlib.sha256(synthetic_clip.read_bytes()).hexdigest()


def test_every_bad_input_gets_a_clear_error(bad_files):
    assert set(bad_files) == {"empty.mp4", "truncated.mp4", "notes.mp4", "image.mp4", "garbage.mp4"}
    for name, (path, message) in bad_files.items():
        with pytest.raises(VideoProbeError) as raised:
            probe_video(path)
        assert message in str(raised.value), (name, str(raised.value))


def test_missing_file(tmp_path):
    with pytest.raises(VideoProbeError, match="cannot read the file"):
        probe_video(tmp_path / "gone.mp4")
