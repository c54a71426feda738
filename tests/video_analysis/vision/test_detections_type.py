import numpy as np

from video_analysis.vision.detections import Detections
from video_analysis.vision.frames import Frame, iter_frames
from video_analysis.vision.sampling import sampled
from video_analysis.vision.tracking import TrackerSettings, assign_tracks, summarize_tracks


def _walker(frames: int, start_x: float, step: float, cls: int = 0) -> Detections:
    xs = start_x + step * np.arange(frames)
    xyxy = np.stack([xs, np.full(frames, 100.0), xs + 50, np.full(frames, 250.0)], axis=1).astype(np.float32)
    return Detections(xyxy, np.full(frames, 0.9, np.float32), np.full(frames, cls, np.int32),
                      np.arange(frames, dtype=np.int32), np.arange(frames) / 2.0)


def test_masks_concat_and_tracker_views():
    a, b = _walker(3, 0, 10), _walker(2, 300, 10, cls=1)
    both = Detections.concat([a, b, Detections.empty()])
    assert len(both) == 5 and len(both[both.class_id == 1]) == 2
    assert np.allclose(both.xywh[0], [25, 175, 50, 150])


def test_two_walkers_become_two_tracks_with_sensible_summaries():
    detections = Detections.concat([_walker(20, 0, 8), _walker(20, 500, -8)])
    tracked = assign_tracks(detections, list(range(20)), 2.0, TrackerSettings())
    tracks = summarize_tracks(tracked)
    assert len(tracks) == 2
    assert all(t.frames_seen == 20 and t.max_step_px < 20 for t in tracks)
    assert {round(t.path[0][1]) for t in tracks} == {25, 525}


def test_a_short_gap_keeps_the_track_a_long_absence_starts_a_new_one():
    walker = _walker(30, 0, 5)
    seen = np.isin(walker.frame_index, [*range(0, 10), *range(12, 30)])
    tracks = summarize_tracks(assign_tracks(walker[seen], list(range(30)), 2.0))
    assert len(tracks) == 1
    far_apart = np.isin(walker.frame_index, [*range(0, 5), *range(25, 30)])
    assert len(summarize_tracks(assign_tracks(walker[far_apart], list(range(30)), 2.0))) == 2


def _frames_at(times: list[float]) -> list[Frame]:
    return [Frame(i, t, np.zeros((2, 2, 3), np.uint8)) for i, t in enumerate(times)]


def test_sampling_keeps_the_requested_rate_by_time():
    ten_fps = _frames_at([i / 10 for i in range(20)])
    assert [f.index for f in sampled(ten_fps, 2.0)] == [0, 5, 10, 15]
    assert [f.index for f in sampled(ten_fps, 0)] == list(range(20))  # 0 or None: every frame
    assert [f.index for f in sampled(ten_fps, None)] == list(range(20))
    assert [f.index for f in sampled(ten_fps, 50.0)] == list(range(20))  # faster than the video: every frame
    # variable frame rate: the first frame at or after each half second, whatever the spacing
    uneven = _frames_at([0.0, 0.1, 0.15, 0.5, 0.55, 1.2, 1.3, 1.49, 1.5])
    assert [f.timestamp for f in sampled(uneven, 2.0)] == [0.0, 0.5, 1.2, 1.5]


def test_sampling_a_real_clip_streams_in_order(person_clip):
    frames = list(iter_frames(person_clip, sample_fps=1.0))
    assert len(frames) == 140 and frames[1].index == 10 and frames[1].timestamp == 1.0
    assert [f.index for f in frames] == list(range(0, 1394, 10))
    assert all(f.image.shape == (432, 768, 3) for f in frames[:3])
    first = next(iter_frames(person_clip))  # abandoning the iterator early stops the decoder cleanly
    assert first.index == 0 and first.timestamp == 0.0


