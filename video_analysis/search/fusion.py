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
