"""A camera's day in counts, on the person clip recorded as camera `room` at 14:00: six people walk one at a
time from the middle of the room (a door at 40-60% of the width) out to the right (counted by eye), across a line
drawn at 70% of the width and through a walkway zone at 50-65%. The API gives the counts; the cameras page draws
them and the search page answers counting questions, in a real browser (screenshots kept in test-artifacts/)."""

import os
from pathlib import Path

import httpx
import pytest

from tests.helpers import REPO, headless_chrome, run_cli, start_service, wait_for

pytestmark = pytest.mark.slow

ARTIFACTS = Path(os.environ.get("REELGRAPH_TEST_ARTIFACTS", REPO / "test-artifacts"))
ZONES = """cameras:
  room:
    - {name: aisle, line: [[0.7, 0.0], [0.7, 1.0]], in: left}
    - {name: walkway, polygon: [[0.5, 0.0], [0.65, 0.0], [0.65, 1.0], [0.5, 1.0]]}
"""


@pytest.fixture(scope="module")
def room(pg_dsn, person_clip, tmp_path_factory):
    from video_analysis.store.db import connect

    folder = tmp_path_factory.mktemp("room")
    with connect(pg_dsn, autocommit=True) as conn:
        conn.execute("TRUNCATE videos, descriptions, description_vectors, camera_daily_reports CASCADE")
    (folder / "zones.yaml").write_text(ZONES)
    segment = folder / "2026-01-15T14-00-00.mp4"
    segment.symlink_to(person_clip)
    env = {"REELGRAPH_ZONES": str(folder / "zones.yaml"), "DAGSTER_HOME": str(folder / "dagster"),
           "REELGRAPH_INBOX": str(folder / "inbox"), "REELGRAPH_SETTLE_SECONDS": "0"}
    result = run_cli("process", "--prefix", "cameras/room/", str(segment), env_extra=env)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    server, url = start_service({**os.environ, **env}, folder / "serve.log")
    try:
        yield url
    finally:
        server.terminate()
        server.wait(30)


def test_the_day_s_counts_are_the_people_the_line_and_the_zone_saw(room):
    counts = httpx.get(room + "/api/cameras/room/counts", params={"day": "2026-01-15"}, timeout=30).json()
    [hour] = counts["hours"]
    assert hour["hour"] == "2026-01-15T14:00:00+00:00"
    assert hour["lines"] == {"aisle": {"in": 6, "out": 0}}  # each of the six crosses once, left to right
    assert counts["people"] == hour["people"] == 6, counts  # the tracker's fragment of one is said to be a repeat
    assert counts["peak_people"] == 1  # one at a time
    assert counts["peak_at"].startswith("2026-01-15T14:0")
    assert [s["peak"] for s in counts["occupancy"]] == [1] * len(counts["occupancy"]) and counts["occupancy"]
    walkway = counts["zones"]["walkway"]
    # each of the six walks through it: 7 where the tracker split one of them in two; a track stepping out and
    # back in is one more entry, not one more person
    assert hour["zones"]["walkway"]["people"] in (6, 7)
    assert hour["zones"]["walkway"]["entries"] == walkway["stays"] >= hour["zones"]["walkway"]["people"]
    assert sum(b["stays"] for b in walkway["distribution"]) == walkway["stays"]
    assert 0 < walkway["median_s"] <= walkway["longest_s"] < 40  # some stop at the table there for 20-25 s
    missing = httpx.get(room + "/api/cameras/nowhere/counts", timeout=30)
    assert missing.status_code == 404 and "nowhere" in missing.json()["detail"]


def test_the_daily_report_keeps_the_day_s_counts(room, pg_dsn):
    from datetime import date

    from video_analysis.store.db import connect
    from video_analysis.store.reports import replace_daily_report

    with connect(pg_dsn) as conn:
        [report] = replace_daily_report(conn, date(2026, 1, 15))
        conn.commit()
    counts = report["counts"]
    assert (report["camera"], counts["people"], counts["lines"]) == ("room", 6, {"aisle": {"in": 6, "out": 0}})
    assert counts["busiest_hour"] == "2026-01-15T14:00:00+00:00" and counts["busiest_hour_people"] == 6
    assert counts["peak_people"] == 1 and counts["zones"]["walkway"]["stays"] >= 6


