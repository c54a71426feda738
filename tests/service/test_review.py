"""`reelgraph serve` over the processed sample clips: the API as a client sees it, and the page in a real browser.

Both clips go through every stage once for this module; `reelgraph serve` runs as its own process, started
as a user would start it. Browser screenshots are kept in test-artifacts/ (or $REELGRAPH_TEST_ARTIFACTS).
"""

import json
import os
import re
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest

from tests.helpers import (
    KITCHEN_KEY,
    PEOPLE_ON_SCREEN,
    REPO,
    headless_chrome,
    sample_clips_processed,
    start_service,
    wait_for,
)

pytestmark = pytest.mark.slow

ARTIFACTS = Path(os.environ.get("REELGRAPH_TEST_ARTIFACTS", REPO / "test-artifacts"))


@dataclass(frozen=True)
class Served:
    url: str
    partitions: dict[str, str]
    client: httpx.Client


@pytest.fixture(scope="module")
def served(pg_dsn, person_clip, bottle_clip, tmp_path_factory):
    from dagster import materialize

    from assets import summaries
    from orchestration.definitions import build_resources

    with sample_clips_processed(pg_dsn, person_clip, bottle_clip, tmp_path_factory.mktemp("inbox"),
                                tmp_path_factory.mktemp("dagster")) as (instance, partitions):
        # A stricter loitering rule, so an incident fires on the real clip: people stand at the table 20-25 s.
        assert materialize([summaries], partition_key=partitions["person"], instance=instance,
                           resources=build_resources(), raise_on_error=False,
                           run_config={"ops": {"summaries": {"config": {"loiter_seconds": 20}}}}).success
        server, url = start_service(dict(os.environ), tmp_path_factory.mktemp("serve") / "serve.log")
        client = httpx.Client(base_url=url, timeout=60)
        try:
            yield Served(url, partitions, client)
        finally:
            client.close()
            server.terminate()
            server.wait(30)


def test_health_reports_the_catalogue_the_model_and_the_database_it_reads(served, pg_dsn):
    from video_analysis.store.db import session, store_identity

    health = served.client.get("/api/health").json()
    with session(pg_dsn) as conn:
        database = store_identity(conn)
    # queries embedded through ONNX Runtime: the same vectors as torch's (a test below compares the results)
    assert health == {"status": "ok", "videos": 2, "database": database, "text_model": "all-minilm-l6-v2",
                      "image_model": None, "query_embedder": "onnxruntime"}


def test_searching_bottle_puts_the_bottle_clip_first_with_what_a_card_needs(served):
    answer = served.client.get("/api/search", params={"q": "bottle"}).json()
    assert answer["query"] == "bottle" and answer["hits"]
    first = answer["hits"][0]
    assert (first["kind"], first["object_key"], first["class_name"]) == ("track", KITCHEN_KEY, "bottle")
    assert first["camera"] == "kitchen" and first["starts_at"].startswith("2026-01-15T08:00")
    assert 0 <= first["start_s"] <= first["end_s"] <= 39.9  # within the 39.9 s clip
    thumbnail = served.client.get(first["thumbnail_url"])
    assert thumbnail.status_code == 200 and thumbnail.headers["content-type"] == "image/jpeg"
    assert thumbnail.content[:2] == b"\xff\xd8"
    assert first["clip_url"].endswith(f"/video#t={first['start_s']}")
    assert "partition=" in first["dagster_url"]
    # a strength a person can read, from how close in meaning the hit is; the fused score kept beside it
    assert all(hit["strength"] in ("strong", "fair", "weak") for hit in answer["hits"])
    assert first["similarity"] >= 0.45 and first["strength"] == "strong" and first["score"] > 0
    for hit in answer["hits"]:
        if hit["similarity"] is not None:
            assert hit["strength"] == ("strong" if hit["similarity"] >= 0.45 else "fair" if hit["similarity"] >= 0.35
                                       else "weak"), hit


