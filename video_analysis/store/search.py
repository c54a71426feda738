"""Hybrid search over tracks: pgvector cosine similarity + PostgreSQL full-text, fused by reciprocal rank.

Reciprocal rank fusion (score = sum of 1 / (k + rank) over both rankings) needs no score calibration
between the two retrievers: a track that both find ranks first, one found by either still appears.
Every value is a bound parameter; the only composed parts (vector dimension, model name, kind) are
literals from the model registry, so the partial HNSW index of that model is usable.
"""

from __future__ import annotations

import json
import re
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta

import numpy as np
import psycopg
from psycopg import sql
from psycopg.rows import dict_row

RRF_K = 60
SUMMARY_WEIGHT = 0.5  # of a summary's ranks in fusion, against a track's or an incident's
CANDIDATES = 100  # per retriever, before fusion, at most
EF_SEARCH = 2 * CANDIDATES
DESCRIPTION_PROBES = 10


def pool_for(limit: int) -> int:
    """Candidates each retriever brings to fusion for ``limit`` results: twice as many (a hit ranked low by
    one retriever and high by another still meets), at least 20, at most CANDIDATES. A filtered graph walk
    stops once the pool is full (it visits at least ef_search entries either way), so a page of 20 with a
    narrow filter does not walk on for 100 matches."""
    return max(20, min(CANDIDATES, 2 * limit))


@dataclass(frozen=True)
class SearchFilters:
    video: str | None = None  # partition key, or part of the object key
    camera: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    class_name: str | None = None
    color: str | None = None
    incident: str | None = None
    history: bool = False  # also versions of a key superseded by a newer upload


@dataclass(frozen=True)
class SearchHit:
    partition_key: str
    object_key: str
    camera: str | None
    track_id: int
    class_name: str
    start_s: float
    end_s: float
    starts_at: datetime | None  # absolute time when the key carries a recording time
    score: float
    vector_rank: int | None
    text_rank: int | None
    image_rank: int | None
    description: str
    has_thumbnail: bool
    similarity: float | None = None  # cosine between the query and the description (text vectors)

    def as_dict(self) -> dict:
        data = asdict(self)
        data["starts_at"] = self.starts_at.isoformat() if self.starts_at else None
        return data


def _filter_tests(filters: SearchFilters, outer: str) -> tuple[list[str], list[str], list[str]]:
    """The filters that are set, as tests on a track's video ``v``, the track ``t`` and its attributes ``a``
    (``outer``: the table whose rows are tested, for the incident filter)."""
    video, track, attributes = [], [], []
    if not filters.history:  # a key's newest usable version only, unless that version is asked for by name
        video.append("(v.superseded_by IS NULL OR v.partition_key = %(video)s)")
    if filters.video:
        video.append("(v.partition_key = %(video)s OR v.object_key ILIKE '%%' || %(video)s || '%%')")
    if filters.camera:
        video.append("v.camera = %(camera)s")
    if filters.since:
        track.append("coalesce(v.recorded_at, v.last_modified) + make_interval(secs => t.last_t) >= %(since)s")
    if filters.until:
        track.append("coalesce(v.recorded_at, v.last_modified) + make_interval(secs => t.first_t) <= %(until)s")
    if filters.class_name:
        attributes.append("a.class_name = %(class_name)s")
    if filters.color:
        attributes.append("%(color)s IN (a.upper_color, a.lower_color, a.color)")
    if filters.incident:
        attributes.append(f"""EXISTS (
           SELECT 1 FROM summaries s, jsonb_array_elements(s.incidents) i
           WHERE s.partition_key = {outer}.partition_key AND i->>'type' = %(incident)s
             AND i->'track_ids' @> to_jsonb({outer}.track_id))""")
    return video, track, attributes


def _same_track(table: str, outer: str) -> str:
    return f"{table}.partition_key = {outer}.partition_key AND {table}.track_id = {outer}.track_id"


def _track_matches(filters: SearchFilters, outer: str) -> str:
    """The filters that are set, as a test on one track (``outer``: the table whose rows are tested).

    Written as EXISTS on the retriever's own rows, not as a joined list of candidates, so each retriever
    keeps its index: the HNSW index orders the vector retriever (with iterative scans, it keeps going
    until enough rows pass), the GIN index finds the full-text matches. Only the tables a set filter needs
    are joined: every candidate the HNSW walk passes is tested, so each lookup left out is time saved.
    """
    video, track, attributes = _filter_tests(filters, outer)
    tables, tests = [], []
    if video or track:
        tables.append("videos v")
        tests.append(f"v.partition_key = {outer}.partition_key")
    if track:
        tables.append("tracks t")
        tests.append(_same_track("t", outer))
    if attributes:
        tables.append("track_attributes a")
        tests.append(_same_track("a", outer))
    if not tables:
        return "TRUE"
    return f"EXISTS (SELECT 1 FROM {', '.join(tables)} WHERE " + " AND ".join(tests + video + track + attributes) + ")"


# Nearest embeddings of one kind and model (cosine distance; the model's partial HNSW index serves the
# inner ORDER BY ... LIMIT), then the relevance floor: farther than max_distance is not a match.
_BY_VECTOR = """
WITH nearest AS (
    SELECT e.partition_key, e.track_id, e.embedding::vector({{dim}}) <=> %(vector)s::vector({{dim}}) AS distance
    FROM embeddings e
    WHERE e.kind = {{kind}} AND e.model_name = {{model}} AND {matches}
    ORDER BY distance
    LIMIT %(pool)s
)
SELECT partition_key, track_id, distance FROM nearest WHERE distance <= %(max_distance)s
ORDER BY distance, partition_key, track_id
"""

