"""Counting questions read into structured queries: what, which class, where, when (in the site's time zone)."""

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

from video_analysis.search.questions import CountQuery, parse

NAMES = {"door": "crossing", "counter": "visit"}
CAMERAS = {"lobby", "yard"}
NOW = datetime(2026, 12, 7, 16, 30, tzinfo=timezone.utc)
PARIS = ZoneInfo("Europe/Paris")


def read(question: str, site=timezone.utc):
    return parse(question, NAMES, CAMERAS, NOW, site)


def test_a_count_through_a_line_between_two_times_today():
    query = read("How many people came in through the door between 14:00 and 15:00?")
    assert (query.what, query.class_name, query.name, query.direction) == ("crossings", "person", "door", "in")
    assert (query.since, query.until) == (datetime(2026, 12, 7, 14, tzinfo=timezone.utc),
                                          datetime(2026, 12, 7, 15, tzinfo=timezone.utc))
    assert query.when == "between 14:00 and 15:00 today"


def test_times_are_the_site_s_and_yesterday_afternoon_is_a_range():
    query = read("how many people left through the door yesterday afternoon", PARIS)
    assert query.direction == "out"
    assert query.since == datetime(2026, 12, 6, 12, tzinfo=PARIS) and query.until == datetime(2026, 12, 6, 18,
                                                                                            tzinfo=PARIS)
    assert read("how many people between 2pm and 3 pm").since.hour == 14


def test_people_on_a_camera_today_and_the_other_kinds_of_question():
    query = read("how many people were on camera lobby today")
    assert (query.what, query.camera, query.when) == ("people", "lobby", "today")
    assert query.since == datetime(2026, 12, 7, tzinfo=timezone.utc)
    assert read("how many cars in the yard last week").class_name == "car"
    assert read("when was the lobby busiest today?").what == "busiest"
    assert read("how long did people stay at the counter?").what == "dwell"
    assert read("how many people visited the counter").what == "visits"


def test_a_count_of_a_place_the_facts_do_not_hold_is_said_unanswerable_and_other_questions_go_to_search():
    assert isinstance(read("how many people came in through the back entrance?"), str)
    assert isinstance(read("how long did people stay in the kitchen?"), str)
    assert read("was anyone hanging around?") is None
    assert read("a person in red") is None
    assert isinstance(read("how many people today"), CountQuery)


def test_colours_and_which_questions_are_read():
    assert read("how long did the person in red stay at the counter").colour == "red"
    assert read("how many people wearing grey came in through the door").colour == "gray"
    assert read("who stayed longest at the counter today").what == "longest"
    assert read("which camera saw the most people yesterday").what == "busiest_camera"
    assert read("which camera was busiest").what == "busiest_camera"
    assert isinstance(read("who stayed longest at the till"), str)  # no such zone
    assert read("who came in through the door") is None  # a question for search
