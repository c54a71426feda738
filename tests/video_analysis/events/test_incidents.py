from video_analysis.events.incidents import (
    IncidentRules,
    TrackFacts,
    detect_incidents,
    safety_score,
    summary_text,
)


def _person(track_id, start, end, moving_px_per_s=0.0, motion="walking", zones=(), height=150.0):
    path = [[t, 200 + moving_px_per_s * (t - start), 300] for t in range(int(start), int(end) + 1)]
    return TrackFacts(track_id, "person", start, end, path, height, motion=motion, zones=zones)


def test_loitering_fires_on_a_person_standing_still_not_on_one_walking():
    standing = _person(1, 0, 45, moving_px_per_s=1.0, motion="stationary")
    walking = _person(2, 0, 45, moving_px_per_s=60.0)
    incidents = detect_incidents([standing, walking], set())
    assert [(i.type, i.track_ids) for i in incidents] == [("loitering", [1])]
    assert "45 s" in incidents[0].detail
    short_stay = _person(3, 0, 20, motion="stationary")
    assert detect_incidents([short_stay], set()) == []


def test_running_crowding_and_zone_intrusion():
    runner = _person(1, 0, 5, moving_px_per_s=400, motion="running")
    intruder = _person(2, 10, 20, moving_px_per_s=60, zones=("door",))
    assert {i.type for i in detect_incidents([runner, intruder], {"door"})} == {"running", "zone_intrusion"}
    assert detect_incidents([intruder], set()) == []  # a zone that is not restricted is no incident

    crowd = [_person(10 + i, i, 30 + i, moving_px_per_s=50) for i in range(6)]
    [crowding] = detect_incidents(crowd, set(), IncidentRules(crowd_size=5))
    assert crowding.type == "crowding" and crowding.start_t == 4 and len(crowding.track_ids) >= 5


def test_unattended_bag_needs_nobody_around():
    bag = TrackFacts(7, "backpack", 0, 90, [[0, 50, 50], [90, 50, 50]], 40, motion="stationary")
    owner_leaves = _person(1, 0, 20, moving_px_per_s=30)
    [incident] = detect_incidents([bag, owner_leaves], set())
    assert incident.type == "unattended_object" and incident.track_ids == [7] and "70 s" in incident.detail
    people_stay = [_person(1, 0, 50, moving_px_per_s=30), _person(2, 45, 90, moving_px_per_s=30)]
    assert detect_incidents([bag, *people_stay], set()) == []


def test_score_and_summary():
    incidents = detect_incidents([_person(1, 0, 60, motion="stationary"),
                                  _person(2, 0, 9, moving_px_per_s=400, motion="running")], set())
    assert safety_score(incidents) == 80 and safety_score([]) == 100
    text = summary_text(139.4, "lobby", [_person(1, 0, 60), _person(2, 0, 9)], incidents, 80)
    assert text.startswith("139 seconds of camera lobby: 2 people tracked.")
    assert "2 incidents (1 loitering, 1 running)" in text and text.endswith("Safety score 80/100.")


def test_rules_come_from_the_zones_file_and_their_hash_changes_with_them(tmp_path):
    import pytest

    from video_analysis.events.incidents import load_rules, rules_fingerprint

    config = tmp_path / "zones.yaml"
    assert load_rules(None) == IncidentRules() and load_rules(config) == IncidentRules()
    config.write_text("rules:\n  loiter_seconds: 20\n  unattended_classes: [suitcase]\n")
    assert load_rules(config) == IncidentRules(loiter_seconds=20, unattended_classes=("suitcase",))
    before = rules_fingerprint(config)
    config.write_text("rules:\n  loiter_seconds: 20\n  unattended_classes: [suitcase]\n"
                      "cameras:\n  lobby:\n    - {name: door, restricted: true, polygon: [[0, 0], [1, 0], [1, 1]]}\n")
    assert rules_fingerprint(config) != before  # a zone added changes what the rules see
    config.write_text("rules:\n  loitre_seconds: 20\n")
    with pytest.raises(ValueError, match="unknown rules \\['loitre_seconds'\\]"):
        load_rules(config)