def test_the_video_is_served_with_range_requests(served, bottle_clip):
    url = f"/api/videos/{served.partitions['kitchen']}/video"
    part = served.client.get(url, headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == bottle_clip.read_bytes()[100:200]
    assert part.headers["content-type"] == "video/mp4" and part.headers["accept-ranges"] == "bytes"


def test_a_query_about_something_absent_says_nothing_matches(served):
    # tracks, incidents and summaries alike: every summary says "people", "seconds" and some colours
    for query in ("car", "a red car", "dog", "truck", "a black dog", "people fighting"):
        answer = served.client.get("/api/search", params={"q": query}).json()
        assert answer["hits"] == [] and answer["message"].startswith("nothing matches"), (query, answer)


def test_people_and_other_everyday_words_for_a_class_find_its_tracks(served):
    for query in ("people", "someone", "pedestrians"):
        hits = served.client.get("/api/search", params={"q": query, "kind": "track", "limit": 50}).json()["hits"]
        assert len(hits) >= len(PEOPLE_ON_SCREEN) and {h["class_name"] for h in hits} == {"person"}, query
    assert served.client.get("/api/search", params={"q": "lorry"}).json()["hits"] == []  # no truck in the clips


def test_an_event_query_finds_the_incident_by_meaning_at_its_moment(served):
    for query in ("loitering near the table", "someone hanging around"):
        hits = served.client.get("/api/search", params={"q": query}).json()["hits"]
        assert hits and hits[0]["kind"] == "incident", (query, hits[:2])
        first = hits[0]
        assert first["incident_type"] == "loitering" and first["partition_key"] == served.partitions["person"]
        # at the moment of one of the people who stand at the table for 20 s or more
        assert any(start - 2 <= first["start_s"] <= first["end_s"] <= end + 2 for start, end in PEOPLE_ON_SCREEN)
        assert first["track_ids"] and first["thumbnail_url"] == first["scene_url"]
        _assert_a_scene(served.client.get(first["scene_url"]))


def _assert_a_scene(response) -> None:
    """The whole frame of the person clip (768x432, served at 640 wide) with the incident's track boxed in orange."""
    import cv2
    import numpy as np

    assert response.status_code == 200 and response.headers["content-type"] == "image/jpeg"
    image = cv2.imdecode(np.frombuffer(response.content, np.uint8), cv2.IMREAD_COLOR)
    assert image.shape[:2] == (360, 640)
    blue, green, red = (image[..., i].astype(int) for i in range(3))
    boxed = (blue < 90) & (abs(green - 140) < 40) & (red > 200)
    assert boxed.sum() > 300, boxed.sum()  # the box's four sides, a few pixels thick


def test_a_summary_is_found_by_its_words_and_ranks_below_the_tracks_it_sums_up(served):
    hits = served.client.get("/api/search", params={"q": "bottles", "limit": 50}).json()["hits"]
    kinds = [h["kind"] for h in hits]
    assert "summary" in kinds and kinds.index("summary") > kinds.index("track")
    summary = hits[kinds.index("summary")]
    assert summary["partition_key"] == served.partitions["kitchen"] and "bottles tracked" in summary["text"]
    only = served.client.get("/api/search", params={"q": "bottles", "kind": "summary"}).json()["hits"]
    assert only and {h["kind"] for h in only} == {"summary"}


def test_a_question_is_answered_from_the_rows_with_a_citation_in_every_sentence(served):
    import re

    found = served.client.get("/api/ask", params={"q": "was anyone hanging around?"}).json()
    assert found["generator"] == "template" and found["citations"]
    sentences = re.split(r"(?<=\.)\s+", found["answer"])
    assert all(re.search(r"\[\d+\]\.$", sentence) for sentence in sentences), found["answer"]
    first = found["citations"][0]
    assert first["partition_key"] == served.partitions["person"] and found["answer"].startswith("Loitering")
    assert served.client.get(first["clip_url"].split("#")[0], headers={"Range": "bytes=0-9"}).status_code == 206
    nothing = served.client.get("/api/ask", params={"q": "where is the red car?"}).json()
    assert nothing["answer"] == "Nothing in the footage matches that question." and nothing["citations"] == []


def test_reelgraph_ask_answers_on_the_command_line(served):
    from tests.helpers import run_cli

    output = run_cli("ask", "was anyone hanging around?", check=True).stdout
    assert output.startswith("Loitering") and "[1] one-by-one-person-detection.mp4" in output


def test_reelgraph_search_asks_the_running_service_and_finds_what_it_finds_alone(served):
    import json

    from tests.helpers import run_cli

    through = run_cli("-v", "search", "bottle", "--json", env_extra={"REELGRAPH_SERVICE_URL": served.url},
                      check=True)
    assert f"searched through the service at {served.url}" in through.stderr  # not the silent fallback
    alone = run_cli("search", "bottle", "--json", "--local", check=True)
    assert json.loads(through.stdout) == json.loads(alone.stdout) != []
    refused = run_cli("search", "bottle", "--limit", "0", env_extra={"REELGRAPH_SERVICE_URL": served.url})
    assert refused.returncode != 0 and "limit" in refused.stderr and "Traceback" not in refused.stderr


def test_bad_parameters_get_a_clear_422_without_a_stack_trace(served):
    cases = [({"q": "person", "limit": 0}, "limit"), ({"q": "x" * 301}, "q"), ({}, "q"),
             ({"q": "person", "kind": "everything"}, "kind"),
             ({"q": "person", "since": "yesterday"}, "since"), ({"q": "   "}, "blank"),
             ({"q": "\x00"}, "q: contains a control character"),
             ({"q": "bottle", "camera": "kitchen\x00"}, "camera: contains a control character"),
             ({"q": "bottle", "video": "a\x1bb"}, "video: contains a control character")]
    for params, named in cases:
        answer = served.client.get("/api/search", params=params)
        assert answer.status_code == 422, params
        assert named in answer.json()["detail"] and "Traceback" not in answer.text, answer.text
    for path in ("/api/videos/x%00y", "/api/videos/x%00y/thumbnail.jpg", "/api/ask?q=%00"):
        answer = served.client.get(path)
        assert answer.status_code == 422 and "control character" in answer.json()["detail"], (path, answer.text)


def test_a_thumbnail_is_revalidated_by_its_digest_not_cached_for_a_day(served):
    [bottle] = served.client.get("/api/search", params={"q": "bottle", "limit": 1}).json()["hits"]
    first = served.client.get(bottle["thumbnail_url"])
    assert first.status_code == 200 and first.headers["cache-control"] == "private, no-cache"
    etag = first.headers["etag"]
    again = served.client.get(bottle["thumbnail_url"], headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
    changed = served.client.get(bottle["thumbnail_url"], headers={"If-None-Match": '"an-older-picture"'})
    assert changed.status_code == 200 and changed.content == first.content


def test_a_burst_of_questions_gets_429_beyond_the_answer_slots_while_health_answers_at_once(served):
    from concurrent.futures import ThreadPoolExecutor

    def ask(_):
        with httpx.Client(base_url=served.url, timeout=120) as client:
            answer = client.get("/api/ask", params={"q": "was anyone hanging around?"})
            return answer.status_code, answer.headers.get("retry-after")

    with ThreadPoolExecutor(50) as pool:
        asked = [pool.submit(ask, i) for i in range(100)]
        health_times, in_flight = [], []
        for _ in range(5):
            started = time.monotonic()
            assert served.client.get("/api/health").status_code == 200
            health_times.append(time.monotonic() - started)
            in_flight.append(sum(not f.done() for f in asked))
        answers = [future.result() for future in asked]
    codes = [code for code, _ in answers]
    assert max(health_times) < 1.0, health_times
    assert any(in_flight), in_flight  # health was asked while the burst was still being answered
    assert set(codes) == {200, 429} and codes.count(200) >= 2, codes
    assert {retry for code, retry in answers if code == 429} == {"5"}  # each refusal says when to come back
    busy = served.client.get("/api/ask", params={"q": "anyone?"})
    assert busy.status_code == 200  # the slots are free again once the burst is answered


def test_exactly_two_questions_are_answered_at_once_and_the_rest_get_429_with_retry_after(served, pg_dsn):
    """Six questions at once while the videos are locked: two hold the answer slots, waiting on the lock until
    the service's lock timeout gives them 503; the other four are refused at once with 429 and Retry-After."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    import psycopg

    start = threading.Barrier(6)

    def ask(_):
        start.wait()
        began = time.monotonic()
        with httpx.Client(base_url=served.url, timeout=60) as client:
            answer = client.get("/api/ask", params={"q": "a person carrying a bottle"})
        return answer.status_code, answer.headers.get("retry-after"), time.monotonic() - began

    with psycopg.connect(pg_dsn) as holder:
        holder.execute("LOCK TABLE videos IN ACCESS EXCLUSIVE MODE")
        with ThreadPoolExecutor(6) as pool:
            outcomes = list(pool.map(ask, range(6)))
        holder.rollback()
    assert sorted(code for code, _, _ in outcomes) == [429] * 4 + [503] * 2, outcomes
    assert all(retry == "5" and seconds < 1.5 for code, retry, seconds in outcomes if code == 429), outcomes
    assert served.client.get("/api/ask", params={"q": "anyone?"}).status_code == 200  # the slots are free again


def test_a_request_waiting_on_a_locked_table_gets_503_within_the_lock_timeout(served, pg_dsn):
    import psycopg

    with psycopg.connect(pg_dsn) as holder:
        holder.execute("LOCK TABLE videos IN ACCESS EXCLUSIVE MODE")  # as a migration rebuilding it would
        started = time.monotonic()
        answer = served.client.get("/api/videos")
        waited = time.monotonic() - started
        holder.rollback()
    assert answer.status_code == 503 and "busy" in answer.json()["detail"], answer.text
    assert waited < 2.0 + 3.0, waited  # the service's lock_timeout is 2 s
    assert served.client.get("/api/videos").status_code == 200


def test_searches_beyond_the_eight_slots_get_429_at_once_while_eight_wait_on_a_locked_table(served, pg_dsn):
    """Twelve searches at once while the tracks are locked: eight hold the search slots, waiting on the lock
    until the service's lock timeout gives them 503; the other four are refused at once with 429."""
    import threading

    import psycopg

    start = threading.Barrier(12)

    def search(_):
        start.wait()
        began = time.monotonic()
        with httpx.Client(base_url=served.url, timeout=60) as client:
            answer = client.get("/api/search", params={"q": "bottle", "kind": "track"})
        return answer.status_code, time.monotonic() - began

    from concurrent.futures import ThreadPoolExecutor

    with psycopg.connect(pg_dsn) as holder:
        holder.execute("LOCK TABLE track_attributes IN ACCESS EXCLUSIVE MODE")
        with ThreadPoolExecutor(12) as pool:
            outcomes = list(pool.map(search, range(12)))
        holder.rollback()
    codes = sorted(code for code, _ in outcomes)
    assert codes == [429] * 4 + [503] * 8, outcomes
    assert all(seconds < 1.5 for code, seconds in outcomes if code == 429), outcomes  # refused, not queued
    assert served.client.get("/api/search", params={"q": "bottle"}).status_code == 200  # slots free again


def test_errors_name_the_video_never_where_the_store_keeps_it(served, pg_dsn, tmp_path):
    from datetime import datetime, timezone

    from video_analysis.runtime.object_store import ObjectInfo
    from video_analysis.store import catalog
    from video_analysis.store.db import session

    # a registered video whose file has gone from the inbox (deleted by hand, say)
    gone = ObjectInfo(key="gone/deleted-by-hand.mp4", version="v1", size=1, source="local",
                      last_modified=datetime(2026, 1, 1, tzinfo=timezone.utc))
    with session(pg_dsn) as conn:
        catalog.register(conn, gone)
    try:
        answer = served.client.get(f"/api/videos/{gone.partition_key}/video")
    finally:
        with session(pg_dsn) as conn:
            conn.execute("DELETE FROM videos WHERE partition_key = %s", (gone.partition_key,))
    assert answer.status_code == 404 and gone.partition_key in answer.json()["detail"], answer.text
    temporary = str(tmp_path.parent)  # every test folder of this session, the inbox among them
    assert temporary not in answer.text and "inbox" not in answer.text, answer.text


def test_the_catalogue_and_one_video_with_summary_incidents_and_tracks(served):
    videos = {v["object_key"]: v for v in served.client.get("/api/videos").json()["videos"]}
    assert set(videos) == {KITCHEN_KEY, "one-by-one-person-detection.mp4"}
    assert all(v["status"] == "ready" for v in videos.values())
    person = served.client.get(videos["one-by-one-person-detection.mp4"]["url"]).json()
    assert person["summary"]["text"] and isinstance(person["summary"]["incidents"], list)
    people = [t for t in person["tracks"] if t["class_name"] == "person"]
    assert len(people) >= 6 and all(t["thumbnail_url"].endswith("thumbnail.jpg") for t in people)
    assert served.client.get("/api/videos/nothing-here.mp4@abc").status_code == 404


def test_more_like_this_finds_other_tracks_of_the_same_kind(served):
    [bottle] = served.client.get("/api/search", params={"q": "bottle", "limit": 1}).json()["hits"]
    similar = served.client.get(bottle["similar_url"]).json()["hits"]
    assert similar and all((h["partition_key"], h["track_id"]) != (bottle["partition_key"], bottle["track_id"])
                           for h in similar)
    assert similar[0]["class_name"] == "bottle"  # the nearest descriptions are of the other bottles


def test_the_api_is_described_by_openapi(served):
    spec = served.client.get("/openapi.json").json()
    assert {"/api/search", "/api/videos", "/api/health"} <= set(spec["paths"])
    assert served.client.get("/docs").status_code == 200


@pytest.mark.parametrize("stop_signal", ["SIGTERM", "SIGINT"])
def test_serve_stops_within_30_s_on_a_signal_sent_to_it_alone_mid_request(served, tmp_path, pg_dsn, stop_signal):
    """A signal to the pid alone (as systemd, docker stop or kill send it) while a search is in flight: the
    search is held on a locked table until the signal has been sent, so it is surely in flight; it is
    answered, then the service exits."""
    import signal
    import threading

    import psycopg

    server, url = start_service(dict(os.environ), tmp_path / "serve.log")
    result = {}

    def search():
        try:
            result["status"] = httpx.get(url + "/api/search", params={"q": "bottle", "kind": "track"},
                                         timeout=60).status_code
        except httpx.TransportError as exc:
            result["error"] = exc

    with psycopg.connect(pg_dsn, autocommit=True) as watcher, psycopg.connect(pg_dsn) as holder:
        holder.execute("LOCK TABLE track_attributes IN ACCESS EXCLUSIVE MODE")
        searching = threading.Thread(target=search)
        searching.start()
        wait_for(lambda: watcher.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND pid <> pg_backend_pid() "
            "AND query ILIKE '%track_attributes%'").fetchone()[0], 30, "the search waiting on the table",
            interval_s=0.02)
        sent = getattr(signal, stop_signal)
        os.kill(server.pid, sent)  # the pid alone: not its group, as systemd or kill does
        started = time.monotonic()
        time.sleep(0.2)  # (the signal handled before the lock goes: the search is then surely caught mid-way)
        holder.rollback()
    # uvicorn shuts down (the request in flight is answered), then exits as the signal asked
    assert server.wait(30) in (0, -sent)
    searching.join(60)
    print(f"reelgraph serve stopped {time.monotonic() - started:.1f} s after {stop_signal}: {result}")
    assert result.get("status") == 200, result  # answered, not cut off
    with pytest.raises(httpx.TransportError):
        httpx.get(url + "/api/health", timeout=5)


# -- the page, in a real browser ----------------------------------------------------------------
@pytest.fixture(scope="module")
def browser():
    driver = headless_chrome()
    yield driver
    driver.quit()


# -- access beyond loopback ------------------------------------------------------------------------
TOKEN = "reviewer-token-0123456789abcdef"


def test_a_service_bound_beyond_loopback_refuses_to_start_without_a_token():
    import subprocess

    from tests.helpers import REELGRAPH, free_port

    env = {k: v for k, v in os.environ.items() if not k.startswith("REELGRAPH_SERVICE_TOKEN")}
    for extra, says in (({}, "REELGRAPH_SERVICE_TOKENS"), ({"REELGRAPH_SERVICE_TOKENS": "short"}, "16 characters")):
        started = subprocess.run([str(REELGRAPH), "serve", "--host", "0.0.0.0", "--port", str(free_port())],
                                 env={**env, **extra}, capture_output=True, text=True, timeout=120)
        assert started.returncode == 2 and says in started.stderr, started.stderr[-2000:]
        assert "Traceback" not in started.stderr


@pytest.fixture(scope="module")
def guarded(served, tmp_path_factory):
    """The same store served on every address, with a token."""
    env = {**os.environ, "REELGRAPH_SERVICE_TOKENS": f"another-token-that-is-long-enough,{TOKEN}"}
    server, url = start_service(env, tmp_path_factory.mktemp("guarded") / "serve.log", host="0.0.0.0", token=TOKEN)
    try:
        yield url
    finally:
        server.terminate()
        server.wait(30)


def test_beyond_loopback_every_request_needs_the_token_and_a_known_host(guarded, served):
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    [bottle] = served.client.get("/api/search", params={"q": "bottle", "limit": 1}).json()["hits"]
    for path in ("/api/search?q=bottle", "/api/videos", f"/api/videos/{bottle['partition_key']}",
                 bottle["thumbnail_url"], f"/api/videos/{bottle['partition_key']}/video", "/api/cameras",
                 "/api/ask?q=anyone", "/openapi.json"):
        refused = httpx.get(guarded + path)
        assert refused.status_code == 401 and refused.headers["www-authenticate"].startswith("Bearer"), path
        wrong = httpx.get(guarded + path, headers={"Authorization": "Bearer not-the-token-at-all-sorry"})
        assert wrong.status_code == 401, path
        assert httpx.get(guarded + path, headers=bearer, timeout=60).status_code in (200, 206), path
    # health tells a probe that it runs, and nothing about the footage or the database
    assert httpx.get(guarded + "/api/health").json() == {"status": "ok"}
    assert httpx.get(guarded + "/api/health", headers=bearer).json()["videos"] == 2
    # a name this service was not told about (DNS rebinding) gets 400, token or not
    rebound = httpx.get(guarded + "/api/search?q=bottle", headers={**bearer, "Host": "attacker.example:8000"})
    assert rebound.status_code == 400
    assert httpx.get(guarded + "/api/health", headers={**bearer, "Host": "localhost"}).status_code == 200
    # the loopback service answers loopback names only, as it runs open
    assert served.client.get("/api/health", headers={"Host": "attacker.example"}).status_code == 400


def test_the_sign_in_cookie_is_secure_behind_an_https_proxy_and_not_over_plain_http(guarded):
    """The cookie carries Secure when the request came through a trusted proxy over HTTPS (X-Forwarded-Proto
    from REELGRAPH_SERVICE_FORWARDED_ALLOW_IPS, loopback by default), so a browser never sends it in clear."""
    behind_https = httpx.post(guarded + "/api/session", json={"token": TOKEN},
                              headers={"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.7"})
    plain = httpx.post(guarded + "/api/session", json={"token": TOKEN})
    assert behind_https.status_code == plain.status_code == 204
    secure = behind_https.headers["set-cookie"].lower()
    assert "; secure" in secure and "httponly" in secure and "samesite=strict" in secure
    assert "; secure" not in plain.headers["set-cookie"].lower()


def test_reelgraph_search_sends_its_token_to_the_service_and_says_when_it_is_refused(guarded):
    from tests.helpers import run_cli

    sent = run_cli("-v", "search", "bottle", "--json",
                   env_extra={"REELGRAPH_SERVICE_URL": guarded, "REELGRAPH_SERVICE_TOKEN": TOKEN}, check=True)
    assert f"searched through the service at {guarded}" in sent.stderr and json.loads(sent.stdout)
    refused = run_cli("-v", "search", "bottle", "--json",
                      env_extra={"REELGRAPH_SERVICE_URL": guarded, "REELGRAPH_SERVICE_TOKEN": "not-the-token-sorry"},
                      check=True)
    assert "needs a token (REELGRAPH_SERVICE_TOKEN): searching here" in refused.stderr
    assert json.loads(refused.stdout) == json.loads(sent.stdout)  # the same hits, found here


def test_the_page_signs_in_with_a_token_and_searches(guarded, browser):
    from selenium.webdriver.common.by import By

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    browser.delete_all_cookies()
    browser.get(guarded + "/")
    token = wait_for(lambda: browser.find_elements(By.ID, "token"), 30, "the sign-in form", interval_s=0.2)[0]
    token.send_keys("a-wrong-token-of-enough-length")
    browser.find_element(By.CSS_SELECTOR, "#sign-in button").click()
    assert wait_for(lambda: browser.find_element(By.ID, "sign-in-problem").text, 30, "the refusal", interval_s=0.2)
    browser.save_screenshot(str(ARTIFACTS / "sign-in-refused.png"))
    token = browser.find_element(By.ID, "token")
    token.clear()
    token.send_keys(TOKEN)
    browser.find_element(By.CSS_SELECTOR, "#sign-in button").click()
    wait_for(lambda: not browser.find_elements(By.ID, "sign-in") and browser.find_elements(By.ID, "q"), 30,
             "the page signed in", interval_s=0.2)
    [cookie] = [c for c in browser.get_cookies() if c["name"] == "reelgraph_session"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and TOKEN not in cookie["value"]
    browser.find_element(By.ID, "q").send_keys("bottle")
    browser.find_element(By.CSS_SELECTOR, "#search button[type=submit]").click()
    cards = wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "#results .card"), 60, "result cards",
                     interval_s=0.2)
    assert "bottle" in cards[0].find_element(By.TAG_NAME, "h3").text
    assert wait_for(lambda: browser.execute_script(
        "return [...document.querySelectorAll('#results img')].every(i => i.complete && i.naturalWidth > 0)"),
        30, "thumbnails loaded with the cookie", interval_s=0.2)
    browser.save_screenshot(str(ARTIFACTS / "signed-in-search.png"))
    browser.delete_all_cookies()