# The same, exact, over the tracks of the videos the filters leave: from those videos (their camera index)
# to each one's embeddings, joined to the tables the other filters test, every distance computed. The
# distance is written without the index's cast, so the planner cannot walk the graph instead.
_BY_VECTOR_EXACT = """
WITH nearest AS (
    SELECT e.partition_key, e.track_id, e.embedding <=> %(vector)s::vector AS distance
    FROM {joins}
    WHERE e.kind = {{kind}} AND e.model_name = {{model}} AND {tests}
    ORDER BY distance
    LIMIT %(pool)s
)
SELECT partition_key, track_id, distance FROM nearest WHERE distance <= %(max_distance)s
ORDER BY distance, partition_key, track_id
"""


# Filters that narrow by video (camera, key, time) leave few tracks, often: a camera's week is 2% of a
# month of ten cameras. A graph walk would pass ~50 tracks for each one that passes, each tested, where
# computing every distance of those few is cheaper and exact. Below this many candidates, it is done so.
EXACT_BELOW = 10_000
# Counted as tracks, from the videos' index to the tracks' key (index only): reading each one's embedding
# row to test its model took 105 ms for a camera at 1M tracks.
_CANDIDATE_COUNT = """
SELECT count(*) FROM (
    SELECT 1 FROM videos v JOIN tracks t ON t.partition_key = v.partition_key WHERE {narrowing} LIMIT {bound}
) candidates
"""


def _video_narrowing(filters: SearchFilters) -> str | None:
    """What the filters require of a track's video, as a test on ``v``; None when they narrow no videos.
    The filters' own tests on the video, and the time window as one on the whole video: necessary
    conditions only (a track lies within its video), so the tracks' own time test still follows."""
    if not (filters.video or filters.camera or filters.since or filters.until):
        return None
    tests, _, _ = _filter_tests(filters, "v")
    if filters.since:  # the longer of the container's duration and what decoded, with a minute's slack
        tests.append("coalesce(v.recorded_at, v.last_modified) + make_interval(secs => "
                     "coalesce(greatest(v.duration_s, v.covered_s), 1e9) + 60) >= %(since)s")
    if filters.until:
        tests.append("coalesce(v.recorded_at, v.last_modified) <= %(until)s")
    return " AND ".join(tests)


def vector_statement(filters: SearchFilters, kind: str, model_name: str, dim: int,
                     exact: bool = False) -> sql.Composed:
    """The vector retriever's statement for these filters, one kind and one model: through the model's
    HNSW index, or ``exact`` over the filtered videos' tracks (filters that narrow by video only)."""
    literals = {"kind": sql.Literal(kind), "model": sql.Literal(model_name), "dim": sql.Literal(int(dim))}
    narrowing = _video_narrowing(filters)
    if exact and narrowing:
        _, track, attributes = _filter_tests(filters, "e")  # the video's are in the narrowing
        # video -> its tracks (primary key) -> each one's embedding (the whole unique key, coalesce and all)
        joins = ("videos v JOIN tracks t ON t.partition_key = v.partition_key JOIN embeddings e "
                 "ON e.partition_key = t.partition_key AND coalesce(e.track_id, -1) = t.track_id")
        if attributes:
            joins += f" JOIN track_attributes a ON {_same_track('a', 'e')}"
        text = _BY_VECTOR_EXACT.format(joins=joins, tests=" AND ".join([narrowing, *track, *attributes]))
    else:
        text = _BY_VECTOR.format(matches=_track_matches(filters, "e"))
    return sql.SQL(text).format(**literals)


# Tracks' text vectors by their descriptions: tracks described alike share one vector, so the nearest
# distinct descriptions are found first (table description_vectors, ~50 times fewer rows than tracks, its
# IVFFlat index), then each one's tracks that pass the filters, nearest description first, in one
# statement that stops once the pool is full. A graph over every track's copy of a shared vector is mostly
# duplicates, and a walk among equals stalls (recall@10 0.90 at 1M tracks, against 1.00;
# benchmarks/README.md). Tracks at the same distance go by key, as in the exact scan. A description's
# tracks are found by its md5 alone: two descriptions sharing one by accident is a chance of about 2^-128.
DESCRIPTIONS_WALKED = 200
_DESCRIBED_TRACKS = """
WITH described AS MATERIALIZED ({descriptions})
SELECT e.partition_key, e.track_id, n.distance
FROM (SELECT content, distance, position FROM described WHERE {within} ORDER BY position) n
CROSS JOIN LATERAL (
    SELECT e.partition_key, e.track_id FROM track_attributes e
    WHERE md5(e.description) = md5(n.content) AND {matches}
    ORDER BY e.partition_key, e.track_id
    LIMIT %(pool)s
) e
ORDER BY n.position, e.partition_key, e.track_id
LIMIT %(pool)s
"""
# (A description's tracks are read from the attributes, for both retrievers: a track is found by meaning
# once described, as by words, and those rows are narrower than the embeddings', each of which holds a
# vector: a camera's week at 1M tracks, 18 ms p50 against 22.)
# The nearest descriptions, by the model's IVFFlat index (an iterative scan may return them slightly out of
# order: position is their exact order, equal distances sharing one).
_NEAREST_DESCRIPTIONS = """
SELECT content, distance, dense_rank() OVER (ORDER BY distance) AS position FROM (
    SELECT content, embedding::vector({{dim}}) <=> %(vector)s::vector({{dim}}) AS distance
    FROM description_vectors WHERE model_name = {{model}}
    ORDER BY distance
    LIMIT {limit}
) nearest
"""
# Descriptions holding every word of the query, best ranked first (the words retriever's counterpart).
# Ranking reads each match, so only the first FULL_TEXT_RANKED matches are ranked. Descriptions the words
# rank alike (a one-word query ranks most alike) go by meaning: the one nearest the query's vector first,
# not the first in the alphabet ("on screen for 1 seconds" before "for 30").
_WORDS_DESCRIPTIONS = """
SELECT content, distance, row_number() OVER (ORDER BY distance, nearness, content) AS position FROM (
    SELECT content, -ts_rank_cd(content_tsv, q) AS distance,
           (SELECT v.embedding <=> %(vector)s::vector FROM description_vectors v
             WHERE v.model_name = {{model}} AND md5(v.content) = md5(matches.content)) AS nearness
    FROM (
        SELECT content, content_tsv, q FROM descriptions, websearch_to_tsquery('english', %(query)s) q
        WHERE content_tsv @@ q
        LIMIT {ranked}
    ) matches
    ORDER BY distance, nearness, content
    LIMIT {limit}
) best
"""


