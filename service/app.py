"""The review service: search over what the pipeline wrote, one video's facts, the footage, live cameras.

One router per area (``service/routes``); this module assembles them with access control and error handling.
Everything runs in threads against a pooled database; the models load once (``ServiceContext``).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from starlette.middleware.trustedhost import TrustedHostMiddleware

from service import errors
from service.access import AccessMiddleware, AccessPolicy
from service.context import ServiceContext, Slots, answer, find  # noqa: F401 - what callers use
from service.routes import cameras, search, session, videos

STATIC = Path(__file__).with_name("static")


def create_app(ctx: ServiceContext, policy: AccessPolicy | None = None) -> FastAPI:
    """The API and the page. ``policy`` says who may use them (default: open, on loopback names only)."""
    policy = policy or AccessPolicy.for_bind("127.0.0.1", frozenset())
    app = FastAPI(title="reelgraph", summary="Search and review what reelgraph found in the footage.",
                  version="1")
    # outermost first: a wrong Host is refused before anything else, then control characters and sign-in
    app.add_middleware(AccessMiddleware, policy=policy)
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(policy.hosts))
    errors.install(app)
    answers, searches = Slots(ctx.max_answers, "answers"), Slots(ctx.max_searches, "searches")
    app.include_router(session.router(ctx, policy))
    app.include_router(search.router(ctx, searches, answers))
    app.include_router(videos.router(ctx))
    app.include_router(cameras.router(ctx))

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    @app.get("/cameras", include_in_schema=False)
    def cameras_page() -> FileResponse:
        return FileResponse(STATIC / "cameras.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app
