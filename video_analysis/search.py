"""Hybrid search over tracks: pgvector cosine similarity + PostgreSQL full-text, fused by reciprocal rank.

Reciprocal rank fusion (score = sum of 1 / (k + rank) over both rankings) needs no score calibration
between the two retrievers: a track that both find ranks first, one found by either still appears.
Every value is a bound parameter; the only composed parts (vector dimension, model name) are literals
from the model registry, so the partial HNSW index of that model is usable.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path

import psycopg
from psycopg import sql

RRF_K = 60
CANDIDATES = 100


@dataclass(frozen=True)
class SearchFilters:
    video: str | None = None  # partition key, or part of the object key
    camera: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    class_name: str | None = None
    color: str | None = None
    incident: str | None = None


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
    description: str
    thumbnail: str | None

    def as_dict(self) -> dict:
        data = asdict(self)
        data["starts_at"] = self.starts_at.isoformat() if self.starts_at else None
        return data


_QUERY = """
WITH candidates AS (
    SELECT a.partition_key, a.track_id
    FROM track_attributes a
    JOIN tracks t USING (partition_key, track_id)
    JOIN videos v USING (partition_key)
    WHERE (%(video)s::text IS NULL OR v.partition_key = %(video)s OR v.object_key ILIKE '%%' || %(video)s || '%%')
      AND (%(camera)s::text IS NULL OR v.camera = %(camera)s)
      AND (%(class_name)s::text IS NULL OR a.class_name = %(class_name)s)
      AND (%(color)s::text IS NULL OR %(color)s IN (a.upper_color, a.lower_color, a.color))
      AND (%(since)s::timestamptz IS NULL
           OR coalesce(v.recorded_at, v.last_modified) + make_interval(secs => t.last_t) >= %(since)s)
      AND (%(until)s::timestamptz IS NULL
           OR coalesce(v.recorded_at, v.last_modified) + make_interval(secs => t.first_t) <= %(until)s)
      AND (%(incident)s::text IS NULL OR EXISTS (
           SELECT 1 FROM summaries s, jsonb_array_elements(s.incidents) i
           WHERE s.partition_key = a.partition_key AND i->>'type' = %(incident)s
             AND i->'track_ids' @> to_jsonb(a.track_id)))
),
by_vector AS (
    SELECT e.partition_key, e.track_id,
           row_number() OVER (ORDER BY e.embedding::vector({dim}) <=> %(vector)s::vector({dim})) AS rank
    FROM embeddings e JOIN candidates c USING (partition_key, track_id)
    WHERE e.kind = 'track_text' AND e.model_name = {model}
    ORDER BY e.embedding::vector({dim}) <=> %(vector)s::vector({dim})
    LIMIT %(pool)s
),
by_text AS (
    SELECT a.partition_key, a.track_id,
           row_number() OVER (ORDER BY ts_rank_cd(a.description_tsv, q) DESC, a.track_id) AS rank
    FROM track_attributes a JOIN candidates c USING (partition_key, track_id),
         websearch_to_tsquery('english', %(query)s) q
    WHERE a.description_tsv @@ q
    ORDER BY rank
    LIMIT %(pool)s
),
fused AS (
    SELECT coalesce(bv.partition_key, bt.partition_key) AS partition_key,
           coalesce(bv.track_id, bt.track_id) AS track_id,
           coalesce(1.0 / (%(k)s + bv.rank), 0) + coalesce(1.0 / (%(k)s + bt.rank), 0) AS score,
           bv.rank AS vector_rank, bt.rank AS text_rank
    FROM by_vector bv FULL OUTER JOIN by_text bt USING (partition_key, track_id)
)
SELECT f.partition_key, v.object_key, v.camera, f.track_id, t.class_name, t.first_t, t.last_t, v.recorded_at,
       f.score, f.vector_rank, f.text_rank, a.description, t.thumbnail_jpeg
FROM fused f
JOIN tracks t USING (partition_key, track_id)
JOIN track_attributes a USING (partition_key, track_id)
JOIN videos v ON v.partition_key = f.partition_key
ORDER BY f.score DESC, f.partition_key, t.first_t
LIMIT %(limit)s
"""


def _thumbnail_path(folder: Path | None, partition_key: str, track_id: int, jpeg: bytes | None) -> str | None:
    if folder is None or not jpeg:
        return None
    path = folder / re.sub(r"[^A-Za-z0-9._-]+", "_", partition_key) / f"track-{track_id}.jpg"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(jpeg)
    return str(path)


def search(conn: psycopg.Connection, query: str, embedder, model_name: str,
           filters: SearchFilters = SearchFilters(), limit: int = 10,  # noqa: B008 (frozen)
           thumbnails_dir: Path | None = None) -> list[SearchHit]:
    """Tracks matching ``query`` best, by meaning (vectors) and by words (full text), within filters."""
    if not query.strip():
        raise ValueError("the search query is empty")
    vector = embedder.embed([query])[0]
    statement = sql.SQL(_QUERY).format(dim=sql.Literal(int(vector.shape[0])), model=sql.Literal(model_name))
    params = {**asdict(filters), "query": query, "vector": "[" + ",".join(f"{x:.7f}" for x in vector) + "]",
              "pool": CANDIDATES, "k": RRF_K, "limit": limit}
    with conn.transaction():
        conn.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")  # keep filling results under filters
        rows = conn.execute(statement, params).fetchall()
    return [
        SearchHit(partition_key=r[0], object_key=r[1], camera=r[2], track_id=r[3], class_name=r[4],
                  start_s=round(r[5], 2), end_s=round(r[6], 2),
                  starts_at=r[7] + timedelta(seconds=r[5]) if r[7] else None, score=round(float(r[8]), 5),
                  vector_rank=r[9], text_rank=r[10], description=r[11],
                  thumbnail=_thumbnail_path(thumbnails_dir, r[0], r[3], r[12]))
        for r in rows
    ]
