import numpy as np
import pytest

from video_analysis.events.crowding import crowd_threshold
from video_analysis.events.incident_record import Incident
from video_analysis.events.incident_rules import IncidentRules, load_rules, rules_fingerprint
from video_analysis.events.incident_summary import safety_score, summary_text
from video_analysis.events.incidents import detect_incidents
from video_analysis.events.track_facts import SceneEvidence, TrackFacts
from video_analysis.vision.attributes import Zone, load_zones
from video_analysis.vision.scene import StaticRegion

FRAME = (1920, 1080)


def _person(track_id, start, end, moving_px_per_s=0.0, motion="walking", zones=(), height=150.0, x=200.0, y=300.0):
    path = [[t, x + moving_px_per_s * (t - start), y, height * 0.4, height] for t in range(int(start), int(end) + 1)]
    return TrackFacts(track_id, "person", start, end, path, height, motion=motion, zones=zones)


def test_loitering_fires_past_the_threshold_on_a_person_standing_still_not_on_one_walking():
    standing = _person(1, 0, 65, moving_px_per_s=1.0, motion="stationary")
    walking = _person(2, 0, 65, moving_px_per_s=60.0)
    [incident] = detect_incidents([standing, walking], set())
    assert (incident.type, incident.track_ids) == ("loitering", [1]) and "65 s" in incident.detail
    assert 0 < incident.confidence <= 1 and incident.evidence_t[0] == 0
    # browsing a shelf or standing at a counter for 45 s, working at a table for 26 s: not loitering
    assert detect_incidents([_person(3, 0, 45, motion="stationary")], set()) == []


def test_a_zone_sets_its_own_loitering_threshold_or_exempts_people_working_there():
    # feet at (200, 375) of a 1920x1080 frame: inside a zone over the left fifth of the picture
    desk = Zone("desk", [(0.0, 0.0), (0.2, 0.0), (0.2, 1.0), (0.0, 1.0)], loiter_seconds=0)
    worker = _person(1, 0, 300, motion="stationary")
    assert detect_incidents([worker], set(), frame_size=FRAME, zones=[desk]) == []
    assert [i.type for i in detect_incidents([worker], set(), frame_size=FRAME)] == ["loitering"]
    gate = Zone("gate", [(0.0, 0.0), (0.2, 0.0), (0.2, 1.0), (0.0, 1.0)], loiter_seconds=20)
    [incident] = detect_incidents([_person(2, 0, 25, motion="stationary")], set(), frame_size=FRAME, zones=[gate])
    assert incident.type == "loitering" and "25 s" in incident.detail
    lobby = Zone("lobby", [(0.0, 0.0), (0.2, 0.0), (0.2, 1.0), (0.0, 1.0)], loiter_seconds=120)
    assert detect_incidents([_person(3, 0, 90, motion="stationary")], set(), frame_size=FRAME, zones=[lobby]) == []
    # a worker who steps away from the desk for a minute is judged on that minute alone, not desk time plus it
    away = TrackFacts(4, "person", 0, 200, [[t, 200 if t < 140 else 600, 300, 60, 150] for t in range(201)], 150.0)
    assert [i.type for i in detect_incidents([away], set(), frame_size=FRAME, zones=[desk])] == ["loitering"]
    desk_only = TrackFacts(5, "person", 0, 200, [[t, 200 if t < 160 else 600, 300, 60, 150] for t in range(201)],
                           150.0)
    assert detect_incidents([desk_only], set(), frame_size=FRAME, zones=[desk]) == []  # 40 s away: not yet


def test_running_and_zone_intrusion_from_the_moment_the_feet_are_inside():
    runner = _person(1, 0, 5, moving_px_per_s=400, motion="running")
    assert [i.type for i in detect_incidents([runner], set())] == ["running"]
    # walks right at 60 px/s from x=200: feet cross into the zone (x >= 960) at t = 12.7 s
    zone = Zone("yard", [(0.5, 0.0), (1.0, 0.0), (1.0, 1.0), (0.5, 1.0)], restricted=True)
    intruder = _person(2, 0, 20, moving_px_per_s=60, zones=("yard",))
    [incident] = detect_incidents([intruder], {"yard"}, frame_size=FRAME, zones=[zone])
    assert incident.type == "zone_intrusion" and (incident.start_t, incident.end_t) == (13, 20)
    assert detect_incidents([intruder], set(), frame_size=FRAME, zones=[zone]) == []  # not restricted: no incident