# Videos a filter may list by key, found once per search; past this many, testing each track's video is
# the cheaper (a camera's month at 1M tracks: 5,000 videos).
LISTED_VIDEOS = 2_000
_LISTED = """
WITH listed AS MATERIALIZED (SELECT v.partition_key FROM videos v WHERE {narrowing} LIMIT {listed})
SELECT (SELECT array_agg(partition_key) FROM listed),
       (SELECT CASE WHEN t.reltuples >= 0 AND v.reltuples > 0 THEN t.reltuples / v.reltuples END  -- -1: never
          FROM pg_class t, pg_class v WHERE t.oid = 'tracks'::regclass AND v.oid = 'videos'::regclass)
"""


@dataclass(frozen=True)
class Narrowing:
    """What the filters leave, found once per search for every retriever."""

    few: bool = False  # so few tracks that computing each one's distance beats any index
    videos: list[str] | None = None  # the videos that pass, when the filters narrow to at most LISTED_VIDEOS


def narrow(conn: psycopg.Connection, filters: SearchFilters, params: dict) -> Narrowing:
    """The videos the filters leave (when they narrow by video to few) and whether their tracks are few.

    Their tracks are estimated from the tables' statistics (tracks per video) when they have been gathered:
    counting a camera's week of them took 5 ms at 1M tracks, and a wrong guess costs time, not results.
    Read in binary: psycopg writes and parses a long array of keys as text in ~6 ms, in binary in ~0.5."""
    narrowing = _video_narrowing(filters)
    if narrowing is None:
        return Narrowing()
    statement = _LISTED.format(narrowing=narrowing, listed=LISTED_VIDEOS + 1)
    with conn.cursor(binary=True) as cursor:
        videos, tracks_per_video = cursor.execute(statement, params).fetchone()
    videos = videos or []
    listed = videos if len(videos) <= LISTED_VIDEOS else None
    if tracks_per_video is not None:  # else the tables were never analysed
        estimate = len(videos) * tracks_per_video  # over more than LISTED_VIDEOS: at least this many
        if listed is not None or estimate >= EXACT_BELOW:
            return Narrowing(few=estimate < EXACT_BELOW, videos=listed)
    if listed is not None:
        counted = _CANDIDATE_COUNT.format(narrowing="v.partition_key = ANY(%(videos)b)", bound=int(EXACT_BELOW))
        return Narrowing(few=conn.execute(counted, {"videos": videos}).fetchone()[0] < EXACT_BELOW, videos=listed)
    counted = _CANDIDATE_COUNT.format(narrowing=narrowing, bound=int(EXACT_BELOW))
    return Narrowing(few=conn.execute(counted, params).fetchone()[0] < EXACT_BELOW)


def _expansion_matches(filters: SearchFilters, narrowing: Narrowing) -> str:
    """The filters as a test on a description's track ``e``. Listed videos are tested as membership of
    their list (hashed once per statement), so the tracks' own tests (their time window) run only for
    tracks of those videos: a camera's week at 1M tracks, 5 ms against 20 ms for a lookup of each
    track's video."""
    if narrowing.videos is None:
        return _track_matches(filters, "e")
    rest = replace(filters, video=None, camera=None, history=True)  # what the list does not already test
    # Written on the key's value (|| ''), not the key: as a condition of the description's index scan, the
    # planner would price the list element by element (4.5 ms to plan a camera's week, against 1.8).
    return "e.partition_key || '' = ANY(%(videos)b) AND " + _track_matches(rest, "e")


def _described(conn: psycopg.Connection, filters: SearchFilters, params: dict, model_name: str,
               narrowing: Narrowing, descriptions: str, within: str) -> list[dict] | None:
    """The tracks of the ``descriptions`` (a statement of content, distance, position) that pass the
    filters, best first, at most ``params["pool"]``; None when they do not fill the pool although all
    DESCRIPTIONS_WALKED descriptions were ``within`` reach: a filter on what few of them describe."""
    statement = sql.SQL(_DESCRIBED_TRACKS.format(descriptions=descriptions, within=within,
                                                 matches=_expansion_matches(filters, narrowing)))
    params = {**params, "videos": narrowing.videos}
    model = sql.Literal(model_name)
    with conn.cursor(row_factory=dict_row) as cursor:
        found = cursor.execute(statement.format(model=model), params).fetchall()
        if len(found) >= params["pool"]:
            return found
        walked = sql.SQL(f"SELECT count(*) AS n FROM ({descriptions}) d WHERE {within}").format(model=model)
        if cursor.execute(walked, params).fetchone()["n"] >= DESCRIPTIONS_WALKED:
            return None
    return found


def described_tracks(conn: psycopg.Connection, filters: SearchFilters, params: dict, model_name: str,
                     dim: int, narrowing: Narrowing = Narrowing()) -> list[dict] | None:  # noqa: B008 (frozen)
    """The tracks nearest ``params["vector"]`` by their descriptions' vectors, within the filters and
    ``params["max_distance"]``, at most ``params["pool"]``; None when the nearest DESCRIPTIONS_WALKED
    descriptions hold too few tracks that pass, and the graph over every track must be walked instead."""
    nearest = _NEAREST_DESCRIPTIONS.format(limit=DESCRIPTIONS_WALKED).replace("{dim}", str(int(dim)))
    return _described(conn, filters, params, model_name, narrowing, nearest, "distance <= %(max_distance)s")


