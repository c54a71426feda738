"""Search over tracks: the retrievers' candidates fused by reciprocal rank into hits a person can open, and
"more like this" for one track."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from video_analysis.search.filters import SearchFilters, narrow, pool_for, search_transaction, vector_literal
from video_analysis.search.fusion import reciprocal_rank_fusion, strength
from video_analysis.search.retrievers import in_class_words, matching_words, nearest_tracks


@dataclass(frozen=True)
class SearchHit:
    """One track that matches: where and when it is, how it ranked, and what it is."""

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

    kind = "track"

    def as_dict(self) -> dict:
        """What a client reads of it (the service adds where to see it)."""
        return {"kind": self.kind, "partition_key": self.partition_key, "object_key": self.object_key,
                "camera": self.camera, "track_id": self.track_id, "class_name": self.class_name,
                "start_s": self.start_s, "end_s": self.end_s,
                "starts_at": self.starts_at.isoformat() if self.starts_at else None, "score": self.score,
                "strength": strength(self.similarity, self.score),
                "text": self.description, "similarity": self.similarity}


_DETAILS = """
SELECT t.partition_key, v.object_key, v.camera, t.track_id, t.class_name, t.first_t, t.last_t, v.recorded_at,
       a.description, t.thumbnail_jpeg IS NOT NULL AS has_thumbnail
FROM tracks t
JOIN track_attributes a USING (partition_key, track_id)
JOIN videos v USING (partition_key)
WHERE (t.partition_key, t.track_id) IN (SELECT * FROM unnest(%(keys)s::text[], %(ids)s::int[]))
"""


def _ranked(rows: list[dict], similarities: dict | None = None) -> dict[tuple[str, int], int]:
    """(partition_key, track_id) -> rank (1 = best) of a retriever's candidates, in its order; with
    ``similarities``, also records 1 - distance of each (vector retrievers)."""
    if similarities is not None:
        similarities.update({(row["partition_key"], row["track_id"]): 1.0 - row["distance"] for row in rows})
    return {(row["partition_key"], row["track_id"]): rank for rank, row in enumerate(rows, 1)}


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
    with search_transaction(conn):
        narrowing = narrow(conn, filters, params)
        vectors = {}
        for name, kind, model, model_id, floor in retrievers:
            vector = model.embed([query])[0]
            vectors[name] = vector_literal(vector)
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
    with search_transaction(conn), conn.cursor(row_factory=dict_row) as cursor:
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