def test_crowding_is_judged_against_a_capacity_or_the_cameras_normal_never_a_fixed_count():
    crowd = [_person(10 + i, i, 30 + i, moving_px_per_s=50) for i in range(6)]
    assert detect_incidents(crowd, set()) == []  # six people, nothing known of the scene: no crowding
    [crowding] = detect_incidents(crowd, set(), IncidentRules(crowd_size=5))
    assert crowding.type == "crowding" and crowding.start_t == 4 and len(crowding.track_ids) == 6  # 5 from 4 s
    assert detect_incidents(crowd, set(), normal_people=2) == []  # 6 is under 3x a usual 2 (and under 8)
    big = [_person(20 + i, i * 0.1, 30, moving_px_per_s=50) for i in range(10)]
    [crowding] = detect_incidents(big, set(), normal_people=2)
    assert crowding.detail == "10 people on screen at once (8 for this camera, whose usual peak is 2)"
    assert round(crowding.start_t, 2) == 0.7  # the eighth person arrives
    assert crowd_threshold(IncidentRules(), None) is None and crowd_threshold(IncidentRules(), 4) == 12
    lobby = Zone("lobby", [(0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0)], capacity=4)
    [crowding] = detect_incidents(crowd, set(), frame_size=FRAME, zones=[lobby])
    assert crowding.detail.startswith("6 people at once in zone lobby (capacity 4)")


def test_a_bag_is_unattended_once_its_owner_is_away_whoever_else_passes():
    bag = TrackFacts(7, "backpack", 0, 90, [[0, 250, 355], [90, 250, 355]], 40, motion="stationary")
    owner_leaves = _person(1, 0, 20, motion="stationary")  # beside the bag for 20 s, then gone
    far_away = TrackFacts(3, "person", 30, 80, [[t, 1500 + 40 * t, 300] for t in range(30, 81)], 150.0)
    [incident] = detect_incidents([bag, owner_leaves, far_away], set())
    assert incident.type == "unattended_object" and incident.track_ids == [7, 1]
    assert incident.detail == ("backpack left with nobody near for 70 s, away from the person beside it when it "
                               "appeared (track 1)")
    assert incident.evidence_t == [0, 20, 40]  # appeared, left by its owner, unattended for the rule's time
    owner_stays = _person(1, 0, 90, motion="stationary")
    assert [i.type for i in detect_incidents([bag, owner_stays], set())] == ["loitering"]  # the bag is watched
    passer_by = TrackFacts(2, "person", 40, 42, [[t, 250, 300] for t in (40, 41, 42)], 150.0)
    assert "unattended_object" in {i.type for i in detect_incidents([bag, owner_leaves, passer_by], set())}
    # but someone else who stays by it watches it, even when the tracker splits them into fragments
    friend = _person(2, 15, 90, motion="stationary", x=260)
    assert "unattended_object" not in {i.type for i in detect_incidents([bag, owner_leaves, friend], set())}
    pieces = [_person(10 + i, 15 + 4 * i, 18.5 + 4 * i, motion="stationary", x=260) for i in range(19)]
    assert "unattended_object" not in {i.type for i in detect_incidents([bag, owner_leaves, *pieces], set())}


def test_an_owner_who_stays_beside_the_bag_for_half_an_hour_never_leaves_it():
    """A stored path keeps 64 points however long the track: half an hour gives points 28 s apart, which must
    not read as the owner being away for 28 s at a time."""
    bag = TrackFacts(7, "backpack", 0, 1800, [[0, 250, 355], [1800, 250, 355]], 40, motion="stationary")
    times = np.linspace(0, 1800, 64)
    owner = TrackFacts(1, "person", 0, 1800, [[float(t), 200, 300, 60, 150] for t in times], 150.0,
                       motion="stationary")
    assert "unattended_object" not in {i.type for i in detect_incidents([bag, owner], set())}
    # and one who leaves after 20 minutes is found, with the moments in order within the incident
    leaves = TrackFacts(1, "person", 0, 1200, [[float(t), 200, 300, 60, 150] for t in np.linspace(0, 1200, 64)],
                        150.0, motion="stationary")
    [left] = [i for i in detect_incidents([bag, leaves], set()) if i.type == "unattended_object"]
    assert left.evidence_t == sorted(left.evidence_t) and left.start_t <= left.evidence_t[0]
    assert 1199 <= left.evidence_t[1] <= 1201 and left.evidence_t[-1] <= left.end_t


