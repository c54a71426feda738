import numpy as np

from video_analysis.vision.scene import StaticObjectFinder


def _room(seed: int = 0) -> np.ndarray:
    """A textured floor and wall, 240x320 (a static camera's view)."""
    rng = np.random.default_rng(seed)
    image = np.full((240, 320, 3), 150, np.uint8)
    image[:, ::16] = 90  # floorboards: edges the background models learn
    return np.clip(image.astype(int) + rng.integers(-6, 7, image.shape), 0, 255).astype(np.uint8)


def _run(frames, fps: float = 5.0):
    finder = StaticObjectFinder(fps)
    for i, frame in enumerate(frames):
        finder.add(frame, i / fps)
    return finder.regions(min_seconds=10.0)


def test_an_object_that_appears_and_stays_is_a_static_region_with_its_box():
    frames = []
    for i in range(60 * 5):
        frame = _room(i)
        if i >= 10 * 5:  # a dark box put on the floor at 10 s
            frame[150:190, 60:90] = 40
        frames.append(frame)
    [region] = _run(frames)
    assert 9.0 <= region.first_t <= 11.0 and region.last_t >= 59.0
    x1, y1, x2, y2 = region.xyxy
    assert 50 <= x1 <= 62 and 140 <= y1 <= 152 and 88 <= x2 <= 100 and 188 <= y2 <= 200


def test_exposure_changes_and_passers_by_leave_no_static_region():
    frames = []
    for i in range(60 * 5):
        gain = 1.25 if 20 * 5 <= i < 40 * 5 else 1.0  # the camera brightens for 20 s when someone dark walks in
        frame = np.clip(_room(i).astype(float) * gain, 0, 255).astype(np.uint8)
        x = (i * 7) % 300
        frame[60:200, x:x + 20] = 20  # someone walking across, all the time
        frames.append(frame)
    assert _run(frames) == []
