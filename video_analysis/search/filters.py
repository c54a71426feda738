"""What a search is narrowed by: the filters as SQL tests on a track's video, the track and its attributes, and
the videos they leave (found once per search for every retriever).

Every value is a bound parameter; the composed parts are fixed fragments chosen by which filters are set, so a
plan is made for the filters a search has, not for every optional one.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime

import psycopg

from video_analysis.store.catalog import RECORDED_AT

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


def filter_tests(filters: SearchFilters, outer: str) -> tuple[list[str], list[str], list[str]]:
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
        track.append(f"{RECORDED_AT} + make_interval(secs => t.last_t) >= %(since)s")
    if filters.until:
        track.append(f"{RECORDED_AT} + make_interval(secs => t.first_t) <= %(until)s")
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


def same_track(table: str, outer: str) -> str:
    return f"{table}.partition_key = {outer}.partition_key AND {table}.track_id = {outer}.track_id"


def track_matches(filters: SearchFilters, outer: str) -> str:
    """The filters that are set, as a test on one track (``outer``: the table whose rows are tested).

    Written as EXISTS on the retriever's own rows, not as a joined list of candidates, so each retriever
    keeps its index: the HNSW index orders the vector retriever (with iterative scans, it keeps going
    until enough rows pass), the GIN index finds the full-text matches. Only the tables a set filter needs
    are joined: every candidate the HNSW walk passes is tested, so each lookup left out is time saved.
    """
    video, track, attributes = filter_tests(filters, outer)
    tables, tests = [], []
    if video or track:
        tables.append("videos v")
        tests.append(f"v.partition_key = {outer}.partition_key")
    if track:
        tables.append("tracks t")
        tests.append(same_track("t", outer))
    if attributes:
        tables.append("track_attributes a")
        tests.append(same_track("a", outer))
    if not tables:
        return "TRUE"
    return f"EXISTS (SELECT 1 FROM {', '.join(tables)} WHERE " + " AND ".join(tests + video + track + attributes) + ")"


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


def video_narrowing(filters: SearchFilters) -> str | None:
    """What the filters require of a track's video, as a test on ``v``; None when they narrow no videos.
    The filters' own tests on the video, and the time window as one on the whole video: necessary
    conditions only (a track lies within its video), so the tracks' own time test still follows."""
    if not (filters.video or filters.camera or filters.since or filters.until):
        return None
    tests, _, _ = filter_tests(filters, "v")
    if filters.since:  # the longer of the container's duration and what decoded, with a minute's slack
        tests.append(f"{RECORDED_AT} + make_interval(secs => "
                     "coalesce(greatest(v.duration_s, v.covered_s), 1e9) + 60) >= %(since)s")
    if filters.until:
        tests.append(f"{RECORDED_AT} <= %(until)s")
    return " AND ".join(tests)


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
    narrowing = video_narrowing(filters)
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


def expansion_matches(filters: SearchFilters, narrowing: Narrowing) -> str:
    """The filters as a test on a description's track ``e``. Listed videos are tested as membership of
    their list (hashed once per statement), so the tracks' own tests (their time window) run only for
    tracks of those videos: a camera's week at 1M tracks, 5 ms against 20 ms for a lookup of each
    track's video."""
    if narrowing.videos is None:
        return track_matches(filters, "e")
    rest = replace(filters, video=None, camera=None, history=True)  # what the list does not already test
    # Written on the key's value (|| ''), not the key: as a condition of the description's index scan, the
    # planner would price the list element by element (4.5 ms to plan a camera's week, against 1.8).
    return "e.partition_key || '' = ANY(%(videos)b) AND " + track_matches(rest, "e")


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
def search_transaction(conn: psycopg.Connection):
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


def vector_literal(vector) -> str:
    return "[" + ",".join(f"{x:.7f}" for x in vector) + "]"


