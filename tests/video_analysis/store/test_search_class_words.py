"""Everyday words for a class ("lorry", "van") find its tracks, over rows written as the stages write them."""

import pytest

from video_analysis.search import SearchFilters, search

FLOOR = 0.3  # REELGRAPH_SEARCH_MIN_SIMILARITY's default: "lorry" alone is not that close to a truck's description


@pytest.fixture(scope="module")
def text_model():
    from resources import ModelRegistryResource

    return ModelRegistryResource(profile="offline").load("text_embedder")


@pytest.fixture
def yard(db, pg_dsn, text_model):
    """A yard camera's video with a truck, a car and a person: tracks, attributes and text vectors."""
    from video_analysis.store import db as store
    from video_analysis.store import vector_index
    from video_analysis.store.outputs import ModelStamp, replace_attributes, replace_embeddings, replace_tracks
    from video_analysis.vision.attributes import TrackAttributes, describe
    from video_analysis.vision.tracking import TrackSummary

    model, embedder = text_model
    key = "cameras/yard/2026-02-01T06-00-00.mp4@1"
    db.execute("INSERT INTO videos (partition_key, source, object_key, version, size_bytes, last_modified, camera) "
               "VALUES (%s, 'local', %s, '1', 1, now(), 'yard')", (key, key.split("@")[0]))
    classes = {7: "truck", 2: "car", 0: "person"}
    tracks = [TrackSummary(track_id=i, class_id=c, first_t=0.0, last_t=12.0, frames_seen=30, mean_confidence=0.9,
                           path=[[0.0, 10.0, 10.0], [12.0, 200.0, 10.0]], best_frame=0, best_box=(0, 0, 50, 40),
                           max_step_px=5.0) for i, c in ((1, 7), (2, 2), (3, 0))]
    found = [TrackAttributes(1, "truck", None, None, "white", 0.4, 16.0, 0.4, "moving", "east", 190.0, 12.0),
             TrackAttributes(2, "car", None, None, "red", 0.3, 0.0, 0.0, "stationary", None, 0.0, 12.0),
             TrackAttributes(3, "person", "black", "blue", None, 0.5, 16.0, 0.3, "walking", "east", 190.0, 12.0)]
    found = [TrackAttributes(**{**a.__dict__, "description": describe(a)}) for a in found]
    with store.session(pg_dsn) as conn:
        replace_tracks(conn, key, tracks, classes, {}, ModelStamp("detector", "1"))
        replace_attributes(conn, key, found, profile="offline")
        described = [(a.track_id, a.description) for a in found]
        replace_embeddings(conn, key, "track_text", ModelStamp(model.name, model.version), described,
                           embedder.embed([d for _, d in described]))
        vector_index.ensure_index(conn, model.name, embedder.dim)
    db.execute("ANALYZE videos, tracks, track_attributes, embeddings")
    yield db
    db.execute("TRUNCATE videos, descriptions, description_vectors CASCADE")  # no rows left for other tests


def _found(conn, text_model, query: str) -> list[tuple[int, str]]:
    model, embedder = text_model
    hits = search(conn, query, embedder, model.name, SearchFilters(), limit=10, min_similarity=FLOOR)
    return [(hit.track_id, hit.class_name) for hit in hits]


def test_lorry_and_van_find_the_truck_and_only_the_truck(yard, text_model):
    assert _found(yard, text_model, "truck") == [(1, "truck")]
    for word in ("lorry", "van", "lorries"):
        assert _found(yard, text_model, word) == [(1, "truck")], word


def test_a_vehicle_word_that_names_no_class_of_the_yard_finds_nothing(yard, text_model):
    # "bus" is as near to the truck's description by meaning as "lorry" is, but is no word for a truck
    for word in ("bus", "boat", "tractor"):
        assert _found(yard, text_model, word) == [], word
