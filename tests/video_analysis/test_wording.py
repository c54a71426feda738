from video_analysis.events.incident_record import Incident
from video_analysis.events.incident_summary import summary_text
from video_analysis.events.track_facts import TrackFacts
from video_analysis.vision.attributes import TrackAttributes, describe
from video_analysis.wording import count, listing


def test_counts_take_the_right_plural():
    assert [count(1, "second"), count(40, "second"), count(1, "person"), count(6, "person")] == \
        ["1 second", "40 seconds", "1 person", "6 people"]
    assert [count(2, "bus"), count(3, "knife"), count(2, "wine glass"), count(2, "cell phone")] == \
        ["2 buses", "3 knives", "2 wine glasses", "2 cell phones"]
    assert [listing([]), listing(["a"]), listing(["a", "b"]), listing(["a", "b", "c"])] == \
        ["", "a", "a and b", "a, b and c"]


def _track(track_id, class_name):
    return TrackFacts(track_id, class_name, 0, 5, [[0, 1, 1], [5, 1, 1]], 50)


def test_a_summary_names_what_was_tracked_people_first_and_never_zero_of_anything():
    bottles = [_track(i, "bottle") for i in range(5)]
    text = summary_text(40.2, "kitchen", bottles, [], 100)
    assert text.startswith("40 seconds of camera kitchen: 5 bottles tracked.")
    mixed = [_track(1, "person"), _track(2, "cell phone"), _track(3, "cell phone")]
    assert summary_text(1.0, None, mixed, [], 100).startswith("1 second of the footage: 1 person and 2 cell phones "
                                                               "tracked.")
    assert summary_text(12, None, [], [], 100).startswith("12 seconds of the footage: nothing tracked.")
    one = Incident("running", 2.0, 4.0, [1], "1 person running")
    assert "1 incident (1 running)" in summary_text(12, None, mixed, [one], 90)


def test_a_track_description_says_one_second_not_one_seconds():
    attrs = TrackAttributes(1, "bottle", None, None, "gray", 0.2, 0.0, 0.0, "stationary", None, 0.0, 1.2)
    assert describe(attrs) == "gray bottle, stationary, on screen for 1 second"
