"""Real-world footage: header counts are hints, partial recordings are salvaged, times come from PTS.

Every file here is written by the test (tests/media.py); nothing is committed.
"""

import threading
import time

import numpy as np
import pytest

from models import ModelRegistry
from tests.media import corrupt_middle, write_audio_only, write_video
from video_analysis.vision.decode_report import DecodeReport
from video_analysis.vision.frames import _ByteBoundedQueue, decode_stream, iter_frames
from video_analysis.vision.loaders import load_model
from video_analysis.vision.passes import detect_video
from video_analysis.vision.probe import VideoProbeError, probe_video
from video_analysis.vision.seeking import frames_at


def _decode(path):
    report = DecodeReport(25.0)
    frames = list(decode_stream(path, report))
    return frames, report


def test_an_avi_whose_index_declares_more_frames_than_decode_is_ready(tmp_path):
    # 341 frames at every other tick of a 50 fps time line: the AVI index declares 681 entries.
    path = write_video(tmp_path / "dvr-export.avi", 341, rate=50, codec="mpeg4", pts_step=2)
    probe = probe_video(path)
    assert (probe.status, probe.header_frame_count, probe.frame_count) == ("ready", 681, 341)
    assert probe.duration_s == pytest.approx(13.6, abs=0.1)
    frames, report = _decode(path)
    assert len(frames) == 341 and report.errors == 0 and not report.gaps
    assert frames[-1].timestamp == pytest.approx(13.6, abs=0.05)
    assert report.covered_s == pytest.approx(probe.duration_s, abs=0.1)


@pytest.mark.parametrize(("name", "codec", "fmt", "container"), [
    ("clip.ts", "libx264", "mpegts", "mpeg-ts"),
    ("clip.mkv", "libx264", "matroska", "matroska"),
    ("clip.mp4", "libx265", None, "mp4"),
    ("clip.webm", "libvpx-vp9", "webm", "matroska"),
])
def test_common_containers_and_codecs_decode_whole(tmp_path, name, codec, fmt, container):
    path = write_video(tmp_path / name, 40, codec=codec, fmt=fmt)
    probe = probe_video(path)
    assert (probe.status, probe.container, probe.frame_count) == ("ready", container, 40)
    assert probe.codec == {"libx264": "h264", "libx265": "hevc", "libvpx-vp9": "vp9"}[codec]
    frames, report = _decode(path)
    assert len(frames) == 40 and report.errors == 0
    assert [f.timestamp for f in frames[:3]] == pytest.approx([0.0, 0.04, 0.08], abs=1e-3)


def test_variable_frame_rate_times_are_the_presentation_times(tmp_path):
    times = [0.04 * i for i in range(30)] + [1.4 + 0.2 * i for i in range(20)]
    path = write_video(tmp_path / "vfr.mp4", times=times)
    frames, _ = _decode(path)
    assert [f.timestamp for f in frames] == pytest.approx(times, abs=2e-3)
    # Sampling is by time, so the slow stretch is sampled at the asked rate too.
    sampled = [f.timestamp for f in iter_frames(path, sample_fps=2.0)]
    assert sampled == pytest.approx([0.0, 0.52, 1.0, 1.6, 2.0, 2.6, 3.0, 3.6, 4.0, 4.6, 5.0], abs=1e-3)


def test_a_rotated_portrait_clip_is_decoded_as_displayed(tmp_path):
    # Stored landscape 160x96 with a white band on the left, displayed turned 90 degrees counter-clockwise.
    path = write_video(tmp_path / "portrait.mp4", 10, rotate=90)
    probe = probe_video(path)
    assert (probe.width, probe.height, probe.rotation) == (96, 160, 90)
    frame = next(decode_stream(path))
    assert frame.image.shape[:2] == (160, 96)
    # The left band of the stored picture is at the bottom of the displayed one.
    assert frame.image[-20:].mean() > 200 and frame.image[:20].mean() < 100
    [seeked] = frames_at(path, [0.2]).values()
    assert seeked.shape[:2] == (160, 96)


@pytest.fixture(scope="module")
def detector(tmp_path_factory):
    registry = ModelRegistry(tmp_path_factory.mktemp("models"), profile="offline")
    model = registry.resolve("detector")
    return load_model(model.backend, model.path, model.config_path)


