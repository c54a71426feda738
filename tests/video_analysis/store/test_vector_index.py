import psycopg

from video_analysis.store.schema import migrate
from video_analysis.store.vector_index import (
    description_index_name,
    ensure_index,
    index_name,
    outdated_indexes,
    rebuild_all,
    summary_index_name,
)


def _indexes(conn) -> dict[str, str]:
    return dict(conn.execute("SELECT indexname, indexdef FROM pg_indexes WHERE indexname LIKE 'embeddings_hnsw%' "
                             "OR indexname LIKE 'descriptions_ivfflat%'"))


def _drop(conn, names) -> None:
    for name in names:
        conn.execute(f'DROP INDEX IF EXISTS "{name}"')


def test_two_models_whose_names_slug_alike_get_an_index_each(db):
    names = {index_name("tiny-clip"), index_name("tiny_clip")}
    everything = names | {summary_index_name("tiny-clip"), summary_index_name("tiny_clip")}
    try:
        with db.transaction():
            assert ensure_index(db, "tiny-clip", 16) and ensure_index(db, "tiny_clip", 32)
        indexes = _indexes(db)
        assert len(names) == 2 and everything <= set(indexes)
        assert "kind = 'summary_text'" in indexes[summary_index_name("tiny-clip")]
        assert "vector(16)" in indexes[index_name("tiny-clip")] and "'tiny-clip'" in indexes[index_name("tiny-clip")]
        assert "vector(32)" in indexes[index_name("tiny_clip")]
        assert all(len(name) <= 63 for name in everything)  # PostgreSQL would cut longer names, and collide
        # no descriptions, no index over them
        assert not {description_index_name("tiny-clip"), description_index_name("tiny_clip")} & set(indexes)
    finally:
        _drop(db, everything)


def _scratch(dsn: str, up_to: int) -> psycopg.Connection:
    """A connection to the throwaway database (fixture ``scratch_dsn``), its schema at version ``up_to``."""
    conn = psycopg.connect(dsn, autocommit=True)
    migrate(conn, up_to=up_to)
    return conn


def test_the_migration_names_indexes_as_the_code_does_and_builds_them_with_its_settings(scratch_dsn):
    """Migration 8 re-creates each model's index in SQL; the embeddings stage must find it under that name, and
    doctor must not find it built with other settings than the code's."""
    model = "Some Org/CLIP ViT-B.32 (2024)"
    with _scratch(scratch_dsn, 7) as conn:
        conn.execute("INSERT INTO videos (partition_key, source, object_key, version, size_bytes, last_modified) "
                     "VALUES ('v.mp4@1', 'local', 'v.mp4', '1', 1, now())")
        conn.execute("INSERT INTO embeddings (partition_key, track_id, kind, model_name, model_version, dim, "
                     "embedding) VALUES ('v.mp4@1', 1, 'track_text', %s, 'r1', 3, '[1,0,0]')", (model,))
        migrate(conn, up_to=8)  # the table holds this model's rows only: its index is the only one
        assert {name for name in _indexes(conn) if name.startswith("embeddings_hnsw")} == {index_name(model)}
        assert "WITH (m='32', ef_construction='200')" in _indexes(conn)[index_name(model)]
        assert outdated_indexes(conn) == []


def test_an_index_built_by_an_older_release_is_reported_until_rebuilt_with_the_current_settings(db):
    """Older releases built graphs with pgvector's default settings; doctor names such an index, a rebuild
    fixes it."""
    db.execute("INSERT INTO videos (partition_key, source, object_key, version, size_bytes, last_modified) "
               "VALUES ('v.mp4@1', 'local', 'v.mp4', '1', 1, now())")
    db.execute("INSERT INTO embeddings (partition_key, track_id, kind, model_name, model_version, dim, embedding) "
               "VALUES ('v.mp4@1', 1, 'track_text', 'm', 'r1', 3, '[1,0,0]')")
    try:
        db.execute(f'CREATE INDEX "{index_name("m")}" ON embeddings USING hnsw ((embedding::vector(3)) '
                   "vector_cosine_ops) WHERE model_name = 'm'")
        assert outdated_indexes(db) == [index_name("m")]
        with db.transaction():
            assert rebuild_all(db) == ["m"]
        assert outdated_indexes(db) == []
        assert "WITH (m='32', ef_construction='200')" in _indexes(db)[index_name("m")]
    finally:
        _drop(db, _indexes(db))