def described_words(conn: psycopg.Connection, filters: SearchFilters, params: dict, model_name: str,
                    narrowing: Narrowing = Narrowing()) -> list[dict] | None:  # noqa: B008 (frozen)
    """The tracks whose description holds every word of ``params["query"]``, best ranked first (ties by
    nearness to ``params["vector"]``), within the filters, at most ``params["pool"]``: the descriptions
    are matched, then expanded to their tracks. None when the DESCRIPTIONS_WALKED best do not fill the
    pool and more match. The attributes stage keeps the distinct descriptions (table ``descriptions``), so a
    track is found by its words whether or not its embeddings stage has run."""
    matching = _WORDS_DESCRIPTIONS.format(ranked=FULL_TEXT_RANKED, limit=DESCRIPTIONS_WALKED)
    return _described(conn, filters, params, model_name, narrowing, matching, "TRUE")


def nearest_tracks(conn: psycopg.Connection, filters: SearchFilters, params: dict, kind: str, model_name: str,
                   dim: int, narrowing: Narrowing | None = None) -> list[dict]:
    """The vector retriever: tracks nearest ``params["vector"]`` (rows of partition_key, track_id,
    distance), within the filters and ``params["max_distance"]``, at most ``params["pool"]``.

    Exact over the tracks of few videos when the filters leave few (``narrowing``; found when None), else
    by distinct descriptions for text vectors, else through the HNSW graph of every track's vector.
    """
    if narrowing is None:
        narrowing = narrow(conn, filters, params)
    if narrowing.videos == []:
        return []
    if not narrowing.few and kind == "track_text":
        found = described_tracks(conn, filters, params, model_name, dim, narrowing)
        if found is not None:
            return found
    with conn.cursor(row_factory=dict_row) as cursor:
        statement = vector_statement(filters, kind, model_name, dim, exact=narrowing.few)
        return cursor.execute(statement, params).fetchall()


def matching_words(conn: psycopg.Connection, filters: SearchFilters, params: dict, model_name: str,
                   narrowing: Narrowing) -> list[dict]:
    """The full-text retriever: tracks whose description holds every word of ``params["query"]``, best
    ranked first, within the filters. Over the tracks of few videos when the narrowing leaves few, else by
    distinct descriptions (a description shared by ~50 tracks is matched and ranked once), else over every
    track."""
    if narrowing.videos == []:
        return []
    if not narrowing.few:
        found = described_words(conn, filters, params, model_name, narrowing)
        if found is not None:
            return found
    with conn.cursor(row_factory=dict_row) as cursor:
        return cursor.execute(text_statement(filters, narrowing.few), params).fetchall()


# Tracks whose description holds every word of the query, best ranked first. Ranking reads each match,
# so only the first FULL_TEXT_RANKED matches are ranked: a word every description holds ("person") costs
# a bounded amount, and the vector retriever orders those by meaning anyway.
FULL_TEXT_RANKED = 500
_BY_TEXT = """
SELECT partition_key, track_id FROM (
    SELECT {row}.partition_key, {row}.track_id, {row}.description_tsv, q
    FROM {tables}, websearch_to_tsquery('english', %(query)s) q
    WHERE {row}.description_tsv @@ q AND {tests}
    LIMIT """ + str(FULL_TEXT_RANKED) + """
) matches
ORDER BY ts_rank_cd(description_tsv, q) DESC, partition_key, track_id
LIMIT %(pool)s
"""


def text_statement(filters: SearchFilters, narrowed: bool = False) -> str:
    """The full-text retriever's statement: through the GIN index, or ``narrowed`` from the few videos the
    filters leave, testing each of their tracks' words (the index would list every match of a common word
    in the whole table, to keep a camera's week of them)."""
    if narrowed and (narrowing := _video_narrowing(filters)):
        _, track, attributes = _filter_tests(filters, "a")  # the video's are in the narrowing
        tables = ("videos v JOIN tracks t ON t.partition_key = v.partition_key JOIN track_attributes a "
                  f"ON {_same_track('a', 't')}")
        return _BY_TEXT.format(row="a", tables=tables, tests=" AND ".join([narrowing, *track, *attributes]))
    # m, not a: the filters' EXISTS names its own track_attributes a
    return _BY_TEXT.format(row="m", tables="track_attributes m", tests=_track_matches(filters, "m"))


# Words a query uses for a class, as the class's name (a track's description names its class): "people"
# shares no stem with "person", and its vector is too far from a description to pass the relevance floor.
CLASS_WORDS = {
    # Class-neutral words only: "a woman in red" must not become every person in red.
    **dict.fromkeys(("people", "persons", "someone", "somebody", "anyone", "anybody", "pedestrian",
                     "pedestrians"), "person"),
    **dict.fromkeys(("bike", "bikes", "cyclist", "cyclists"), "bicycle"),
    **dict.fromkeys(("motorbike", "motorbikes", "scooter", "scooters"), "motorcycle"),
    **dict.fromkeys(("lorry", "lorries", "van", "vans"), "truck"),
    **dict.fromkeys(("purse", "purses"), "handbag"),
    **dict.fromkeys(("luggage",), "suitcase"),
}
_WORD = re.compile(r"[A-Za-z]+")


def in_class_words(query: str) -> str:
    """``query`` with each word that names a class replaced by the class's name, for the full-text retriever."""
    return _WORD.sub(lambda match: CLASS_WORDS.get(match.group(0).lower(), match.group(0)), query)


_DETAILS = """
SELECT t.partition_key, v.object_key, v.camera, t.track_id, t.class_name, t.first_t, t.last_t, v.recorded_at,
       a.description, t.thumbnail_jpeg IS NOT NULL AS has_thumbnail
FROM tracks t
JOIN track_attributes a USING (partition_key, track_id)
JOIN videos v USING (partition_key)
WHERE (t.partition_key, t.track_id) IN (SELECT * FROM unnest(%(keys)s::text[], %(ids)s::int[]))
"""