def test_the_cameras_page_draws_occupancy_counts_per_hour_and_stays(room):
    from selenium.webdriver.common.by import By

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    browser = headless_chrome()
    try:
        browser.get(room + "/cameras?camera=room&day=2026-01-15")
        bars = wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "#occupancy-chart rect.occupancy"), 30,
                        "the occupancy chart", interval_s=0.2)
        assert {b.get_attribute("data-peak") for b in bars} == {"1"}
        assert "6 people" in browser.find_element(By.ID, "counts-title").text
        head = [th.text for th in browser.find_elements(By.CSS_SELECTOR, "#hour-counts th")]
        assert head == ["hour (UTC)", "people", "aisle in", "aisle out", "walkway entries"]
        [row] = browser.find_elements(By.CSS_SELECTOR, "#hour-counts tbody tr")
        cells = [td.text for td in row.find_elements(By.TAG_NAME, "td")]
        assert cells[:4] == ["14:00", "6", "6", "0"], cells
        stays = browser.find_elements(By.CSS_SELECTOR, "#dwell-charts svg[data-zone=walkway] rect.dwell-bar")
        assert sum(int(s.get_attribute("data-stays")) for s in stays) == int(cells[4])
        assert "walkway:" in browser.find_element(By.CSS_SELECTOR, "#dwell-charts figcaption").text
        browser.find_element(By.ID, "counts").location_once_scrolled_into_view  # noqa: B018 - scrolls the page
        browser.save_screenshot(str(ARTIFACTS / "camera-counts.png"))
    finally:
        browser.quit()


def test_the_search_page_answers_a_count_with_citations_that_play_their_moment_and_refuses_what_it_cannot(room):
    from selenium.webdriver.common.by import By

    from tests.helpers import PEOPLE_ON_SCREEN

    browser = headless_chrome()
    try:
        browser.get(room + "/?q=" + "How many people came in through the aisle?".replace(" ", "+"))
        text = wait_for(lambda: browser.find_elements(By.ID, "answer-text"), 60, "the answer", interval_s=0.2)[0]
        assert text.text.startswith("6 people went in through aisle (counted as crossings of the line 'aisle', "
                                    "direction in)[1][2][3][4][5]"), text.text
        assert not browser.find_elements(By.XPATH, "//*[contains(text(), 'fused score') or contains(@title, 'fused')]")
        third = browser.find_element(By.CSS_SELECTOR, "#answer .citation[data-ref='3']")
        start = float(third.get_attribute("data-start"))
        assert any(a <= start <= b for a, b in PEOPLE_ON_SCREEN[2:3]), start  # the third person's crossing
        third.click()
        at = wait_for(lambda: browser.execute_script(
            "const v = document.getElementById('video');"
            "return v.readyState >= 1 && !v.seeking && Math.abs(v.currentTime - arguments[0]) < 1"
            " ? v.currentTime : null",
            start), 30, "the video at the third crossing", interval_s=0.2)
        assert abs(at - start) < 1
        browser.save_screenshot(str(ARTIFACTS / "answer-count.png"))

        browser.get(room + "/?q=" + "How many people came in through the back door?".replace(" ", "+"))
        refused = wait_for(lambda: browser.find_elements(By.ID, "answer-text"), 60, "the refusal", interval_s=0.2)[0]
        assert refused.text.startswith("Cannot answer that from the footage") and "aisle" in refused.text
        assert not refused.find_elements(By.CSS_SELECTOR, ".citation")
        browser.save_screenshot(str(ARTIFACTS / "answer-refused.png"))
    finally:
        browser.quit()