def _described(conn, rows) -> None:
    conn.execute("INSERT INTO videos (partition_key, source, object_key, version, size_bytes, last_modified) "
                 "VALUES ('v.mp4@1', 'local', 'v.mp4', '1', 1, now())")
    for track_id, model, content, vector in rows:
        conn.execute("INSERT INTO embeddings (partition_key, track_id, kind, content, model_name, model_version, dim, "
                     "embedding) VALUES ('v.mp4@1', %s, 'track_text', %s, %s, 'r1', 3, %s)",
                     (track_id, content, model, vector))


def test_the_migration_keeps_each_description_once_and_a_rebuild_drops_those_no_track_has(scratch_dsn):
    """Migration 9 fills description_vectors from the tracks' vectors, one per model and description, and
    builds its index under the name the code uses; `reelgraph index rebuild` forgets descriptions gone."""
    with _scratch(scratch_dsn, 8) as conn:
        _described(conn, [(1, "m", "red car, stationary", "[1,0,0]"), (2, "m", "red car, stationary", "[1,0,0]"),
                          (3, "m", "person walking north", "[0,1,0]"), (4, "other", "red car, stationary", "[0,0,1]")])
        migrate(conn, up_to=9)
        stored = conn.execute("SELECT model_name, content, embedding::text FROM description_vectors "
                              "ORDER BY 1, 2").fetchall()
        assert stored == [("m", "person walking north", "[0,1,0]"), ("m", "red car, stationary", "[1,0,0]"),
                          ("other", "red car, stationary", "[0,0,1]")]
        assert {description_index_name("m"), description_index_name("other")} <= set(_indexes(conn))
        migrate(conn)
        conn.execute("DELETE FROM embeddings WHERE track_id = 3")
        with conn.transaction():
            rebuild_all(conn)
        assert conn.execute("SELECT content FROM description_vectors WHERE model_name = 'm'").fetchall() == [
            ("red car, stationary",)]


def test_the_descriptions_index_is_built_again_as_they_grow_fourfold(db):
    """IVFFlat lists are trained on the rows present at build time: sqrt(n) lists, built again at 4x."""
    def lists():
        options = db.execute("SELECT reloptions FROM pg_class WHERE relname = %s", (description_index_name("m"),))
        return options.fetchone()[0]

    def add(first, count):
        for i in range(first, first + count):
            db.execute("INSERT INTO description_vectors (model_name, content, model_version, dim, embedding) "
                       "VALUES ('m', %s, 'r1', 3, %s)", (f"description {i}", f"[1,{i},0]"))
        with db.transaction():
            ensure_index(db, "m", 3)

    try:
        add(0, 1)
        assert lists() == ["lists=1"]
        add(1, 1)  # 2 descriptions: 1 list still, under twice the one built
        assert lists() == ["lists=1"]
        add(2, 14)  # 16: 4 lists
        assert lists() == ["lists=4"]
    finally:
        db.execute("DELETE FROM description_vectors WHERE model_name = 'm'")
        _drop(db, _indexes(db))


def test_a_re_run_keeps_each_description_once_and_forgets_those_no_track_has(db, pg_dsn):
    import numpy as np

    from video_analysis.store.db import connect
    from video_analysis.store.outputs import ModelStamp, replace_embeddings

    db.execute("INSERT INTO videos (partition_key, source, object_key, version, size_bytes, last_modified) "
               "VALUES ('v.mp4@1', 'local', 'v.mp4', '1', 1, now()), ('w.mp4@1', 'local', 'w.mp4', '1', 1, now())")
    vectors = np.eye(3, dtype=np.float32)
    with connect(pg_dsn) as conn:
        with conn.transaction():
            replace_embeddings(conn, "w.mp4@1", "track_text", ModelStamp("m", "r1"), [(1, "shared")], vectors[:1])
            replace_embeddings(conn, "v.mp4@1", "track_text", ModelStamp("m", "r1"),
                               [(1, "shared"), (2, "old"), (3, "old")], vectors)
        assert [r[0] for r in db.execute("SELECT content FROM description_vectors ORDER BY 1")] == ["old", "shared"]
        with conn.transaction():  # the re-run words track 2 and 3 anew and no longer sees track 1
            replace_embeddings(conn, "v.mp4@1", "track_text", ModelStamp("m", "r1"), [(2, "new"), (3, "new")],
                               vectors[:2])
    assert [r[0] for r in db.execute("SELECT content FROM description_vectors ORDER BY 1")] == ["new", "shared"]


