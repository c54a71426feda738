"""Crossings of counting lines and visits to zones, from where tracks' feet were."""

import pytest

from video_analysis.events.counting import CountingLine, crossings, load_lines, occupancy, visits
from video_analysis.events.track_facts import TrackFacts
from video_analysis.vision.attributes import Zone, load_zones

W, H = 1000, 500


def walker(track_id: int, points: list[tuple[float, float, float]], height: float = 100.0) -> TrackFacts:
    """A person whose feet are at (x, y) pixels at each t (box centre half a height above them)."""
    path = [[t, x, y - height / 2, 40.0, height] for t, x, y in points]
    return TrackFacts(track_id, "person", points[0][0], points[-1][0], path, height)


DOOR = CountingLine("door", (0.5, 0.2), (0.5, 0.8), inward="left")  # a vertical line, drawn top to bottom


def test_a_walk_across_the_line_is_one_crossing_each_way_it_goes():
    # drawn top to bottom, the line's left (as seen walking along it) is the picture's right side
    rightwards = walker(1, [(0, 100, 250), (10, 900, 250)])
    back_and_forth = walker(2, [(0, 900, 300), (5, 100, 300), (10, 900, 300)])
    found = crossings([rightwards, back_and_forth], [DOOR], W, H)
    # in time order: track 2 leftwards at 2.5 s, track 1 rightwards at 5 s, track 2 back at 7.5 s
    assert [(c.track_id, c.direction) for c in found] == [(2, "out"), (1, "in"), (2, "in")]
    assert [c.t for c in found] == pytest.approx([2.5, 5.0, 7.5], abs=0.5)


def test_passing_beyond_the_ends_of_the_line_or_standing_on_one_side_is_no_crossing():
    below_its_end = walker(1, [(0, 100, 480), (10, 900, 480)])  # crosses x = 500 at y 480, past the line's end
    staying = walker(2, [(0, 100, 250), (30, 400, 260)])
    assert crossings([below_its_end, staying], [DOOR], W, H) == []


def test_in_is_the_side_the_zones_file_says():
    rightwards = walker(1, [(0, 100, 250), (10, 900, 250)])
    flipped = CountingLine("door", DOOR.a, DOOR.b, inward="right")
    assert [c.direction for c in crossings([rightwards], [flipped], W, H)] == ["out"]


def test_visits_to_a_zone_have_their_entry_exit_and_dwell_and_the_zone_its_peak():
    counter = Zone("counter", [(0.4, 0.4), (0.6, 0.4), (0.6, 0.9), (0.4, 0.9)])
    stays_20_s = walker(1, [(0, 100, 350), (5, 500, 350), (25, 500, 350), (30, 900, 350)])
    passes = walker(2, [(10, 100, 300), (20, 900, 300)])  # through the counter in about 2.5 s
    found = visits([stays_20_s, passes], [counter], W, H)
    assert [(v.track_id, round(v.start_t), round(v.end_t)) for v in found] == [(1, 4, 26), (2, 14, 16)]
    peak, peak_t, _ = occupancy(found)["counter"]
    assert peak == 2 and 14 <= peak_t <= 16


def test_lines_and_zones_share_the_zones_file(tmp_path):
    path = tmp_path / "zones.yaml"
    path.write_text("cameras:\n  lobby:\n    - {name: door, line: [[0.5, 0.2], [0.5, 0.8]], in: right}\n"
                    "    - {name: counter, polygon: [[0.4, 0.4], [0.6, 0.4], [0.6, 0.9]]}\n")
    assert load_lines(path, "lobby") == [CountingLine("door", (0.5, 0.2), (0.5, 0.8), "right")]
    assert [z.name for z in load_zones(path, "lobby")] == ["counter"]  # a line is no area
    path.write_text("cameras:\n  lobby:\n    - {name: door, line: [[0.5, 0.2]], in: up}\n")
    with pytest.raises(ValueError, match="two points"):
        load_lines(path, "lobby")