@pytest.mark.slow
def test_a_recording_cut_off_half_way_is_partial_with_the_first_halfs_detections(tmp_path, bottle_clip, detector):
    whole = write_video(tmp_path / "whole.mp4", 240, rate=30, source=bottle_clip, faststart=True)
    cut = tmp_path / "power-loss.mp4"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    probe = probe_video(cut)
    assert probe.status == "partial" and probe.duration_s == pytest.approx(8.0, abs=0.1)
    assert probe.indexed_s < 6.0 and "stops at" in probe.notes[0]
    found = detect_video(cut, detector, fps=probe.fps, sample_fps=2.0)
    bottle = next(i for i, name in detector.class_names.items() if name == "bottle")
    bottles = found.detections[found.detections.class_id == bottle]
    assert len(bottles) >= 5
    assert found.decode.last_t < 6.0 and found.detections.timestamp.max() <= found.decode.last_t


@pytest.mark.slow
def test_random_bytes_mid_file_are_skipped_and_the_frames_after_them_processed(tmp_path, bottle_clip, detector):
    whole = write_video(tmp_path / "whole.mp4", 240, rate=30, source=bottle_clip)
    damaged = corrupt_middle(whole, tmp_path / "damaged.mp4")
    found = detect_video(damaged, detector, fps=30.0, sample_fps=2.0)
    assert found.decode.errors >= 1
    assert found.decode.last_t == pytest.approx(239 / 30, abs=0.05)  # decoding went on to the end
    late = found.detections[found.detections.timestamp > 5.0]
    assert len(late) >= 3  # frames after the damage were analysed


def test_an_audio_only_file_fails_saying_so(tmp_path):
    with pytest.raises(VideoProbeError, match=r"no video stream \(audio only\)"):
        probe_video(write_audio_only(tmp_path / "recording.mp4"))


@pytest.mark.parametrize(("name", "codec", "fmt"), [("clip.mp4", "libx264", None), ("clip.ts", "libx264", "mpegts"),
                                                  ("clip.avi", "mpeg4", None)])
def test_frames_at_gives_exactly_the_frame_decoding_gives_at_that_time(tmp_path, name, codec, fmt):
    path = write_video(tmp_path / name, 75, codec=codec, fmt=fmt)
    frames, _ = _decode(path)
    picked = [frames[i] for i in (0, 7, 8, 40, 74)]
    found = frames_at(path, [f.timestamp for f in picked] + [frames[20].timestamp + 0.01])
    for frame in picked:
        assert np.array_equal(found[frame.timestamp], frame.image), f"frame {frame.index}"
    # A time between two frames is shown by the next one.
    assert np.array_equal(found[frames[20].timestamp + 0.01], frames[21].image)
    assert frames_at(path, [99.0]) == {}  # past the end: nothing, and no full decode to find out


def test_the_decode_queue_holds_no_more_bytes_than_its_bound():
    queue, stop = _ByteBoundedQueue(max_bytes=25), threading.Event()
    queue.put("a", 10, stop)
    queue.put("b", 10, stop)
    third = threading.Thread(target=queue.put, args=("c", 10, stop))
    third.start()
    third.join(0.3)
    assert third.is_alive() and queue.bytes == 20  # 30 bytes would exceed the bound: the producer waits
    assert queue.get() == "a"
    third.join(2)
    assert not third.is_alive() and queue.bytes == 20
    big = _ByteBoundedQueue(max_bytes=5)
    big.put("larger than the bound", 50, stop)  # one item always fits, however large
    assert big.get() == "larger than the bound"


class _MeasuredQueue(_ByteBoundedQueue):
    """The decode queue, remembering the most bytes it ever held: every change of ``bytes`` passes here."""

    def __init__(self, max_bytes: int):
        self.peak = 0
        super().__init__(max_bytes)

    @property
    def bytes(self) -> int:
        return self._bytes

    @bytes.setter
    def bytes(self, value: int) -> None:
        self._bytes = value
        self.peak = max(self.peak, value)