def _tracks(conn, partition_key: str, descriptions: dict[int, str]) -> None:
    conn.execute("INSERT INTO videos (partition_key, source, object_key, version, size_bytes, last_modified) "
                 "VALUES (%s, 'local', %s, '1', 1, now()) ON CONFLICT DO NOTHING",
                 (partition_key, partition_key.split("@")[0]))
    for track_id in descriptions:
        conn.execute("INSERT INTO tracks (partition_key, track_id, class_name, first_t, last_t, frames_seen, "
                     "mean_confidence, max_step_px, path, best_frame, best_x1, best_y1, best_x2, best_y2, model_name, "
                     "model_version) VALUES (%s, %s, 'car', 0, 1, 5, 0.9, 1, '[]', 0, 0, 0, 1, 1, 'd', '1')",
                     (partition_key, track_id))


def _attributes(dsn: str, partition_key: str, descriptions: dict[int, str]) -> None:
    """The attributes stage's writer, as a run calls it (one transaction)."""
    from video_analysis.store import db
    from video_analysis.store.outputs import replace_attributes
    from video_analysis.vision.attributes import TrackAttributes

    found = [TrackAttributes(track_id, "car", None, None, "red", 0.2, 0.0, 0.0, "stationary", None, 0.0, 1.0,
                             description=text) for track_id, text in descriptions.items()]
    with db.session(dsn) as conn:
        replace_attributes(conn, partition_key, found, profile="offline")


def test_the_attributes_keep_each_description_once_and_a_re_run_forgets_those_no_track_has(db, pg_dsn):
    _tracks(db, "v.mp4@1", {1: "", 2: "", 3: ""})
    _tracks(db, "w.mp4@1", {1: ""})
    _attributes(pg_dsn, "w.mp4@1", {1: "red car, stationary"})
    _attributes(pg_dsn, "v.mp4@1", {1: "red car, stationary", 2: "blue car, moving", 3: "blue car, moving"})
    assert [r[0] for r in db.execute("SELECT content FROM descriptions ORDER BY 1")] == [
        "blue car, moving", "red car, stationary"]
    _attributes(pg_dsn, "v.mp4@1", {2: "gray car, parked", 3: "gray car, parked"})  # a re-run, described anew
    assert [r[0] for r in db.execute("SELECT content FROM descriptions ORDER BY 1")] == [
        "gray car, parked", "red car, stationary"]  # w's track still has "red car"


def test_a_re_run_of_the_tracks_forgets_the_descriptions_of_the_tracks_it_replaced(db, pg_dsn):
    from video_analysis.store import db as store
    from video_analysis.store.outputs import ModelStamp, replace_tracks
    from video_analysis.vision.tracking import TrackSummary

    _tracks(db, "v.mp4@1", {1: "", 2: ""})
    _tracks(db, "w.mp4@1", {1: ""})
    _attributes(pg_dsn, "v.mp4@1", {1: "red car, stationary", 2: "blue car, moving"})
    _attributes(pg_dsn, "w.mp4@1", {1: "red car, stationary"})
    track = TrackSummary(track_id=1, class_id=2, first_t=0.0, last_t=1.0, frames_seen=5, mean_confidence=0.9,
                         path=[[0.0, 1.0, 1.0]], best_frame=0, best_box=(0, 0, 1, 1), max_step_px=1.0)
    with store.session(pg_dsn) as conn:  # tracked anew: the attributes go with the old tracks (cascade)
        replace_tracks(conn, "v.mp4@1", [track], {2: "car"}, {}, ModelStamp("d", "2"))
    assert db.execute("SELECT count(*) FROM track_attributes WHERE partition_key = 'v.mp4@1'").fetchone()[0] == 0
    assert [r[0] for r in db.execute("SELECT content FROM descriptions ORDER BY 1")] == [
        "red car, stationary"]  # still w's