def test_search_bottle_then_click_plays_the_video_at_the_hit(served, browser):
    from selenium.webdriver.common.by import By

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    browser.get(served.url + "/")
    query = browser.find_element(By.ID, "q")
    query.send_keys("bottle")
    browser.find_element(By.CSS_SELECTOR, "#search button[type=submit]").click()
    cards = wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "#results .card"), 60, "result cards",
                     interval_s=0.2)
    first = cards[0]
    assert first.get_attribute("data-partition") == served.partitions["kitchen"]
    assert first.find_element(By.CSS_SELECTOR, ".score").text == "strong match"  # not a fused score
    assert "bottle" in first.find_element(By.TAG_NAME, "h3").text
    assert wait_for(lambda: browser.execute_script(
        "return [...document.querySelectorAll('#results img')].every(i => i.complete && i.naturalWidth > 0)"),
        30, "thumbnails loaded", interval_s=0.2)
    browser.save_screenshot(str(ARTIFACTS / "search-bottle.png"))

    # The hit that starts latest shows the seek best (the first one may start at 0).
    latest = max(cards, key=lambda card: float(card.get_attribute("data-start")))
    start = float(latest.get_attribute("data-start"))
    assert start > 5
    latest.click()
    # The page seeks once the video's metadata is in: the playhead lands on the hit's start.
    position = wait_for(lambda: browser.execute_script(
        "const v = document.getElementById('video');"
        "return v.readyState >= 1 && v.currentTime > 0 ? v.currentTime : null;"), 60, "the video at the hit",
        interval_s=0.2)
    assert abs(position - start) < 1.0, (position, start)
    assert not browser.execute_script("return document.getElementById('video').error")
    # it plays: frames are decoded and the playhead moves on from the hit
    later = wait_for(lambda: browser.execute_script(
        "const v = document.getElementById('video');"
        "return !v.paused && v.currentTime > arguments[0] + 0.5 && v.videoWidth > 0 ? v.currentTime : null;",
        position), 30, "the video playing on", interval_s=0.2)
    assert later > position
    browser.save_screenshot(str(ARTIFACTS / "playing-bottle.png"))
    link = browser.find_element(By.ID, "player-dagster")
    assert link.text == "Open this partition in Dagster"
    assert link.get_attribute("href") == (f"{os.environ.get('REELGRAPH_DAGSTER_URL', 'http://127.0.0.1:3000')}"
                                          f"/assets/tracks?{urlencode({'partition': served.partitions['kitchen']})}")


