"""Counting answers over rows written as the summaries stage writes them: the hourly tallies and the part-hour
rows at a range's edges add up to exactly what counting every row would, and the fragments of one person are
said to be likely the same person."""

import json
from datetime import datetime, timezone

import pytest

from video_analysis.events.counting import Crossing, Visit
from video_analysis.search.counts import Counted, hourly
from video_analysis.search.questions import CountQuery, counted
from video_analysis.store.counting import replace_counting

NOW = datetime(2026, 12, 7, 18, 0, tzinfo=timezone.utc)
DAY = datetime(2026, 12, 7, tzinfo=timezone.utc)


def add_video(conn, key: str, camera: str, at: datetime, tracks: list[tuple], superseded: bool = False) -> None:
    """A ten-minute segment with tracks (track_id, first_t, last_t, (x, y) first, (x, y) last, upper colour)."""
    conn.execute("INSERT INTO videos (partition_key, source, object_key, version, size_bytes, last_modified, camera, "
                 "recorded_at, duration_s, status, superseded_by) VALUES (%s, 'local', %s, '1', 1, %s, %s, %s, 600, "
                 "'ready', %s)", (key, f"cameras/{camera}/{key}.mp4", at, camera, at, "newer" if superseded else None))
    for track_id, first, last, start, end, colour in tracks:
        path = [[first, *start, 20, 80], [last, *end, 20, 80]]
        conn.execute("INSERT INTO tracks (partition_key, track_id, class_name, first_t, last_t, frames_seen, "
                     "mean_confidence, max_step_px, path, best_frame, best_x1, best_y1, best_x2, best_y2, model_name, "
                     "model_version) VALUES (%s, %s, 'person', %s, %s, 5, 0.8, 5, %s, 0, 0, 0, 20, 80, 'm', '1')",
                     (key, track_id, first, last, json.dumps(path)))
        conn.execute("INSERT INTO track_attributes (partition_key, track_id, class_name, upper_color, lower_color, "
                     "apparent_height, speed_px_s, speed_heights_s, motion, displacement_px, dwell_s, description, "
                     "profile) VALUES (%s, %s, 'person', %s, 'black', 80, 1, 0.1, 'walking', 10, 1, 'a person', 'o')",
                     (key, track_id, colour))


def _replace(conn, key: str, crossings: list, visits: list) -> None:
    """The counting facts written as the summaries stage writes them: in a transaction of their own."""
    conn.autocommit = False
    try:
        replace_counting(conn, key, crossings, visits)
        conn.commit()
    finally:
        conn.autocommit = True


@pytest.fixture
def lobby(db):
    """Three segments of camera lobby (13:50, 14:00, 14:50) and one replaced by a newer upload (14:10): a track
    every 50 s, each crossing the door once (in) and visiting the desk; in 14:00's segment track 3 is split by
    the tracker (track 30 begins 1 s after it ends, where it ended) and track 5 visits the desk twice."""
    for key, at, superseded in (("a", DAY.replace(hour=13, minute=50), False), ("b", DAY.replace(hour=14), False),
                                ("c", DAY.replace(hour=14, minute=50), False),
                                ("old", DAY.replace(hour=14, minute=10), True)):
        tracks = [(i, 50.0 * i, 50.0 * i + 20, (100.0 * i, 300.0), (100.0 * i + 300, 300.0), "red" if i % 2 else "blue")
                  for i in range(1, 12)]
        if key == "b":
            tracks.append((30, 171.0, 180.0, (600.0, 300.0), (700.0, 300.0), "green"))  # 3 ends at 170 s at x=600
        add_video(db, key, "lobby", at, tracks, superseded)
        visits = [Visit("desk", t[0], "person", t[1] + 2, t[2] - 2) for t in tracks]
        if key == "b":
            visits.append(Visit("desk", 5, "person", 268.0, 269.0))
        _replace(db, key, [Crossing("door", t[0], "person", t[1] + 5, "in") for t in tracks], visits)
    return db


def _moments(conn, kind: str) -> list[datetime]:
    return [at for at, in conn.execute(
        "SELECT v.recorded_at + make_interval(secs => e.start_t) FROM counting_events e JOIN videos v "
        "USING (partition_key) WHERE e.kind = %s AND v.superseded_by IS NULL", (kind,))]