_SEARCH_SETTINGS = f"""SELECT
    set_config('plan_cache_mode', 'force_custom_plan', true),
    -- Index lookups priced as on SSD with the data in memory (PostgreSQL's default, 4, prices a disk
    -- seek): a camera's week is then reached by its videos' keys, not by reading every track (10 ms
    -- against 51 ms at 100k tracks).
    set_config('random_page_cost', '1.1', true),
    set_config('hnsw.iterative_scan', 'relaxed_order', true),  -- keep filling results under filters
    set_config('hnsw.ef_search', '{EF_SEARCH}', true),  -- recall at 1M vectors: benchmarks/README.md
    -- distinct descriptions: 10 of sqrt(n) lists (vector_index.description_lists), then more until the
    -- LIMIT is met (few descriptions in all, or a long list of them asked for)
    set_config('ivfflat.probes', '{DESCRIPTION_PROBES}', true),
    set_config('ivfflat.iterative_scan', 'relaxed_order', true)
"""


@contextmanager
def _search_transaction(conn: psycopg.Connection):
    """A transaction whose queries are planned for their actual parameters.

    psycopg prepares a statement run five times, and PostgreSQL then may move to a generic plan, made
    without the values. With the optional filters written as ``%(camera)s IS NULL OR ...`` that plan kept
    them all and neither index, and a search that took 20-70 ms took 2.8 s from its eleventh run on (100k
    tracks, benchmarks/README.md). The filters are now composed from those set, but a plan made for the
    values (how selective a camera or a week is) stays the right one, and costs well under a millisecond.
    Inside a caller's transaction this is a savepoint, and the settings last until that transaction ends.
    """
    with conn.transaction():
        conn.execute(_SEARCH_SETTINGS)  # one round trip: each costs ~0.5 ms on a busy machine
        yield conn


def _vector_literal(vector) -> str:
    return "[" + ",".join(f"{x:.7f}" for x in vector) + "]"


def _ranked(rows: list[dict], similarities: dict | None = None) -> dict[tuple[str, int], int]:
    """(partition_key, track_id) -> rank (1 = best) of a retriever's candidates, in its order; with
    ``similarities``, also records 1 - distance of each (vector retrievers)."""
    if similarities is not None:
        similarities.update({(row["partition_key"], row["track_id"]): 1.0 - row["distance"] for row in rows})
    return {(row["partition_key"], row["track_id"]): rank for rank, row in enumerate(rows, 1)}


def reciprocal_rank_fusion(rankings: dict[str, dict[tuple, int]], k: int = RRF_K,
                           weights: dict[str, float] | None = None) -> dict[tuple, float]:
    scores: dict[tuple, float] = {}
    for name, ranking in rankings.items():
        weight = (weights or {}).get(name, 1.0)
        for key, rank in ranking.items():
            scores[key] = scores.get(key, 0.0) + weight / (k + rank)
    return scores


def search(conn: psycopg.Connection, query: str, embedder, model_name: str,
           filters: SearchFilters = SearchFilters(), limit: int = 10,  # noqa: B008 (frozen)
           image_embedder=None, image_model_name: str | None = None,
           min_similarity: float | None = None, min_image_similarity: float | None = None,
           ) -> list[SearchHit]:
    """Tracks matching ``query`` best, by meaning (vectors) and by words (full text), within filters.

    With an image-text model (``full`` profile) the query's text embedding is also matched against the
    tracks' image embeddings, so "red jacket" can find a crop whose description never said so.
    ``min_similarity`` (cosine, text vectors) and ``min_image_similarity`` are relevance floors: a track
    only that close in meaning is no match, so a query about something absent returns nothing.
    """
    if not query.strip():
        raise ValueError("the search query is empty")
    params = {**asdict(filters), "query": query, "pool": pool_for(limit)}
    retrievers = [("text_vector", "track_text", embedder, model_name, min_similarity)]
    if image_embedder is not None and image_model_name:
        retrievers.append(("image_vector", "track_image", image_embedder, image_model_name, min_image_similarity))
    rankings: dict[str, dict[tuple[str, int], int]] = {}
    similarities: dict[tuple[str, int], float] = {}
    with _search_transaction(conn):
        narrowing = narrow(conn, filters, params)
        vectors = {}
        for name, kind, model, model_id, floor in retrievers:
            vector = model.embed([query])[0]
            vectors[name] = _vector_literal(vector)
            max_distance = 2.0 if floor is None else 1.0 - floor
            rows = nearest_tracks(conn, filters, {**params, "vector": vectors[name], "max_distance": max_distance},
                                  kind, model_id, vector.shape[0], narrowing)
            rankings[name] = _ranked(rows, similarities if name == "text_vector" else None)
        words = {**params, "query": in_class_words(query), "vector": vectors["text_vector"]}
        rankings["full_text"] = _ranked(matching_words(conn, filters, words, model_name, narrowing))
        scores = reciprocal_rank_fusion(rankings)
        top = sorted(scores, key=lambda key: (-scores[key], key))[:limit]
        return _hits(conn, top, scores, rankings, similarities)


def _hits(conn: psycopg.Connection, top: list[tuple[str, int]], scores: dict[tuple, float],
          rankings: dict[str, dict[tuple, int]], similarities: dict[tuple, float] | None = None) -> list[SearchHit]:
    """The tracks ``top`` names, in that order, with what a result shows."""
    with conn.cursor(row_factory=dict_row) as cursor:
        rows = cursor.execute(_DETAILS, {"keys": [k for k, _ in top], "ids": [i for _, i in top]}).fetchall()
    details = {(r["partition_key"], r["track_id"]): r for r in rows}
    hits = []
    for key in (key for key in top if key in details):  # a track a re-run is rewriting right now is left out
        r = details[key]
        hits.append(SearchHit(
            partition_key=r["partition_key"], object_key=r["object_key"], camera=r["camera"], track_id=r["track_id"],
            class_name=r["class_name"], start_s=round(r["first_t"], 2), end_s=round(r["last_t"], 2),
            starts_at=r["recorded_at"] + timedelta(seconds=r["first_t"]) if r["recorded_at"] else None,
            score=round(scores[key], 5), vector_rank=rankings.get("text_vector", {}).get(key),
            text_rank=rankings.get("full_text", {}).get(key), image_rank=rankings.get("image_vector", {}).get(key),
            description=r["description"], has_thumbnail=bool(r["has_thumbnail"]),
            similarity=None if similarities is None or key not in similarities else round(similarities[key], 4)))
    return hits