def test_a_query_about_something_absent_shows_nothing_matches_in_the_page(served, browser):
    from selenium.webdriver.common.by import By

    browser.get(served.url + "/?q=car")
    status = wait_for(lambda: (browser.find_element(By.ID, "status").text or "").startswith("nothing matches")
                   and browser.find_element(By.ID, "status").text, 60, "the nothing-matches message", interval_s=0.2)
    assert "nothing matches" in status
    assert browser.find_elements(By.CSS_SELECTOR, "#results .card") == []


def test_more_like_this_in_the_page_lists_other_tracks_of_the_same_kind(served, browser):
    from selenium.webdriver.common.by import By

    browser.get(served.url + "/?q=bottle")
    first = wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "#results .card"), 60, "result cards",
                     interval_s=0.2)[0]
    source = (first.get_attribute("data-partition"), first.get_attribute("data-track"))
    first.find_element(By.CSS_SELECTOR, "button.more").click()
    status = wait_for(lambda: (text := browser.find_element(By.ID, "status").text).startswith("more like") and text,
                      60, "the similar tracks", interval_s=0.2)
    assert status.startswith("more like bottle #") and not status.endswith(": 0 results"), status
    cards = browser.find_elements(By.CSS_SELECTOR, "#results .card")
    assert cards and all((c.get_attribute("data-partition"), c.get_attribute("data-track")) != source for c in cards)
    assert "bottle" in cards[0].find_element(By.TAG_NAME, "h3").text
    browser.save_screenshot(str(ARTIFACTS / "more-like-bottle.png"))


