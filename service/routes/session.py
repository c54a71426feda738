"""Health for probes, and the page's sign-in."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, HTTPException, Request, Response

from service.access import SESSION_COOKIE, SESSION_SECONDS, AccessPolicy, session_value
from service.context import ServiceContext
from video_analysis.store.db import store_identity


def router(ctx: ServiceContext, policy: AccessPolicy) -> APIRouter:
    routes = APIRouter()
    database_name: list[str] = []  # the store's identity, read once

    @routes.get("/api/health")
    def health(request: Request) -> dict:
        """Status for anyone (probes); the catalogue, models and database to those signed in. ``database``
        names the store, so a client can tell this service reads the same one as itself."""
        with ctx.database.session() as conn:
            videos = conn.execute("SELECT count(*) FROM videos").fetchone()[0]
            if not database_name:
                database_name.append(store_identity(conn))
        if not request.state.signed_in:
            return {"status": "ok"}
        return {"status": "ok", "videos": videos, "database": database_name[0], "text_model": ctx.text_model_name,
                "image_model": ctx.image_model_name,
                "query_embedder": getattr(ctx.text_embedder, "backend", "torch")}

    @routes.post("/api/session", status_code=204, include_in_schema=False)
    def sign_in(request: Request, token: Annotated[str, Body(embed=True, max_length=1000)]) -> Response:
        """The page's sign-in: a valid token gets a cookie the browser sends with every request of this
        site only (HttpOnly, SameSite=Strict)."""
        if policy.open:
            return Response(status_code=204)
        if not policy.token_matches(token.strip()):
            raise HTTPException(401, "that token is not valid here")
        response = Response(status_code=204)
        response.set_cookie(SESSION_COOKIE, session_value(token.strip()), max_age=SESSION_SECONDS, httponly=True,
                            samesite="strict", secure=request.url.scheme == "https", path="/")
        return response

    @routes.delete("/api/session", status_code=204, include_in_schema=False)
    def sign_out() -> Response:
        response = Response(status_code=204)
        response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
        return response

    return routes