@pytest.mark.parametrize("since, until", [
    (None, None),
    (DAY.replace(hour=14), DAY.replace(hour=15)),  # whole hours only
    (DAY.replace(hour=13, minute=55), DAY.replace(hour=14, minute=52)),  # part-hours at both edges
    (DAY.replace(hour=14, minute=1), DAY.replace(hour=14, minute=4)),  # inside one hour
    (DAY.replace(hour=13, minute=58, second=20), None),
    (None, DAY.replace(hour=14, minute=55)),
])
def test_tallies_and_edge_rows_add_up_to_every_row_counted_and_a_rerun_counts_once(lobby, since, until):
    _replace(lobby, "b", *_rows_of(lobby, "b"))  # the summaries stage run again: nothing doubles
    query = CountQuery("people", since=since, until=until)
    for kind, name in (("track", ""), ("crossing", "door"), ("visit", "desk")):
        expected = sum((since is None or at >= since) and (until is None or at < until) for at in _moments(lobby, kind))
        assert sum(n for n, _ in hourly(lobby, query, Counted(kind, name)).values()) == expected, (kind, since, until)


def _rows_of(conn, key: str):
    rows = conn.execute("SELECT kind, name, track_id, start_t, end_t, direction FROM counting_events "
                        "WHERE partition_key = %s AND kind <> 'track'", (key,)).fetchall()
    return ([Crossing(n, t, "person", s, d) for k, n, t, s, _, d in rows if k == "crossing"],
            [Visit(n, t, "person", s, e) for k, n, t, s, e, _ in rows if k == "visit"])


def test_counting_answers_say_the_number_how_it_was_counted_and_the_likely_repeats(lobby):
    def ask(question):
        return counted(lobby, question, now=NOW).text

    # 33 tracks in the three current segments and the fragment: about 33 people
    assert ask("How many people today?").startswith(
        "About 33 people today: 34 tracks, 1 of them likely the same person seen again")
    assert ask("How many people came in through the door between 14:00 and 15:00?").startswith(
        "23 people went in through door between 14:00 and 15:00 today (counted as crossings of the line 'door', "
        "direction in)[1][2][3][4][5]")  # 12 of 14:00's segment and 11 of 14:50's
    assert ask("How many people visited the desk today?").startswith("35 visits to desk today, by 34 people")
    assert ask("When was it busiest today?").startswith(
        "The busiest hour today was 2026-12-07 14:00-15:00 UTC, with 23 people")  # 13:50's end before 14:00
    assert ask("How long did people stay at the desk?").startswith("35 stays in desk: median 16 s, longest 16 s")
    shortest_stays = counted(lobby, "How long did people stay at the desk since 14:00?", now=NOW)
    assert [round(c.end_s - c.start_s) for c in shortest_stays.citations] == [16] * 5  # the longest cited first
    out = counted(lobby, "How many people went out through the door today?", now=NOW)
    assert out.text.startswith("0 people went out") and not out.citations


def test_the_rows_counted_are_cited_in_time_order_with_where_to_play_them(lobby):
    answer = counted(lobby, "How many people came in through the door since 14:30?", now=NOW)
    first = answer.citations[0]
    assert (first.partition_key, first.start_s) == ("c", 55.0)  # 14:30 lies past segment b's last crossing (555 s)
    assert first.object_key == "cameras/lobby/c.mp4"
    assert [c.start_s for c in answer.citations] == sorted(c.start_s for c in answer.citations)


def test_a_colour_narrows_the_count_and_who_stayed_longest_and_which_camera_saw_most_are_answered(lobby):
    def ask(question):
        return counted(lobby, question, now=NOW)

    # the odd tracks of each segment wear red: 6 a segment; the fragment (track 30) wears green
    assert ask("How many people in red today?").text.startswith("18 people in red today (counted as distinct tracks)")
    assert ask("How many people wearing green?").text.startswith("1 person in green (counted as distinct tracks)")
    assert ask("How long did the person in red stay at the desk?").text.startswith(
        "19 stays in desk by people in red: median 16 s, longest 16 s")  # track 5 (red) came back once
    longest = ask("Who stayed longest at the desk?")
    assert longest.text.startswith("The longest stay in desk was 16 s, by the person at [1], then 16 s[2]")
    assert longest.text.endswith("(35 stays in all).") and len(longest.citations) == 5
    add_video(lobby, "yard", "yard", DAY.replace(hour=15), [(1, 10.0, 20.0, (0.0, 0.0), (10.0, 0.0), "red")])
    _replace(lobby, "yard", [], [])
    busiest = ask("Which camera saw the most people today?")
    assert busiest.text.startswith("Camera lobby saw the most people today: about 33 (then yard: 1)[1]"), busiest.text
    assert {c.partition_key for c in busiest.citations} <= {"a", "b", "c"}
    assert ask("Who stayed longest at the till?").text.startswith("Cannot answer that from the footage")