def test_a_walker_moving_further_than_its_width_between_samples_keeps_one_track():
    # 2 fps: 55 px a sample for a 50 px wide person; plain IoU sees no overlap between samples.
    fast = _walker(12, 0, 55)
    assert len(summarize_tracks(assign_tracks(fast, list(range(12)), 2.0))) == 1
    # without the buffer every sighting starts a track that never confirms: the walker is lost altogether
    assert len(summarize_tracks(assign_tracks(fast, list(range(12)), 2.0, TrackerSettings(buffer=0.0)))) == 0


def test_a_track_born_after_the_first_frame_keeps_its_first_sighting():
    early, late = _walker(10, 0, 5), _walker(10, 500, -5)
    late = late[late.frame_index >= 4]
    tracked = assign_tracks(Detections.concat([early, late]), list(range(10)), 2.0)
    newcomer = tracked[tracked.xyxy[:, 0] > 300]
    assert newcomer.frame_index.min() == 4 and (newcomer.tracker_id >= 0).all()
    assert len(np.unique(newcomer.tracker_id)) == 1


def test_sampling_steps_by_whole_frames_of_the_video():
    from video_analysis.vision.sampling import effective_sample_fps, sampling_period_s

    assert sampling_period_s(6.0, 25.0) == 4 / 25 and effective_sample_fps(6.0, 25.0) == 6.25
    assert sampling_period_s(6.0, 30.0) == 5 / 30 and sampling_period_s(6.0, 15.0) == 3 / 15
    assert sampling_period_s(2.0) == 0.5 and sampling_period_s(0) == 0 and sampling_period_s(30.0, 25.0) == 0
    twenty_five = _frames_at([i / 25 for i in range(25)])
    assert [f.index for f in sampled(twenty_five, 6.0, 25.0)] == [0, 4, 8, 12, 16, 20, 24]


def test_fragments_of_one_person_lost_for_a_moment_are_relinked_by_motion_and_looks():
    from video_analysis.vision.tracking import appearance, relink

    walker = _walker(30, 100, 10)  # 2 fps, 10 px a sample: 20 px/s
    seen = ~np.isin(walker.frame_index, range(10, 18))  # missed for 4 s (behind a pillar): past the tracker's 3 s
    tracked = assign_tracks(walker[seen], list(range(30)), 2.0)
    assert len(np.unique(tracked.tracker_id[tracked.tracker_id >= 0])) == 2
    red, blue = np.zeros((64, 32, 3), np.uint8), np.zeros((64, 32, 3), np.uint8)
    red[..., 2], blue[..., 0] = 200, 200
    first, second = sorted(np.unique(tracked.tracker_id[tracked.tracker_id >= 0]).tolist())
    same = relink(tracked, {first: appearance(red), second: appearance(red)}, (1280, 720))
    assert set(same.tracker_id[same.tracker_id >= 0].tolist()) == {first}
    unlike = relink(tracked, {first: appearance(red), second: appearance(blue)}, (1280, 720))
    assert set(unlike.tracker_id[unlike.tracker_id >= 0].tolist()) == {first, second}
    # lost with its centre at the picture's edge: it walked out, and whoever comes in is someone else
    at_edge = relink(tracked, {first: appearance(red), second: appearance(red)}, (230, 720))
    assert set(at_edge.tracker_id[at_edge.tracker_id >= 0].tolist()) == {first, second}


def test_bot_sort_the_compared_tracker_follows_walkers_too_and_an_unknown_one_is_refused():
    import pytest

    detections = Detections.concat([_walker(20, 0, 8), _walker(20, 500, -8)])
    tracks = summarize_tracks(assign_tracks(detections, list(range(20)), 2.0, TrackerSettings(kind="botsort")))
    assert len(tracks) == 2 and all(t.frames_seen == 20 for t in tracks)
    with pytest.raises(ValueError, match="unknown tracker 'sort'"):
        assign_tracks(detections, list(range(20)), 2.0, TrackerSettings(kind="sort"))
