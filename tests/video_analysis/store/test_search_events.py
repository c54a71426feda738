"""Incidents and summaries found by meaning and by words, over rows written as the summaries stage writes them."""

import json

import pytest

from video_analysis.search import SearchFilters, search_events

MODEL = "all-minilm-l6-v2"


@pytest.fixture(scope="module")
def embedder():
    from resources import ModelRegistryResource

    return ModelRegistryResource(profile="offline").load("text_embedder")[1]


def _video(conn, embedder, partition_key: str, camera: str, summary: str, incidents: list[dict]) -> None:
    from pgvector.psycopg import register_vector

    register_vector(conn)
    conn.execute("INSERT INTO videos (partition_key, source, object_key, version, size_bytes, last_modified, camera) "
                 "VALUES (%s, 'local', %s, '1', 1, now(), %s)", (partition_key, partition_key.split("@")[0], camera))
    conn.execute("INSERT INTO summaries (partition_key, safety_score, incident_count, incidents, summary, facts, "
                 "generator) VALUES (%s, 90, %s, %s, %s, '{}', 'template')",
                 (partition_key, len(incidents), json.dumps(incidents), summary))
    [vector] = embedder.embed([summary])
    conn.execute("INSERT INTO embeddings (partition_key, kind, content, model_name, model_version, dim, embedding) "
                 "VALUES (%s, 'summary_text', %s, %s, '1', %s, %s)",
                 (partition_key, summary, MODEL, len(vector), vector))


def _incident(kind: str, start: float, detail: str) -> dict:
    return {"type": kind, "start_t": start, "end_t": start + 30, "track_ids": [1], "detail": detail}


@pytest.fixture
def events(db, embedder):
    _video(db, embedder, "door.mp4@1", "door",
           "600 seconds of camera door: 3 people tracked. 1 incident (1 running): running at 10-40 s. "
           "Safety score 90/100.", [_incident("running", 10, "moved at 3.1 body heights/s")])
    _video(db, embedder, "yard.mp4@1", "yard",
           "600 seconds of camera yard: 2 people tracked. 1 incident (1 loitering): loitering at 5-35 s. "
           "Safety score 90/100.", [_incident("loitering", 5, "stayed within 1.2 body heights for 34 s")])
    _video(db, embedder, "shop.mp4@1", "shop", "600 seconds of camera shop: 4 bottles tracked. No incidents. "
           "Safety score 100/100.", [])
    _video(db, embedder, "gate.mp4@1", "gate",
           "600 seconds of camera gate: 6 people tracked. 2 incidents (1 running, 1 crowding). Safety score 75/100.",
           [_incident("running", 50, "moved at 2.5 body heights/s"), _incident("crowding", 60, "7 people at once")])
    db.execute("ANALYZE videos, summaries, tracks")
    return db


def _found(conn, embedder, query: str, by_meaning: bool = True, summary_floor: float | None = 0.3,
           **filters) -> list[tuple[str, str, str | None]]:
    hits = search_events(conn, query, embedder, MODEL, SearchFilters(**filters), limit=10,
                         min_incident_similarity=0.4 if by_meaning else 1.01, min_summary_similarity=summary_floor)
    return [(hit.kind, hit.partition_key, hit.incident_type) for hit in hits]


def test_an_incident_is_found_by_the_words_of_its_type_and_detail_even_as_one_phrase(events, embedder):
    def incidents(query: str) -> list[tuple]:  # by words only: no incident type is near enough in meaning
        return [hit for hit in _found(events, embedder, query, by_meaning=False) if hit[0] == "incident"]

    assert sorted(incidents("body")) == [("incident", "door.mp4@1", "running"), ("incident", "gate.mp4@1", "running"),
                                         ("incident", "yard.mp4@1", "loitering")]
    assert incidents("heights for 34") == [("incident", "yard.mp4@1", "loitering")]
    # a phrase from the type into the detail, as search reads an incident ("running moved at ...")
    assert sorted(incidents('"running moved"')) == [("incident", "door.mp4@1", "running"),
                                                    ("incident", "gate.mp4@1", "running")]
    assert incidents('"moved running"') == []
    # all the words in one incident: gate's summary holds both, in two incidents
    assert incidents("running people") == []
    assert incidents("crowding people") == [("incident", "gate.mp4@1", "crowding")]
    # a word excluded: gate's running incident lacks it, although its crowding incident has it
    assert sorted(incidents("running -people")) == [("incident", "door.mp4@1", "running"),
                                                    ("incident", "gate.mp4@1", "running")]


def test_an_incident_is_found_by_what_its_type_means_and_only_that_type(events, embedder):
    found = _found(events, embedder, "someone hanging around")
    incidents = [hit for hit in found if hit[0] == "incident"]
    assert incidents == [("incident", "yard.mp4@1", "loitering")]


def test_a_camera_s_summaries_are_found_by_meaning_among_its_videos_only(events, embedder):
    everywhere = {hit for hit in _found(events, embedder, "bottles on a shelf") if hit[0] == "summary"}
    assert ("summary", "shop.mp4@1", None) in everywhere
    # found among the nearest without the filters, then kept for passing them
    assert {hit for hit in _found(events, embedder, "bottles on a shelf", camera="shop")
            if hit[0] == "summary"} == {("summary", "shop.mp4@1", None)}
    assert _found(events, embedder, "bottles on a shelf", camera="door") == []
    assert _found(events, embedder, "bottles on a shelf", camera="no such camera") == []


def test_a_camera_s_summary_is_found_when_many_others_are_as_near(db, embedder, monkeypatch):
    """More summaries within the floor than the pool holds: the nearest without the filters may all be other
    cameras', so the filtered ones are searched for themselves (listed, or through the graph)."""
    from video_analysis.search import events as search_module
    from video_analysis.search import filters

    narrow = search_module.narrow

    for n in range(24):
        _video(db, embedder, f"aisle{n}.mp4@1", f"aisle{n}", f"600 seconds of camera aisle{n}: {n + 2} bottles "
               "tracked. No incidents. Safety score 100/100.", [])
    _video(db, embedder, "shop.mp4@1", "shop", "600 seconds of camera shop: 40 cars tracked. No incidents. "
           "Safety score 100/100.", [])
    db.execute("ANALYZE videos, summaries, tracks")
    anywhere = _found(db, embedder, "bottles tracked")
    assert len(anywhere) == 10 and "shop.mp4@1" not in {hit[1] for hit in anywhere}
    narrowed = []
    monkeypatch.setattr(search_module, "narrow", lambda *args: narrowed.append(args) or narrow(*args))
    for listed in (filters.LISTED_VIDEOS, 0):  # the camera's videos listed, or not
        monkeypatch.setattr(filters, "LISTED_VIDEOS", listed)
        # no floor: all 25 summaries are within it, the pool of 20 nearest is full, and shop's is not among them
        assert _found(db, embedder, "bottles tracked", summary_floor=None, camera="shop") == [
            ("summary", "shop.mp4@1", None)], listed
    assert len(narrowed) == 2  # the filtered search ran, each time
