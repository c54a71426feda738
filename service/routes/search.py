"""Search, answers, and more like a track."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query

from service.context import (
    MAX_LIMIT,
    MAX_QUERY_CHARS,
    NOTHING_MATCHES,
    ServiceContext,
    Slots,
    _hit,
    _utc,
    _with_footage,
    answer,
    find,
)
from video_analysis.search import SearchFilters, similar_tracks


def router(ctx: ServiceContext, searches: Slots, answers: Slots) -> APIRouter:
    routes = APIRouter()

    @routes.get("/api/search")
    def search_footage(
        q: Annotated[str, Query(min_length=1, max_length=MAX_QUERY_CHARS, description="what to look for")],
        camera: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        class_name: Annotated[str | None, Query(alias="class")] = None,
        color: str | None = None,
        incident: str | None = None,
        video: str | None = None,
        kind: Annotated[str | None, Query(pattern="^(track|incident|summary)$",
                                          description="only hits of this kind")] = None,
        history: bool = False,
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 20,
    ) -> dict:
        """Tracks, incidents and video summaries matching `q`, best first (kind says which)."""
        if not q.strip():
            raise HTTPException(422, "q: the query is blank")
        filters = SearchFilters(video=video, camera=camera, since=_utc(since), until=_utc(until),
                                class_name=class_name, color=color, incident=incident, history=history)
        with searches:
            hits = find(ctx, q, filters, kind, limit)
        return {"query": q, "hits": hits, **({} if hits else {"message": NOTHING_MATCHES})}

    @routes.get("/api/ask")
    def ask(
        q: Annotated[str, Query(min_length=1, max_length=MAX_QUERY_CHARS, description="a question about the footage")],
        camera: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> dict:
        """An answer built only from the matching rows; every sentence cites its video and time."""
        if not q.strip():
            raise HTTPException(422, "q: the question is blank")
        with answers:
            return answer(ctx, q, SearchFilters(camera=camera, since=_utc(since), until=_utc(until)))

    @routes.get("/api/similar/{partition_key:path}/{track_id}")
    def similar(partition_key: str, track_id: int, limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 10) -> dict:
        with ctx.database.session() as conn:
            hits = similar_tracks(conn, partition_key, track_id, limit=limit)
        return {"partition_key": partition_key, "track_id": track_id,
                "hits": _with_footage(ctx, [_hit(h, ctx) for h in hits])}

    return routes
