"""The track retrievers: by meaning (pgvector cosine distance: exact over few videos' tracks, by distinct
descriptions, or through the model's HNSW graph) and by words (PostgreSQL full text), each within the filters.

The only composed parts of a statement (vector dimension, model name, kind) are literals from the model
registry, so the partial HNSW index of that model is usable.
"""

from __future__ import annotations

import re

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from video_analysis.search.filters import (
    Narrowing,
    SearchFilters,
    expansion_matches,
    filter_tests,
    narrow,
    same_track,
    track_matches,
    video_narrowing,
)

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


def vector_statement(filters: SearchFilters, kind: str, model_name: str, dim: int,
                     exact: bool = False) -> sql.Composed:
    """The vector retriever's statement for these filters, one kind and one model: through the model's
    HNSW index, or ``exact`` over the filtered videos' tracks (filters that narrow by video only)."""
    literals = {"kind": sql.Literal(kind), "model": sql.Literal(model_name), "dim": sql.Literal(int(dim))}
    narrowing = video_narrowing(filters)
    if exact and narrowing:
        _, track, attributes = filter_tests(filters, "e")  # the video's are in the narrowing
        # video -> its tracks (primary key) -> each one's embedding (the whole unique key, coalesce and all)
        joins = ("videos v JOIN tracks t ON t.partition_key = v.partition_key JOIN embeddings e "
                 "ON e.partition_key = t.partition_key AND coalesce(e.track_id, -1) = t.track_id")
        if attributes:
            joins += f" JOIN track_attributes a ON {same_track('a', 'e')}"
        text = _BY_VECTOR_EXACT.format(joins=joins, tests=" AND ".join([narrowing, *track, *attributes]))
    else:
        text = _BY_VECTOR.format(matches=track_matches(filters, "e"))
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


def _described(conn: psycopg.Connection, filters: SearchFilters, params: dict, model_name: str,
               narrowing: Narrowing, descriptions: str, within: str) -> list[dict] | None:
    """The tracks of the ``descriptions`` (a statement of content, distance, position) that pass the
    filters, best first, at most ``params["pool"]``; None when they do not fill the pool although all
    DESCRIPTIONS_WALKED descriptions were ``within`` reach: a filter on what few of them describe."""
    statement = sql.SQL(_DESCRIBED_TRACKS.format(descriptions=descriptions, within=within,
                                                 matches=expansion_matches(filters, narrowing)))
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
    if narrowed and (narrowing := video_narrowing(filters)):
        _, track, attributes = filter_tests(filters, "a")  # the video's are in the narrowing
        tables = ("videos v JOIN tracks t ON t.partition_key = v.partition_key JOIN track_attributes a "
                  f"ON {same_track('a', 't')}")
        return _BY_TEXT.format(row="a", tables=tables, tests=" AND ".join([narrowing, *track, *attributes]))
    # m, not a: the filters' EXISTS names its own track_attributes a
    return _BY_TEXT.format(row="m", tables="track_attributes m", tests=track_matches(filters, "m"))


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