def test_a_language_model_may_read_a_quantity_question_the_rules_do_not_and_its_query_is_checked_first(lobby):
    """The full profile's phraser: its JSON query runs only when every word is one the facts hold. (The scripted
    phraser stands for the language model; the real checkpoint's loader is exercised below.)"""
    import json

    asked = []

    def phraser(answers):
        def phrase(question, vocabulary):
            asked.append((question, vocabulary))
            return answers
        return phrase

    query = {"what": "crossings", "class": "person", "name": "door", "direction": "in", "camera": None,
             "colour": None, "time": "between 14:00 and 15:00 today"}
    read = counted(lobby, "What was the headcount at the door this afternoon?", now=NOW,
                   phraser=phraser(f"Sure: {json.dumps(query)}"))
    assert read.text.startswith("23 people went in through door between 14:00 and 15:00 today"), read.text
    assert read.note.startswith("read by the language model: Sure: {") and read.citations
    assert asked[-1][1]["names"] == ["desk", "door"] and "busiest_camera" in asked[-1][1]["whats"]

    refused = {
        "SELECT count(*) FROM tracks; DROP TABLE videos": "no query (no JSON object)",
        json.dumps({**query, "sql": "DROP TABLE videos"}): "keys outside the vocabulary: sql",
        json.dumps({**query, "name": "back door"}): "name 'back door'",
        json.dumps({**query, "name": "desk"}): "a count of crossings needs a line by name",
    }
    for raw, why in refused.items():
        answer = counted(lobby, "What was the headcount at the door?", now=NOW, phraser=phraser(raw))
        assert answer.text.startswith("Cannot answer that from the footage") and why in answer.text, answer.text
    before = len(asked)
    assert counted(lobby, "was anyone near the door?", now=NOW, phraser=phraser("{}")) is None
    assert len(asked) == before  # not a question about quantities: searched, without the model's latency


def test_the_full_profile_checkpoint_phrases_queries_through_its_real_loader(lobby, tiny_vlm):
    from video_analysis.vision.loaders import load_model

    writer = load_model("transformers-image-text-to-text", tiny_vlm)
    answer = counted(lobby, "What was the total footfall through the door today?", now=NOW,
                     phraser=writer.phrase_query)
    assert answer.note.startswith("read by the language model:")  # the model ran; a random one reads nothing
    assert answer.text.startswith("Cannot answer that from the footage: the language model")


def test_hours_are_utc_whatever_the_session_s_time_zone_and_rows_past_a_short_header_duration_count(lobby):
    from video_analysis.store.camera_counts import camera_day_counts

    lobby.execute("SET TimeZone = 'Asia/Kolkata'")  # +05:30: a server initialised on a host in India
    assert counted(lobby, "When was it busiest today?", now=NOW).text.startswith(
        "The busiest hour today was 2026-12-07 14:00-15:00 UTC")
    assert [h["hour"] for h in camera_day_counts(lobby, "lobby", DAY.date())["hours"]] == [
        "2026-12-07T13:00:00+00:00", "2026-12-07T14:00:00+00:00"]
    # a container whose header says 60 s, holding ten minutes (decoded: 600 s): its late crossings still count
    lobby.execute("UPDATE videos SET duration_s = 60, covered_s = 600")
    assert counted(lobby, "How many people came in through the door between 14:55 and 15:00?", now=NOW
                   ).text.startswith("6 people went in")  # c's crossings at 305 s and on, 14:55:05 to 14:59:15


def test_the_median_stay_is_the_same_in_the_answer_and_on_the_cameras_page(db):
    from video_analysis.store.camera_counts import camera_day_counts

    add_video(db, "v", "hall", DAY.replace(hour=9), [(1, 10.0, 40.0, (0.0, 0.0), (100.0, 0.0), "red"),
                                                    (2, 50.0, 90.0, (0.0, 0.0), (100.0, 0.0), "blue")])
    _replace(db, "v", [], [Visit("desk", 1, "person", 10.0, 19.0), Visit("desk", 2, "person", 50.0, 80.0)])
    assert counted(db, "How long did people stay at the desk?", now=NOW).text.startswith(
        "2 stays in desk: median 9 s, longest 30 s")
    assert camera_day_counts(db, "hall", DAY.date())["zones"]["desk"]["median_s"] == 9.0