def test_loitering_is_dwell_in_an_area_over_a_persons_fragments():
    # Someone walks around one parked car for 70 s; the tracker loses them twice (behind it), for a few seconds.
    def around(track_id, start, end, upper="black"):
        path = [[t, 400 + 150 * np.cos(t / 6), 300 + 40 * np.sin(t / 6)] for t in np.arange(start, end, 0.5)]
        return TrackFacts(track_id, "person", start, end - 0.5, path, 150.0, upper_color=upper, lower_color="blue")

    fragments = [around(1, 0, 25), around(2, 29, 48), around(5, 51, 70)]
    [incident] = detect_incidents(fragments, set())
    assert incident.type == "loitering" and incident.track_ids == [1, 2, 5]
    assert incident.detail == "stayed 70 s within 2.5 body heights of one place, seen as 3 track fragments"
    # the same fragments worn by three different people are three short visits
    strangers = [around(1, 0, 25, "black"), around(2, 29, 48, "red"), around(5, 51, 70, "white")]
    assert detect_incidents(strangers, set()) == []
    # and one person who walks on, away from the car, is not loitering
    passing = TrackFacts(9, "person", 0, 65, [[t, 30.0 * t, 300] for t in range(66)], 150.0)
    assert detect_incidents([passing], set()) == []


def _sightings(rows: list[tuple[float, str, tuple]], regions=(), confidence=0.6) -> SceneEvidence:
    return SceneEvidence(list(regions), np.array([r[0] for r in rows], float), np.array([r[1] for r in rows], object),
                         np.full(len(rows), confidence, np.float32),
                         np.array([r[2] for r in rows], np.float32).reshape(-1, 4))


def test_a_bag_the_detector_sees_only_now_and_then_is_still_found():
    bag = (600, 380, 640, 420)
    glimpses = [(t, "suitcase", bag) for t in (5, 19, 33, 61)]  # four sightings in a minute: never one track
    owner = _person(1, 0, 4, x=600, y=310, height=220)  # beside it as it appeared
    [incident] = detect_incidents([owner], set(), scene=_sightings(glimpses))
    assert incident.type == "unattended_object" and (incident.start_t, incident.end_t) == (5, 61)
    assert incident.detail == ("suitcase left with nobody near for 56 s, away from the person beside it when it "
                               "appeared (track 1), seen by the detector 4 times")


def test_a_static_region_is_a_left_object_only_where_a_person_left_something_bag_sized_on_the_floor():
    left = StaticRegion(10.0, 80.0, (100, 340, 140, 400))
    owner = [(t, "person", (80, 100, 160, 400)) for t in np.arange(0, 12, 0.5)]  # stands there, leaves at 12 s
    owner_track = _person(1, 0, 12, x=120, y=250, height=300)
    passer_by = [(t, "person", (1500, 100, 1600, 400)) for t in np.arange(12, 80, 0.5)]  # far away
    [incident] = detect_incidents([owner_track], set(), scene=_sightings(owner + passer_by, [left]))
    assert incident.detail.startswith("object left with nobody near for 68 s")
    assert incident.detail.endswith("never recognised by the detector") and incident.confidence < 1

    # appeared with nobody beside it: uncovered scenery or a light change, not something someone left
    assert detect_incidents([], set(), scene=_sightings(passer_by, [left])) == []
    # a counter, a shelf, a screen: larger than a bag beside a person there, or above the floor people walk on
    counter = StaticRegion(10.0, 80.0, (60, 200, 400, 400))
    shelf = StaticRegion(10.0, 80.0, (100, 120, 140, 170))
    assert detect_incidents([owner_track], set(), scene=_sightings(owner + passer_by, [counter])) == []
    assert detect_incidents([owner_track], set(), scene=_sightings(owner + passer_by, [shelf])) == []
    standing = [(t, "person", (90, 80, 150, 410)) for t in np.arange(10, 80, 0.5)]  # someone standing there
    assert detect_incidents([owner_track], set(), scene=_sightings(owner + standing, [left])) == []
    parked = StaticRegion(10.0, 80.0, (100, 300, 200, 400))
    car = [(t, "car", (90, 290, 210, 410)) for t in np.arange(10, 80, 2.0)]
    assert detect_incidents([owner_track], set(), scene=_sightings(owner + passer_by + car, [parked])) == []


def _fall(lying_box=(300, 420, 520, 500), stays=3.0, lying_from=6.0):
    """Someone walks upright (box 80x220) to x 400 and falls there at 6 s (lying box), seen 6 times a second."""
    rows = [(t, "person", (300 + 10 * t, 280, 380 + 10 * t, 500)) for t in np.arange(0, lying_from, 1 / 6)]
    rows += [(t, "person", lying_box) for t in np.arange(lying_from, lying_from + stays, 1 / 6)]
    return rows


