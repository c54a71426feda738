import pytest

from video_analysis.probe import VideoProbeError, probe_video


def test_person_clip_is_described_from_what_decodes(person_clip):
    probe = probe_video(person_clip)
    assert (probe.frame_count, probe.fps, probe.width, probe.height) == (1394, 10.0, 768, 432)
    assert probe.container == "mp4" and probe.codec == "h264"
    assert probe.duration_s == pytest.approx(139.4)
    assert probe.size_bytes == person_clip.stat().st_size
    assert len(probe.sha256) == 64
    assert probe.thumbnail_jpeg.startswith(b"\xff\xd8") and len(probe.thumbnail_jpeg) < 20_000


def test_bottle_clip(bottle_clip):
    probe = probe_video(bottle_clip)
    assert (probe.frame_count, probe.width, probe.height) == (1189, 640, 360)
    assert probe.fps == pytest.approx(29.83, abs=0.01)


def test_container_comes_from_content_not_extension(tmp_path, bottle_clip):
    renamed = tmp_path / "clip.avi"
    renamed.write_bytes(bottle_clip.read_bytes())
    assert probe_video(renamed).container == "mp4"


def test_every_bad_input_gets_a_clear_error(bad_files):
    for path, message in bad_files.values():
        with pytest.raises(VideoProbeError, match=message):
            probe_video(path)


def test_missing_file(tmp_path):
    with pytest.raises(VideoProbeError, match="cannot read the file"):
        probe_video(tmp_path / "gone.mp4")