def test_words_find_a_described_track_whose_vectors_are_not_stored(db, pg_dsn):
    """Words are matched in the descriptions the attributes stage keeps: a track whose embeddings stage has
    not run (or failed) is found by its words without a narrowing filter, as it is with one."""
    from video_analysis.search.filters import EXACT_BELOW, Narrowing, SearchFilters
    from video_analysis.search.retrievers import matching_words

    _tracks(db, "v.mp4@1", {1: "", 2: "", 3: ""})
    _attributes(pg_dsn, "v.mp4@1", {1: "red car, stationary", 2: "blue car, moving", 3: "red car, stationary"})
    assert db.execute("SELECT count(*) FROM embeddings").fetchone()[0] == 0
    params = {**SearchFilters().__dict__, "query": "red car", "pool": 20, "vector": "[1,0,0]"}
    unnarrowed = matching_words(db, SearchFilters(), params, "m", Narrowing())
    assert [(r["partition_key"], r["track_id"]) for r in unnarrowed] == [("v.mp4@1", 1), ("v.mp4@1", 3)]
    assert EXACT_BELOW > 3
    one_video = {**params, "video": "v.mp4@1"}
    for narrowing in (Narrowing(few=True, videos=["v.mp4@1"]), Narrowing(few=False, videos=["v.mp4@1"])):
        # scanned over the video's tracks, or expanded from the descriptions within the listed video
        narrowed = matching_words(db, SearchFilters(video="v.mp4@1"), one_video, "m", narrowing)
        assert [(r["partition_key"], r["track_id"]) for r in narrowed] == [("v.mp4@1", 1), ("v.mp4@1", 3)]
    assert matching_words(db, SearchFilters(video="w.mp4@1"), {**params, "video": "w.mp4@1"}, "m",
                          Narrowing(few=False, videos=["w.mp4@1"])) == []


def test_a_filter_s_tracks_are_counted_or_estimated_alike(db, pg_dsn, monkeypatch):
    """Whether a filter leaves few tracks (then scanned exactly) is estimated from the tables' statistics
    once gathered, else counted; both must say the same of the same rows."""
    from video_analysis.search import filters as search_module

    _tracks(db, "v.mp4@1", {1: "", 2: "", 3: ""})
    params = {**search_module.SearchFilters(video="v.mp4@1").__dict__}
    for analysed in (False, True):
        if analysed:
            db.execute("ANALYZE videos, tracks")
        for bound, few in ((3, False), (4, True)):
            monkeypatch.setattr(search_module, "EXACT_BELOW", bound)
            found = search_module.narrow(db, search_module.SearchFilters(video="v.mp4@1"), params)
            assert (found.few, found.videos) == (few, ["v.mp4@1"]), (analysed, bound)


def test_migration_10_keeps_each_description_of_the_tracks_once(scratch_dsn):
    with _scratch(scratch_dsn, 9) as conn:
        _tracks(conn, "v.mp4@1", {1: "", 2: "", 3: ""})
        for track_id, description in ((1, "red car, stationary"), (2, "blue car, moving"), (3, "red car, stationary")):
            conn.execute("INSERT INTO track_attributes (partition_key, track_id, class_name, apparent_height, "
                         "speed_px_s, speed_heights_s, motion, displacement_px, dwell_s, description, profile) "
                         "VALUES ('v.mp4@1', %s, 'car', 0.2, 0, 0, 'stationary', 0, 1, %s, 'offline')",
                         (track_id, description))
        migrate(conn, up_to=10)
        assert [r[0] for r in conn.execute("SELECT content FROM descriptions ORDER BY 1")] == [
            "blue car, moving", "red car, stationary"]


def test_meaning_finds_every_track_of_a_described_sentence_once_its_vector_is_stored(db, pg_dsn):
    """A description's vector is stored once (by the first track embedded with it); every track described
    so is then found by meaning, nearest description first, ties by key."""
    from video_analysis.search.filters import Narrowing, SearchFilters
    from video_analysis.search.filters import search_transaction as _search_transaction
    from video_analysis.search.retrievers import described_tracks

    _tracks(db, "v.mp4@1", {1: "", 2: "", 3: ""})
    _attributes(pg_dsn, "v.mp4@1", {1: "red car, stationary", 2: "blue car, moving", 3: "red car, stationary"})
    db.execute("INSERT INTO description_vectors (model_name, content, model_version, dim, embedding) VALUES "
               "('m', 'red car, stationary', 'r1', 3, '[1,0,0]'), ('m', 'blue car, moving', 'r1', 3, '[0,1,0]')")
    params = {**SearchFilters().__dict__, "query": "", "pool": 20, "vector": "[0.9,0.1,0]", "max_distance": 2.0}
    with _search_transaction(db):
        found = described_tracks(db, SearchFilters(), params, "m", 3, Narrowing())
    assert [(r["track_id"], round(r["distance"], 3)) for r in found] == [(1, 0.006), (3, 0.006), (2, 0.89)]