def _consume_slowly(path, max_queue_bytes, monkeypatch) -> tuple[list[int], _MeasuredQueue]:
    """The frames' indexes, read by a consumer slower than the decoder, and the queue they went through."""
    from video_analysis.vision import frames as frames_module

    queues: list[_MeasuredQueue] = []
    monkeypatch.setattr(frames_module, "_ByteBoundedQueue", lambda max_bytes: queues.append(_MeasuredQueue(max_bytes))
                        or queues[-1])
    seen: list[int] = []

    def consume():
        for frame in iter_frames(path, None, max_queue_bytes=max_queue_bytes):
            time.sleep(0.02)  # the decoder runs ahead until the queue is full, then waits
            seen.append(frame.index)

    reader = threading.Thread(target=consume, daemon=True)
    reader.start()
    reader.join(30)
    assert not reader.is_alive(), f"decoding stalled after {len(seen)} frames"
    [queue] = queues
    return seen, queue


def test_while_the_consumer_lags_the_decode_queue_holds_no_more_bytes_than_its_bound(tmp_path, monkeypatch):
    path = write_video(tmp_path / "clip.mp4", 40, size=(64, 48))
    frame_bytes = 64 * 48 * 3
    seen, queue = _consume_slowly(path, 3 * frame_bytes, monkeypatch)
    assert seen == list(range(40))
    # The queue filled up to its bound (the consumer lagged) and never went past it.
    assert queue.peak == 3 * frame_bytes


def test_a_frame_larger_than_the_decode_queue_s_bound_still_passes_one_at_a_time(tmp_path, monkeypatch):
    path = write_video(tmp_path / "clip.mp4", 20, size=(64, 48))
    seen, queue = _consume_slowly(path, 1000, monkeypatch)  # a frame is 9216 bytes
    assert seen == list(range(20))
    assert queue.peak == 64 * 48 * 3  # one frame at a time, never two


def test_frames_larger_than_the_configured_bound_are_refused_saying_so(tmp_path, monkeypatch):
    from configuration.settings import max_video_pixels
    from video_analysis.vision.probe import DEFAULT_MAX_PIXELS

    path = write_video(tmp_path / "clip.mp4", 5, size=(64, 48))
    monkeypatch.setenv("REELGRAPH_MAX_VIDEO_PIXELS", str(64 * 48))
    probe = probe_video(path, max_video_pixels(DEFAULT_MAX_PIXELS))  # at the bound: accepted, as ingest reads it
    assert (probe.status, probe.width, probe.height) == ("ready", 64, 48)
    monkeypatch.setenv("REELGRAPH_MAX_VIDEO_PIXELS", str(64 * 48 - 1))
    with pytest.raises(VideoProbeError, match=r"^frames of 64x48 exceed the configured bound of 3071 pixels "
                                              r"\(REELGRAPH_MAX_VIDEO_PIXELS\)$"):
        probe_video(path, max_video_pixels(DEFAULT_MAX_PIXELS))
    monkeypatch.setenv("REELGRAPH_MAX_VIDEO_PIXELS", "lots")
    with pytest.raises(ValueError, match="REELGRAPH_MAX_VIDEO_PIXELS must be a whole number"):
        max_video_pixels(DEFAULT_MAX_PIXELS)


def test_the_static_object_cue_runs_beside_the_detector_and_its_error_stops_the_pass(tmp_path, bottle_clip,
                                                                                       monkeypatch):
    from video_analysis.vision import passes
    from video_analysis.vision.detections import Detections

    class NoBoxes:
        class_names = {}

        def detect(self, frames):
            return Detections.empty()

    clip = write_video(tmp_path / "clip.mp4", 60, rate=30, source=bottle_clip)
    threads_before = {t.name for t in threading.enumerate()}
    seen = []
    original = passes.StaticObjectFinder.add

    def add(self, image, t):
        seen.append((threading.current_thread().name, round(t, 2)))
        return original(self, image, t)

    monkeypatch.setattr(passes.StaticObjectFinder, "add", add)
    found = detect_video(clip, NoBoxes(), fps=30.0, sample_fps=6.0)
    assert found.frames_processed == 12
    assert [t for _, t in seen] == [0.0, 0.5, 1.0, 1.5]  # 2 a second, in order
    assert {name for name, _ in seen} != {threading.current_thread().name}  # on a thread of its own

    def broken(self, image, t):
        if t >= 1.0:
            raise RuntimeError("the cue broke")
        return original(self, image, t)

    monkeypatch.setattr(passes.StaticObjectFinder, "add", broken)
    with pytest.raises(RuntimeError, match="the cue broke"):
        detect_video(clip, NoBoxes(), fps=30.0, sample_fps=6.0)
    time.sleep(0.2)
    assert not {t.name for t in threading.enumerate()} - threads_before  # no cue or decode thread left
