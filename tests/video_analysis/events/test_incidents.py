import numpy as np

from video_analysis.events.incidents import (
    IncidentRules,
    SceneEvidence,
    TrackFacts,
    detect_incidents,
    safety_score,
    summary_text,
)
from video_analysis.vision.scene import StaticRegion


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


def test_a_bag_is_unattended_once_its_owner_is_away_whoever_else_passes():
    bag = TrackFacts(7, "backpack", 0, 90, [[0, 250, 355], [90, 250, 355]], 40, motion="stationary")
    owner_leaves = _person(1, 0, 20, motion="stationary")  # beside the bag for 20 s, then gone
    far_away = TrackFacts(3, "person", 30, 80, [[t, 1500 + 40 * t, 300] for t in range(30, 81)], 150.0)
    [incident] = detect_incidents([bag, owner_leaves, far_away], set())
    assert incident.type == "unattended_object" and incident.track_ids == [7, 1]
    assert incident.detail == ("backpack left with nobody near for 70 s, away from the person beside it when it "
                               "appeared (track 1)")
    owner_stays = _person(1, 0, 90, motion="stationary")
    assert [i.type for i in detect_incidents([bag, owner_stays], set())] == ["loitering"]  # the bag is watched
    stranger = _person(2, 25, 90, motion="stationary")  # PETS 2006: a stranger beside it does not attend it
    assert "unattended_object" in {i.type for i in detect_incidents([bag, owner_leaves, stranger], set())}


def _sightings(rows: list[tuple[float, str, tuple]], regions=()) -> SceneEvidence:
    return SceneEvidence(list(regions), np.array([r[0] for r in rows], float), np.array([r[1] for r in rows], object),
                         np.full(len(rows), 0.6, np.float32), np.array([r[2] for r in rows], np.float32).reshape(-1, 4))


def test_a_bag_the_detector_sees_only_now_and_then_is_still_found():
    bag = (600, 380, 640, 420)
    glimpses = [(t, "suitcase", bag) for t in (5, 19, 33, 61)]  # four sightings in a minute: never one track
    owner = [(t, "person", (560, 200, 640, 420)) for t in np.arange(0, 5, 0.5)]
    [incident] = detect_incidents([], set(), scene=_sightings(glimpses + owner))
    assert incident.type == "unattended_object" and (incident.start_t, incident.end_t) == (5, 61)
    assert incident.detail == "suitcase left with nobody near for 56 s, seen by the detector 4 times"


def test_a_static_region_is_a_left_object_unless_a_person_or_vehicle_explains_it():
    left = StaticRegion(10.0, 80.0, (100, 300, 130, 400))
    passer_by = [(t, "person", (1500, 100, 1600, 420)) for t in np.arange(0, 80, 0.5)]  # 4 heights away
    [incident] = detect_incidents([], set(), scene=_sightings(passer_by, [left]))
    assert incident.detail == "object left with nobody near for 70 s, never recognised by the detector"

    standing = [(t, "person", (90, 80, 150, 410)) for t in np.arange(10, 80, 0.5)]  # someone standing there
    assert detect_incidents([], set(), scene=_sightings(standing, [left])) == []
    parked = StaticRegion(10.0, 80.0, (300, 200, 500, 330))
    car = [(t, "car", (290, 190, 510, 340)) for t in np.arange(10, 80, 2.0)]
    assert detect_incidents([], set(), scene=_sightings(passer_by + car, [parked])) == []
    near = [(t, "person", (140, 150, 200, 420)) for t in np.arange(0, 80, 10.0)]  # someone comes by every 10 s
    assert detect_incidents([], set(), scene=_sightings(near, [left])) == []


def test_loitering_is_dwell_in_an_area_over_a_persons_fragments():
    # Someone walks around one parked car for 50 s; the tracker loses them twice (behind it), for a few seconds.
    def around(track_id, start, end, upper="black"):
        path = [[t, 400 + 150 * np.cos(t / 6), 300 + 40 * np.sin(t / 6)] for t in np.arange(start, end, 0.5)]
        return TrackFacts(track_id, "person", start, end - 0.5, path, 150.0, upper_color=upper, lower_color="blue")

    fragments = [around(1, 0, 15), around(2, 19, 33), around(5, 36, 50)]
    [incident] = detect_incidents(fragments, set())
    assert incident.type == "loitering" and incident.track_ids == [1, 2, 5]
    assert incident.detail == "stayed 50 s within 2.5 body heights of one place, seen as 3 track fragments"
    # the same fragments worn by three different people are three short visits
    strangers = [around(1, 0, 15, "black"), around(2, 19, 33, "red"), around(5, 36, 50, "white")]
    assert detect_incidents(strangers, set()) == []
    # and one person who walks on, away from the car, is not loitering
    passing = TrackFacts(9, "person", 0, 45, [[t, 30.0 * t, 300] for t in range(46)], 150.0)
    assert detect_incidents([passing], set()) == []


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