# Tracks nearest to one track, by the same kind and model of embedding (image vectors when the track has
# them: they compare appearance across cameras; else its description's vector). The source vector is read
# first and sent back as a value, so the model's HNSW index orders the neighbours (a vector taken from a
# join would be compared with every row).
_SIMILAR_SOURCE = """
SELECT kind, model_name, dim, embedding::text AS embedding FROM embeddings
WHERE partition_key = %(video)s AND track_id = %(track)s AND kind IN ('track_image', 'track_text')
ORDER BY kind = 'track_image' DESC, model_name LIMIT 1
"""
_SIMILAR = """
SELECT e.partition_key, e.track_id, e.embedding::vector({dim}) <=> %(vector)s::vector({dim}) AS distance
FROM embeddings e
WHERE e.kind = {kind} AND e.model_name = {model} AND NOT (e.partition_key = %(video)s AND e.track_id = %(track)s)
  AND EXISTS (SELECT 1 FROM videos v WHERE v.partition_key = e.partition_key AND v.superseded_by IS NULL)
ORDER BY distance
LIMIT %(limit)s
"""


def similar_tracks(conn: psycopg.Connection, partition_key: str, track_id: int, limit: int = 10) -> list[SearchHit]:
    """More like this track, across videos and cameras; score is the cosine similarity. None without a vector."""
    params = {"video": partition_key, "track": track_id, "limit": limit}
    with _search_transaction(conn), conn.cursor(row_factory=dict_row) as cursor:
        source = cursor.execute(_SIMILAR_SOURCE, params).fetchone()
        if source is None:
            return []
        statement = sql.SQL(_SIMILAR).format(kind=sql.Literal(source["kind"]), model=sql.Literal(source["model_name"]),
                                             dim=sql.Literal(int(source["dim"])))
        rows = cursor.execute(statement, {**params, "vector": source["embedding"]}).fetchall()
    rows.sort(key=lambda r: (r["distance"], r["partition_key"], r["track_id"]))
    top = [(r["partition_key"], r["track_id"]) for r in rows]
    scores = {(r["partition_key"], r["track_id"]): 1.0 - r["distance"] for r in rows}
    return _hits(conn, top, scores, {}, scores)


# -- events: incidents and summaries ---------------------------------------------------------------
# What each incident type means, in the words a query about it would use. A query is matched against the
# mean of each type's phrases by meaning, so "a crowd of people" reaches crowding and "was anyone hanging
# around?" loitering. The mean, not the nearest phrase: one phrase alone ("loitering") sits close to words
# that only look alike ("lorry"), and the mean keeps what the phrases share.
INCIDENT_MEANINGS = {
    "loitering": ("loitering", "someone hanging around", "a person lingering in one place for a long time",
                  "somebody waiting around", "a person standing still for a long time"),
    "crowding": ("crowding", "a crowd", "a group of many people gathered together", "too many people in one place"),
    "running": ("running", "a person running", "someone rushing or moving fast"),
    "zone_intrusion": ("zone intrusion", "someone entering a restricted area", "a person in a forbidden zone",
                       "trespassing"),
    "unattended_object": ("unattended object", "a bag left alone", "abandoned luggage",
                          "a backpack or suitcase left behind"),
}


def incident_similarity(embedder, vector) -> dict[str, float]:
    """Cosine between a query's vector and what each incident type means (its phrases' mean direction)."""
    phrases = [phrase for meaning in INCIDENT_MEANINGS.values() for phrase in meaning]
    embedded = dict(zip(phrases, embedder.embed(phrases), strict=True))
    similarity = {}
    for incident_type, meaning in INCIDENT_MEANINGS.items():
        centre = np.mean([embedded[phrase] for phrase in meaning], axis=0)
        similarity[incident_type] = float(centre @ vector / np.linalg.norm(centre))
    return similarity


@dataclass(frozen=True)
class EventHit:
    kind: str  # "incident" | "summary"
    partition_key: str
    object_key: str
    camera: str | None
    start_s: float
    end_s: float
    starts_at: datetime | None
    score: float
    text: str
    incident_type: str | None = None
    track_ids: tuple[int, ...] = ()
    similarity: float | None = None  # cosine between the query and the incident type's meaning or the summary


_EVENT_FILTERS = """
    (%(history)s OR v.superseded_by IS NULL OR v.partition_key = %(video)s)
    AND (%(video)s::text IS NULL OR v.partition_key = %(video)s OR v.object_key ILIKE '%%' || %(video)s || '%%')
    AND (%(camera)s::text IS NULL OR v.camera = %(camera)s)
"""

# Incidents of the types the query means, in the order of how close each type is to it. Times: as for tracks,
# the recording start from the key, else the upload time. The summaries holding those types are found
# through their incidents' index first (the jsonpath), not by reading every summary.
_INCIDENTS = """
SELECT v.partition_key, v.object_key, v.camera, v.recorded_at, i.value AS incident
FROM videos v JOIN summaries s USING (partition_key), jsonb_array_elements(s.incidents) i
WHERE s.incidents @@ %(types_path)s::jsonpath AND i.value->>'type' = ANY(%(types)s) AND """ + _EVENT_FILTERS + """
  AND (%(since)s::timestamptz IS NULL
       OR coalesce(v.recorded_at, v.last_modified) + make_interval(secs => (i.value->>'end_t')::float) >= %(since)s)
  AND (%(until)s::timestamptz IS NULL
       OR coalesce(v.recorded_at, v.last_modified) + make_interval(secs => (i.value->>'start_t')::float) <= %(until)s)
ORDER BY array_position(%(types)s, i.value->>'type'), v.partition_key, (i.value->>'start_t')::float
LIMIT %(pool)s
"""

