"""Search over events: incidents whose type the query means (or whose words it uses), and videos' summaries
that match it by meaning or by words, fused by reciprocal rank like tracks."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

import numpy as np
import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from video_analysis.search.filters import (
    RECORDED_AT,
    SearchFilters,
    narrow,
    pool_for,
    search_transaction,
    vector_literal,
)
from video_analysis.search.fusion import SUMMARY_WEIGHT, reciprocal_rank_fusion, strength

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
    """An incident, or a video's summary, that matches."""

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

    def as_dict(self) -> dict:
        """What a client reads of it (the service adds where to see it)."""
        return {"kind": self.kind, "partition_key": self.partition_key, "object_key": self.object_key,
                "camera": self.camera, "incident_type": self.incident_type, "track_ids": list(self.track_ids),
                "start_s": self.start_s, "end_s": self.end_s,
                "starts_at": self.starts_at.isoformat() if self.starts_at else None, "score": self.score,
                "strength": strength(self.similarity, self.score),
                "similarity": self.similarity, "text": self.text}


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
       OR """ + RECORDED_AT + """ + make_interval(secs => (i.value->>'end_t')::float) >= %(since)s)
  AND (%(until)s::timestamptz IS NULL
       OR """ + RECORDED_AT + """ + make_interval(secs => (i.value->>'start_t')::float) <= %(until)s)
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
       OR """ + RECORDED_AT + """ + make_interval(secs => (i.value->>'end_t')::float) >= %(since)s)
  AND (%(until)s::timestamptz IS NULL
       OR """ + RECORDED_AT + """ + make_interval(secs => (i.value->>'start_t')::float) <= %(until)s)
ORDER BY ts_rank_cd(to_tsvector('english', replace(i.value->>'type', '_', ' ') || ' '
                                || coalesce(i.value->>'detail', '')), q.q) DESC,
         v.partition_key, (i.value->>'start_t')::float
LIMIT %(pool)s
"""

_SUMMARY_WINDOW = """
  AND (%(since)s::timestamptz IS NULL
       OR """ + RECORDED_AT + """ + make_interval(secs => coalesce(v.duration_s, 0)) >= %(since)s)
  AND (%(until)s::timestamptz IS NULL OR """ + RECORDED_AT + """ <= %(until)s)
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
    params = {**asdict(filters), "query": query, "pool": pool_for(limit), "vector": vector_literal(vector),
              "max_distance": 1.0 - summary_floor, "types": types,
              "types_path": " || ".join(f"$[*].type == {json.dumps(t)}" for t in types)}
    rankings: dict[str, dict[tuple, int]] = {"incident_meaning": {}, "incident_text": {}, "summary_vector": {},
                                             "summary_text": {}}
    events: dict[tuple, EventHit] = {}
    summary_similarity: dict[str, float] = {}
    with search_transaction(conn), conn.cursor(row_factory=dict_row) as cursor:
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