def test_an_incident_card_opens_the_video_with_its_incidents_and_each_one_seeks(served, browser):
    from selenium.webdriver.common.by import By

    browser.get(served.url + "/?q=someone+hanging+around")
    card = wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "#results .card.incident"), 60,
                    "an incident card", interval_s=0.2)[0]
    assert "loitering" in card.find_element(By.TAG_NAME, "h3").text
    scene = card.find_element(By.TAG_NAME, "img")
    assert "/incidents/" in scene.get_attribute("src")  # the scene, not one person's crop
    assert wait_for(lambda: browser.execute_script("return arguments[0].complete && arguments[0].naturalWidth", scene),
                    30, "the scene loaded", interval_s=0.2) == 640
    browser.save_screenshot(str(ARTIFACTS / "incident-card-scene.png"))
    card.click()
    incidents = wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "#player-incidents button"), 60,
                         "the video's incident list", interval_s=0.2)
    loitering = [b for b in incidents if b.text.startswith("loitering at ")]
    assert loitering, [b.text for b in incidents]
    # each says how sure the rule is
    assert all(re.search(r" \(confidence \d{1,3}%\)$", b.text) for b in loitering), [b.text for b in loitering]
    wait_for(lambda: browser.execute_script("return document.getElementById('video').readyState >= 1"), 60,
             "the video's metadata", interval_s=0.2)
    browser.execute_script("document.getElementById('video').currentTime = 0")
    target = float(loitering[0].get_attribute("data-start"))
    assert target > 5  # people stand at the table well into the clip
    loitering[0].click()
    position = wait_for(lambda: browser.execute_script(
        "const v = document.getElementById('video'); return v.currentTime > 0 ? v.currentTime : null;"), 30,
        "the seek to the incident", interval_s=0.2)
    assert abs(position - target) < 1.0, (position, target)
    browser.save_screenshot(str(ARTIFACTS / "incident-loitering.png"))