# Incidents by words: all of the query's words in the incident's type and detail, tested on the summaries
# whose incidents hold them all (index summaries_incident_words; {words}, left out for a query that
# excludes a word: one incident may lack it while another of the same summary has it).
_INCIDENTS_BY_TEXT = """
WITH q AS (SELECT websearch_to_tsquery('english', %(query)s) AS q)
SELECT v.partition_key, v.object_key, v.camera, v.recorded_at, i.value AS incident
FROM videos v JOIN summaries s USING (partition_key), jsonb_array_elements(s.incidents) i, q
WHERE q.q::text <> ''
  AND {words}
  AND to_tsvector('english', replace(i.value->>'type', '_', ' ') || ' ' || coalesce(i.value->>'detail', '')) @@ q.q
  AND (%(incident)s::text IS NULL OR i.value->>'type' = %(incident)s) AND """ + _EVENT_FILTERS + """
  AND (%(since)s::timestamptz IS NULL
       OR coalesce(v.recorded_at, v.last_modified) + make_interval(secs => (i.value->>'end_t')::float) >= %(since)s)
  AND (%(until)s::timestamptz IS NULL
       OR coalesce(v.recorded_at, v.last_modified) + make_interval(secs => (i.value->>'start_t')::float) <= %(until)s)
ORDER BY ts_rank_cd(to_tsvector('english', replace(i.value->>'type', '_', ' ') || ' '
                                || coalesce(i.value->>'detail', '')), q.q) DESC,
         v.partition_key, (i.value->>'start_t')::float
LIMIT %(pool)s
"""

_SUMMARY_WINDOW = """
  AND (%(since)s::timestamptz IS NULL
       OR coalesce(v.recorded_at, v.last_modified) + make_interval(secs => coalesce(v.duration_s, 0)) >= %(since)s)
  AND (%(until)s::timestamptz IS NULL OR coalesce(v.recorded_at, v.last_modified) <= %(until)s)
"""

# Summaries by meaning, first without the filters: the nearest summaries of the model, each marked whether
# it passes them. When not all of these are within the relevance floor, every summary within it is among
# them (as far as the index finds them: it is approximate, as the filtered walk is), and the ones that
# pass are the answer; the graph walk is then as short as without filters. A
# filtered walk goes on until the pool is full of passing summaries, although the floor keeps few: a
# camera's, 17 ms p50 at 50,000 videos, against ~3 ms.
_SUMMARY_NEAREST = """
WITH nearest AS MATERIALIZED (
    SELECT e.partition_key, e.embedding::vector({dim}) <=> %(vector)s::vector({dim}) AS distance
    FROM embeddings e WHERE e.kind = 'summary_text' AND e.model_name = {model}
    ORDER BY distance LIMIT %(pool)s
)
SELECT n.partition_key, n.distance, v.partition_key IS NOT NULL AS passes
FROM nearest n LEFT JOIN videos v ON v.partition_key = n.partition_key AND """ + _EVENT_FILTERS + _SUMMARY_WINDOW + """
WHERE n.distance <= %(max_distance)s
ORDER BY n.distance, n.partition_key
"""

# Summaries by meaning within the filters, when the pool is full of summaries within the floor: nearest
# summary vectors of the model that pass them.
_SUMMARY_BY_VECTOR = """
WITH nearest AS (
    SELECT e.partition_key, e.embedding::vector({dim}) <=> %(vector)s::vector({dim}) AS distance
    FROM embeddings e JOIN videos v USING (partition_key)
    WHERE e.kind = 'summary_text' AND e.model_name = {model} AND """ + _EVENT_FILTERS + _SUMMARY_WINDOW + """
    ORDER BY distance LIMIT %(pool)s
)
SELECT partition_key, distance FROM nearest WHERE distance <= %(max_distance)s ORDER BY distance, partition_key
"""

# The same, exact, over the summaries of the videos a filter lists (at most LISTED_VIDEOS): a camera's week
# is ~2% of the summaries, and a graph walk would pass ~50 for each that passes the filters (42 ms p50 at
# 50,000 videos, against 10 ms for every distance of the listed ones).
_SUMMARY_BY_VECTOR_LISTED = """
WITH nearest AS (
    SELECT e.partition_key, e.embedding <=> %(vector)s::vector AS distance
    FROM embeddings e JOIN videos v USING (partition_key)
    WHERE e.partition_key = ANY(%(videos)b) AND e.kind = 'summary_text' AND coalesce(e.track_id, -1) = -1
      AND e.model_name = {model} AND """ + _EVENT_FILTERS + _SUMMARY_WINDOW + """
    ORDER BY distance LIMIT %(pool)s
)
SELECT partition_key, distance FROM nearest WHERE distance <= %(max_distance)s ORDER BY distance, partition_key
"""

# Summaries by words: all of the query's words (any one of them is too easy: every summary says "people",
# "seconds", "camera" and some colours), best first.
_SUMMARY_BY_TEXT = """
WITH q AS (SELECT websearch_to_tsquery('english', %(query)s) AS q)
SELECT s.partition_key FROM summaries s JOIN videos v USING (partition_key), q
WHERE q.q::text <> '' AND s.summary_tsv @@ q.q AND """ + _EVENT_FILTERS + _SUMMARY_WINDOW + """
ORDER BY ts_rank_cd(s.summary_tsv, q.q) DESC, s.partition_key
LIMIT %(pool)s
"""

_SUMMARY_DETAILS = """
SELECT v.partition_key, v.object_key, v.camera, v.recorded_at, v.duration_s, s.summary
FROM videos v JOIN summaries s USING (partition_key) WHERE v.partition_key = ANY(%(keys)s)
"""


