"""Reciprocal rank fusion: rankings of different retrievers merged without calibrating their scores against
each other (score = sum of weight / (k + rank)): what several retrievers find ranks first, what one finds
still appears. Tracks and events (incidents, summaries) are searched side by side and merged by score."""

from __future__ import annotations

RRF_K = 60
SUMMARY_WEIGHT = 0.5  # of a summary's ranks in fusion, against a track's or an incident's
KINDS = ("track", "incident", "summary")  # equal scores: the one closer in meaning first, then in this order


def reciprocal_rank_fusion(rankings: dict[str, dict[tuple, int]], k: int = RRF_K,
                           weights: dict[str, float] | None = None) -> dict[tuple, float]:
    scores: dict[tuple, float] = {}
    for name, ranking in rankings.items():
        weight = (weights or {}).get(name, 1.0)
        for key, rank in ranking.items():
            scores[key] = scores.get(key, 0.0) + weight / (k + rank)
    return scores


def merged(hits: list, limit: int) -> list:
    """Tracks' and events' hits in one list, best first: by fused score, then the hit closer in meaning
    (cosines of one text model compare), then tracks before incidents before summaries."""
    ordered = sorted(hits, key=lambda hit: (-hit.score, -(hit.similarity or 0.0), KINDS.index(hit.kind)))
    return ordered[:limit]


def strength(similarity: float | None, score: float) -> str:
    """How good a match is, in words a person can read instead of a fused score: from the cosine between the
    query and what the hit says (tracks' descriptions, incident types' meanings, summaries) where there is one,
    else (a match by words alone) from whether it ranked near the top of its retriever. Calibrated on the
    relevance benchmark (benchmarks/README.md): queries about what the clips hold find their best track at
    0.45-0.55, queries about what is absent stay under 0.27, and the floor is 0.3."""
    if similarity is not None:
        return "strong" if similarity >= 0.45 else "fair" if similarity >= 0.35 else "weak"
    return "fair" if score >= 1.0 / (RRF_K + 3) else "weak"
