from video_analysis.vision.evidence import CCTV_CLASSES, TrackPolicy, parse_classes, policy_for_camera


def test_the_default_keeps_cctv_classes_seen_long_and_surely_enough():
    policy = TrackPolicy(parse_classes(None))
    assert set(CCTV_CLASSES) == policy.classes and "cell phone" not in policy.classes
    assert policy.keeps("person", 2, 0.47) and not policy.keeps("person", 1, 0.9)
    assert not policy.keeps("person", 10, 0.44) and not policy.keeps("cell phone", 10, 0.9)
    assert parse_classes("*") is None and parse_classes(" car, truck ") == frozenset({"car", "truck"})


def test_a_camera_can_have_its_own_classes_and_the_policy_changes_the_version(tmp_path):
    zones = tmp_path / "zones.yaml"
    zones.write_text("track_classes:\n  dock: [forklift, person]\n  '*': [person]\n")
    default = TrackPolicy(parse_classes(None))
    assert policy_for_camera(default, zones, "dock").classes == frozenset({"forklift", "person"})
    assert policy_for_camera(default, zones, "lobby").classes == frozenset({"person"})
    assert policy_for_camera(default, None, "dock") == default
    assert default.fingerprint() != TrackPolicy(parse_classes(None), min_frames=3).fingerprint()