def search_events(conn: psycopg.Connection, query: str, embedder, model_name: str,
                  filters: SearchFilters = SearchFilters(), limit: int = 10,  # noqa: B008 (frozen)
                  min_incident_similarity: float | None = None, min_summary_similarity: float | None = None,
                  kind: str | None = None) -> list[EventHit]:
    """Incidents whose type the query means, and summaries that match it by meaning or by words.

    ``min_incident_similarity`` is the floor for incident types (a short text about people: most queries
    about people come a little close to it, so it sits high), ``min_summary_similarity`` for summary vectors.

    Scored by reciprocal rank like tracks, so the two lists merge by score. Filters only tracks have
    (class, colour) leave events out; an incident filter leaves only incidents of that type.
    """
    if filters.class_name or filters.color or kind not in (None, "incident", "summary"):
        return []
    floor = -1.0 if min_incident_similarity is None else min_incident_similarity
    vector = embedder.embed([query])[0]
    similarity = incident_similarity(embedder, vector)
    types = sorted((t for t, value in similarity.items() if value >= floor and filters.incident in (None, t)),
                   key=lambda t: -similarity[t])
    summary_floor = -1.0 if min_summary_similarity is None else min_summary_similarity
    params = {**asdict(filters), "query": query, "pool": pool_for(limit), "vector": _vector_literal(vector),
              "max_distance": 1.0 - summary_floor, "types": types,
              "types_path": " || ".join(f"$[*].type == {json.dumps(t)}" for t in types)}
    rankings: dict[str, dict[tuple, int]] = {"incident_meaning": {}, "incident_text": {}, "summary_vector": {},
                                             "summary_text": {}}
    events: dict[tuple, EventHit] = {}
    summary_similarity: dict[str, float] = {}
    with _search_transaction(conn), conn.cursor(row_factory=dict_row) as cursor:
        incidents = {}
        if kind in (None, "incident"):
            incidents = {"incident_meaning": cursor.execute(_INCIDENTS, params).fetchall() if types else [],
                         "incident_text": cursor.execute(_incidents_by_text(query), params).fetchall()}
        summaries = {}
        if filters.incident is None and kind in (None, "summary"):
            nearest = _nearest_summaries(conn, filters, params, model_name, int(vector.shape[0]))
            summary_similarity = {r["partition_key"]: 1.0 - r["distance"] for r in nearest}
            summaries["summary_vector"] = [r["partition_key"] for r in nearest]
            summaries["summary_text"] = [r["partition_key"] for r in cursor.execute(_SUMMARY_BY_TEXT, params)]
        keys = sorted({key for found in summaries.values() for key in found})
        details = {r["partition_key"]: r for r in cursor.execute(_SUMMARY_DETAILS, {"keys": keys})} if keys else {}
    for name, rows in incidents.items():
        for rank, row in enumerate(rows, 1):
            incident = row["incident"]
            key = ("incident", row["partition_key"], incident["start_t"], incident["type"],
                   tuple(incident.get("track_ids", ())))
            rankings[name][key] = rank
            events[key] = _event(row, "incident", incident["start_t"], incident["end_t"],
                                 f"{incident['type'].replace('_', ' ')}: {incident['detail']}", incident["type"],
                                 tuple(incident.get("track_ids", ())), similarity.get(incident["type"]))
    for name, found in summaries.items():
        for rank, partition_key in enumerate(found, 1):
            key = ("summary", partition_key)
            rankings[name][key] = rank
            video = details[partition_key]
            events[key] = _event(video, "summary", 0.0, video["duration_s"] or 0.0, video["summary"],
                                 similarity=summary_similarity.get(partition_key))
    # A summary stands for a whole video: it ranks below a track or an incident found as well as it.
    weights = {"summary_vector": SUMMARY_WEIGHT, "summary_text": SUMMARY_WEIGHT}
    scores = reciprocal_rank_fusion(rankings, weights=weights)
    top = sorted(scores, key=lambda key: (-scores[key], key))[:limit]
    return [EventHit(**{**events[key].__dict__, "score": round(scores[key], 5)}) for key in top]


# A word the query excludes, as websearch_to_tsquery reads it: "-" opening a word. Read broadly (a
# hyphen after a space anywhere, quoted or not): a query taken for excluding costs time, never results.
_EXCLUDES = re.compile(r"(?:^|\s)-\S")


def _incidents_by_text(query: str) -> str:
    words = ("TRUE" if _EXCLUDES.search(query)
             else "incident_words(s.incidents) @@ websearch_to_tsquery('english', %(query)s)")
    return _INCIDENTS_BY_TEXT.replace("{words}", words)


def _nearest_summaries(conn: psycopg.Connection, filters: SearchFilters, params: dict, model_name: str,
                       dim: int) -> list[dict]:
    """Summaries nearest ``params["vector"]`` within the filters and the floor, at most ``params["pool"]``."""
    literals = {"model": sql.Literal(model_name), "dim": sql.Literal(dim)}
    with conn.cursor(row_factory=dict_row) as cursor:
        nearest = cursor.execute(sql.SQL(_SUMMARY_NEAREST).format(**literals), params).fetchall()
        if len(nearest) < params["pool"] or all(row["passes"] for row in nearest):
            # not all within the floor: every summary within it is here (as far as the index finds them);
            # or every one passes the filters: they are the nearest that do
            return [row for row in nearest if row["passes"]]
        videos = narrow(conn, filters, params).videos
        if videos == []:
            return []
        statement = sql.SQL(_SUMMARY_BY_VECTOR_LISTED if videos is not None else _SUMMARY_BY_VECTOR)
        return cursor.execute(statement.format(**literals), {**params, "videos": videos}).fetchall()


def _event(video: dict, kind: str, start: float, end: float, text: str, incident_type: str | None = None,
           track_ids: tuple[int, ...] = (), similarity: float | None = None) -> EventHit:
    recorded = video["recorded_at"]
    return EventHit(kind=kind, partition_key=video["partition_key"], object_key=video["object_key"],
                    camera=video["camera"], start_s=round(start, 2), end_s=round(end, 2),
                    starts_at=recorded + timedelta(seconds=start) if recorded else None, score=0.0, text=text,
                    incident_type=incident_type, track_ids=track_ids,
                    similarity=None if similarity is None else round(similarity, 4))