def test_a_fall_is_someone_upright_then_lying_at_the_same_place_and_staying_down():
    [fall] = detect_incidents([], set(), scene=_sightings(_fall()))
    assert fall.type == "fall" and 5.5 <= fall.start_t <= 6.0 and fall.end_t >= 8.5
    assert fall.detail.startswith("went from upright to lying") and fall.confidence >= 0.8
    assert detect_incidents([], set(), scene=_sightings(_fall(stays=1.0))) == []  # up again within a second
    # lying somewhere nobody was standing (a sofa's shape, a person asleep from the start) is no fall
    sleeper = [(t, "person", (1200, 420, 1420, 500)) for t in np.arange(0, 10, 1 / 6)]
    assert detect_incidents([], set(), scene=_sightings(sleeper)) == []
    # bending to a shelf: the box gets squarer but the head stays high
    bending = _fall(lying_box=(380, 300, 520, 500))
    assert detect_incidents([], set(), scene=_sightings(bending)) == []
    # crouching to tie a shoe (115 px across, a standing person is 220 tall): too narrow to be lying
    assert detect_incidents([], set(), scene=_sightings(_fall(lying_box=(340, 385, 455, 500), stays=4))) == []
    # sitting down on the ground (170 x 130): too tall to be lying
    assert detect_incidents([], set(), scene=_sightings(_fall(lying_box=(320, 370, 490, 500), stays=4))) == []


def test_someone_lying_there_all_along_is_no_fall_when_a_passer_by_hides_them():
    lying = (300, 420, 520, 500)
    rows = [(t, "person", lying) for t in np.arange(0, 10, 1 / 6)]
    rows += [(t, "person", lying) for t in np.arange(12.5, 20, 1 / 6)]  # hidden 10-12.5 s
    rows += [(t, "person", (380, 280, 460, 500)) for t in np.arange(10, 12.5, 1 / 6)]  # the passer-by
    assert detect_incidents([], set(), scene=_sightings(rows)) == []


def test_the_safety_score_weighs_each_incident_by_its_confidence():
    certain = Incident("unattended_object", 0, 30, [1], "bag", confidence=1.0)
    unsure = Incident("unattended_object", 0, 30, [1], "bag", confidence=0.5)
    assert safety_score([]) == 100 and safety_score([certain]) == 70 and safety_score([unsure]) == 85
    assert safety_score([certain] * 4) == 0


def test_score_and_summary():
    incidents = detect_incidents([_person(1, 0, 80, motion="stationary"),
                                  _person(2, 0, 9, moving_px_per_s=400, motion="running")], set())
    assert [i.type for i in incidents] == ["loitering", "running"]
    score = safety_score(incidents)
    assert 80 <= score < 100
    text = summary_text(139.4, "lobby", [_person(1, 0, 60), _person(2, 0, 9)], incidents, score)
    assert text.startswith("139 seconds of camera lobby: 2 people tracked.")
    assert "2 incidents (1 loitering, 1 running)" in text and text.endswith(f"Safety score {score}/100.")
    fragmented = summary_text(139.4, "lobby", [_person(1, 0, 60), _person(2, 60, 70), _person(3, 80, 90)], [], 100,
                              likely_repeats=1)
    assert fragmented.startswith("139 seconds of camera lobby: 3 people tracked (about 2 different people: 1 track "
                                 "likely the same person seen again).")


def test_rules_and_zones_come_from_the_zones_file_and_their_hash_changes_with_them(tmp_path):
    config = tmp_path / "zones.yaml"
    assert load_rules(None) == IncidentRules() and load_rules(config) == IncidentRules()
    config.write_text("rules:\n  loiter_seconds: 20\n  unattended_classes: [suitcase]\n")
    assert load_rules(config) == IncidentRules(loiter_seconds=20, unattended_classes=("suitcase",))
    before = rules_fingerprint(config)
    config.write_text("rules:\n  loiter_seconds: 20\n  unattended_classes: [suitcase]\n"
                      "cameras:\n  lobby:\n    - {name: door, restricted: true, polygon: [[0, 0], [1, 0], [1, 1]]}\n"
                      "    - {name: till, loiter_seconds: 0, capacity: 3, polygon: [[0, 0], [1, 0], [1, 1]]}\n")
    assert rules_fingerprint(config) != before  # a zone added changes what the rules see
    door, till = load_zones(config, "lobby")
    assert (door.restricted, door.loiter_seconds, till.loiter_seconds, till.capacity) == (True, None, 0, 3)
    config.write_text("cameras:\n  lobby:\n    - {name: till, loiter_seconds: -1, polygon: [[0, 0], [1, 0], [1, 1]]}\n")
    with pytest.raises(ValueError, match="loiter_seconds must be a number of seconds >= 0"):
        load_zones(config, "lobby")
    config.write_text("rules:\n  loitre_seconds: 20\n")
    with pytest.raises(ValueError, match="unknown rules \\['loitre_seconds'\\]"):
        load_rules(config)