def test_footage_removed_by_retention_leaves_its_facts_found_and_the_page_says_it_is_gone(served, browser, pg_dsn):
    """Last in this module: it removes the person clip's footage, as a retention sweep does."""
    from selenium.webdriver.common.by import By

    from resources import ObjectStoreResource
    from video_analysis.store import db
    from video_analysis.store.retention_apply import expire_footage
    from video_analysis.store.retention_plan import plan_retention
    from video_analysis.store.retention_policy import parse_retention

    person = served.partitions["person"]
    with db.connect(pg_dsn, autocommit=True) as conn:
        [aged] = [a for a in plan_retention(
            conn, parse_retention({"retention": {"uploads": {"retain_days": 1, "retain_incident_days": 2}}}),
            now=datetime.now(timezone.utc) + timedelta(days=10)).to_expire
            if a.partition_key == person]
        assert expire_footage(conn, ObjectStoreResource().store(), aged) > 0

    details = served.client.get(f"/api/videos/{person}").json()
    assert details["footage"] == "expired" and details["video_url"] is None
    assert details["footage_note"].startswith("the footage was removed by retention on ")
    assert details["summary"]["text"] and details["tracks"]  # the facts remain
    gone = served.client.get(f"/api/videos/{person}/video")
    assert gone.status_code == 410 and "removed by retention" in gone.json()["detail"]
    hits = [h for h in served.client.get("/api/search", params={"q": "person"}).json()["hits"]
            if h["partition_key"] == person]
    assert hits and all(h["footage"] == "expired" and h["clip_url"] is None for h in hits)
    assert served.client.get(hits[0]["thumbnail_url"]).status_code == 200  # its thumbnail still shows

    browser.get(served.url + "/?q=person")
    cards = wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, f"#results .card[data-partition='{person}']"),
                     60, "the expired video's cards", interval_s=0.2)
    assert "footage removed" in cards[0].text
    cards[0].click()
    note = wait_for(lambda: (node := browser.find_element(By.ID, "player-gone")).is_displayed() and node.text, 30,
                    "the note where the player was", interval_s=0.2)
    assert note.startswith("the footage was removed by retention on ")
    assert not browser.find_element(By.ID, "video").is_displayed()
    assert wait_for(lambda: browser.find_element(By.ID, "player-summary").text, 30, "the summary shown",
                    interval_s=0.2)
    browser.save_screenshot(str(ARTIFACTS / "footage-expired.png"))

    # the cameras page: storage per camera, day and tier, with the free space and days left
    storage = served.client.get("/api/storage", params={"days": 366}).json()  # the kitchen clip is of 2026-01-15
    assert {v["tier"] for v in storage["volumes"]} == {"hot", "cold"} and storage["bytes_per_day"] > 0
    tiers = {(d["camera"], d["tier"]) for d in storage["days"]}
    assert ("(uploads)", "expired") in tiers and ("kitchen", "hot") in tiers
    browser.get(served.url + "/cameras")
    rows = wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "#storage-days tbody tr"), 30,
                    "the storage table", interval_s=0.2)
    assert any("(uploads)" in r.text and "removed" in r.text for r in rows), [r.text for r in rows]
    volumes = browser.find_element(By.ID, "storage-volumes").text
    assert "hot tier:" in volumes and "left at this rate" in volumes
    browser.save_screenshot(str(ARTIFACTS / "cameras-storage.png"))
