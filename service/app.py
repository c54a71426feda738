"""HTTP API and web page over what the pipeline found.

`create_app` takes everything it serves from a `ServiceContext` built once at start-up (database, models,
object store), so a query pays for a text embedding and a few SQL statements, never for a model load.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Annotated
from urllib.parse import quote, urlencode

import psycopg
from fastapi import Body, FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from psycopg_pool import PoolTimeout
from starlette.middleware.trustedhost import TrustedHostMiddleware

from service.access import SESSION_COOKIE, SESSION_SECONDS, AccessMiddleware, AccessPolicy, session_value
from video_analysis.runtime.disk import DiskFloor
from video_analysis.runtime.object_store import LocalFolderStore, ObjectStore, ObjectStoreError, S3Store
from video_analysis.search import EventHit, Searcher, SearchFilters, SearchHit, similar_tracks
from video_analysis.store import cameras, catalog, storage
from video_analysis.store.db import Database, PooledDatabase, store_identity

log = logging.getLogger(__name__)

STATIC = Path(__file__).with_name("static")
MAX_QUERY_CHARS = 300
MAX_LIMIT = 100


@dataclass
class ServiceContext:
    """What the service needs, loaded once."""

    database: Database | PooledDatabase
    store: ObjectStore
    text_embedder: object
    text_model_name: str
    image_embedder: object | None = None
    image_model_name: str | None = None
    min_similarity: float | None = None
    min_summary_similarity: float | None = None
    min_incident_similarity: float | None = None
    answer_writer: object | None = None  # a language model with write_answer(question, facts) (full profile)
    answer_writer_name: str | None = None
    writer_lock: threading.Lock = field(default_factory=threading.Lock)
    dagster_url: str = "http://127.0.0.1:3000"
    # the second side of each search (events, while the request's thread searches tracks)
    workers: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(8, "search"))
    # at most this many answers and searches at once; beyond them a request gets 429 (Settings)
    max_answers: int = 2
    max_searches: int = 8
    disk_floor: DiskFloor = field(default_factory=DiskFloor)  # the storage view's days left count to it

    def __post_init__(self):
        self.searcher = Searcher(self.database, self.text_embedder, self.text_model_name, self.image_embedder,
                                 self.image_model_name, self.min_similarity, self.min_summary_similarity,
                                 self.min_incident_similarity, self.workers)
        self.text_embedder, self.image_embedder = self.searcher.text_embedder, self.searcher.image_embedder


def _video_path(partition_key: str) -> str:
    return f"/api/videos/{quote(partition_key, safe='/@~')}"


def _hit(hit: SearchHit, ctx: ServiceContext) -> dict:
    base = _video_path(hit.partition_key)
    dagster = f"{ctx.dagster_url.rstrip('/')}/assets/tracks?{urlencode({'partition': hit.partition_key})}"
    return {**hit.as_dict(),
            "thumbnail_url": f"{base}/tracks/{hit.track_id}/thumbnail.jpg" if hit.has_thumbnail
                             else f"{base}/thumbnail.jpg",
            "clip_url": f"{base}/video#t={hit.start_s}", "dagster_url": dagster,
            "similar_url": f"/api/similar/{quote(hit.partition_key, safe='/@~')}/{hit.track_id}"}


def _event(hit: EventHit, ctx: ServiceContext) -> dict:
    base = _video_path(hit.partition_key)
    thumbnail = (f"{base}/tracks/{hit.track_ids[0]}/thumbnail.jpg" if hit.track_ids
                 else f"{base}/thumbnail.jpg")
    dagster = f"{ctx.dagster_url.rstrip('/')}/assets/summaries?{urlencode({'partition': hit.partition_key})}"
    return {**hit.as_dict(), "thumbnail_url": thumbnail, "clip_url": f"{base}/video#t={hit.start_s}",
            "dagster_url": dagster}


def _utc(moment: datetime | None) -> datetime | None:
    """A time without a zone is UTC, as everywhere in reelgraph (keys, the CLI)."""
    return moment.replace(tzinfo=timezone.utc) if moment is not None and moment.tzinfo is None else moment


ARCHIVE_CLASSES = ("GLACIER", "DEEP_ARCHIVE")  # S3 classes read only after a restore
NOTHING_MATCHES = "nothing matches: nothing found is close enough in meaning or shares its words"


def find(ctx: ServiceContext, q: str, filters: SearchFilters, kind: str | None = None, limit: int = 20) -> list[dict]:
    """Tracks, incidents and summaries matching ``q``, best first, as the API returns them: where to see each,
    and where its footage is."""
    hits = ctx.searcher.find(q, filters, kind, limit)
    return _with_footage(ctx, [_hit(h, ctx) if h.kind == "track" else _event(h, ctx) for h in hits])


def _footage_note(state: str, at: datetime | None) -> str | None:
    if state != "expired":
        return None
    return f"the footage was removed by retention{f' on {at.date().isoformat()}' if at else ''}; its facts remain"


def _with_footage(ctx: ServiceContext, hits: list[dict]) -> list[dict]:
    """Each hit says where its footage is; one whose footage expired has no clip to play, and says why."""
    if not hits:
        return hits
    with ctx.database.session() as conn:
        states = catalog.footage_states(conn, {hit["partition_key"] for hit in hits})
    for hit in hits:
        state, at = states.get(hit["partition_key"], ("hot", None))
        hit["footage"] = state
        if state == "expired":
            hit["clip_url"], hit["footage_note"] = None, _footage_note(state, at)
    return hits


def answer(ctx: ServiceContext, question: str, filters: SearchFilters, facts: int = 5) -> dict:
    """A grounded answer: built from the best few hits only, every sentence citing its video and time."""
    writer = ctx.answer_writer.write_answer if ctx.answer_writer is not None else None
    found = ctx.searcher.answer(question, filters, writer, ctx.answer_writer_name or "language model", facts,
                                writer_lock=ctx.writer_lock)
    with ctx.database.session() as conn:
        states = catalog.footage_states(conn, {citation.partition_key for citation in found.citations})
    expired = {key for key, (state, _) in states.items() if state == "expired"}
    return {"question": question, "answer": found.text, "generator": found.generator, "note": found.note,
            "citations": [{**citation.__dict__, "clip_url": None if citation.partition_key in expired
                           else f"{_video_path(citation.partition_key)}/video#t={citation.start_s}"}
                          for citation in found.citations]}


class Busy(Exception):
    """More requests of a kind than the service serves at once."""


class Slots:
    """At most ``size`` requests of one kind at once; one more is refused at once (429), not queued, so a
    burst of slow requests cannot take every worker thread from health checks, thumbnails and the page."""

    def __init__(self, size: int, what: str):
        self._free, self.what = threading.BoundedSemaphore(max(1, size)), what

    def __enter__(self):
        if not self._free.acquire(blocking=False):
            raise Busy(self.what)
        return self

    def __exit__(self, *_):
        self._free.release()


def create_app(ctx: ServiceContext, policy: AccessPolicy | None = None) -> FastAPI:
    """The API and the page. ``policy`` says who may use them (default: open, on loopback names only)."""
    policy = policy or AccessPolicy.for_bind("127.0.0.1", frozenset())
    app = FastAPI(title="reelgraph", summary="Search and review what reelgraph found in the footage.",
                  version="1")
    # outermost first: a wrong Host is refused before anything else, then control characters and sign-in
    app.add_middleware(AccessMiddleware, policy=policy)
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(policy.hosts))
    answers, searches = Slots(ctx.max_answers, "answers"), Slots(ctx.max_searches, "searches")
    database_name: list[str] = []

    @app.exception_handler(Busy)
    async def busy(_request: Request, exc: Busy) -> JSONResponse:
        return JSONResponse({"detail": f"too many {exc.args[0]} at once; retry in a few seconds"}, status_code=429,
                            headers={"Retry-After": "5"})

    @app.exception_handler(psycopg.errors.QueryCanceled)
    async def too_long(_request: Request, exc: Exception) -> JSONResponse:
        log.warning("a request's statement was cancelled: %s", exc)
        return JSONResponse({"detail": "the database took longer than this service allows for one request; "
                                       "narrow it (camera, since, until) or retry"}, status_code=503)

    @app.exception_handler(PoolTimeout)
    async def no_connection(_request: Request, exc: Exception) -> JSONResponse:
        log.warning("no database connection was free in time: %s", exc)
        return JSONResponse({"detail": "the service is busy; retry in a few seconds"}, status_code=503,
                            headers={"Retry-After": "5"})

    @app.exception_handler(psycopg.errors.LockNotAvailable)
    async def locked(_request: Request, exc: Exception) -> JSONResponse:
        log.warning("a request waited too long on a lock: %s", exc)
        return JSONResponse({"detail": "the database is busy (a migration or an index build); retry shortly"},
                            status_code=503, headers={"Retry-After": "10"})

    @app.exception_handler(RequestValidationError)
    async def bad_parameters(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [f"{'.'.join(str(p) for p in error['loc'][1:]) or 'request'}: {error['msg']}"
                    for error in exc.errors()]
        return JSONResponse({"detail": "; ".join(problems)}, status_code=422)

    @app.exception_handler(Exception)
    async def unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("request failed")
        return JSONResponse({"detail": f"internal error ({type(exc).__name__}); see the service log"},
                            status_code=500)

    @app.get("/api/health")
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

    @app.post("/api/session", status_code=204, include_in_schema=False)
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

    @app.delete("/api/session", status_code=204, include_in_schema=False)
    def sign_out() -> Response:
        response = Response(status_code=204)
        response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
        return response

    @app.get("/api/search")
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

    @app.get("/api/ask")
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

    @app.get("/api/videos")
    def videos(limit: Annotated[int, Query(ge=1, le=10_000)] = 1000) -> dict:
        with ctx.database.session() as conn:
            found = catalog.list_status(conn, limit=limit)
        return {"videos": [{
            "partition_key": v.partition_key, "object_key": v.object_key, "camera": v.camera,
            "recorded_at": v.recorded_at.isoformat() if v.recorded_at else None, "status": v.status,
            "error": v.error, "duration_s": v.duration_s, "covered_s": v.covered_s,
            "superseded_by": v.superseded_by, "stages": v.stages, "url": _video_path(v.partition_key),
            "footage": v.footage,
        } for v in found]}

    def validated_jpeg(request: Request, table: str, where: str, key: tuple, missing: str) -> Response:
        """A thumbnail with its digest as the validator: track ids restart when a stage re-runs, so the
        browser asks again each time (no-cache) and gets 304 while the picture is the same."""
        seen = (request.headers.get("if-none-match") or "").strip()
        with ctx.database.session() as conn:
            row = conn.execute(f"SELECT md5(thumbnail_jpeg), CASE WHEN md5(thumbnail_jpeg) = %s THEN NULL "
                               f"ELSE thumbnail_jpeg END FROM {table} WHERE {where}",
                               (seen.strip('"'), *key)).fetchone()
        if row is None or row[0] is None:
            raise HTTPException(404, missing)
        headers = {"ETag": f'"{row[0]}"', "Cache-Control": "private, no-cache"}
        if row[1] is None:
            return Response(status_code=304, headers=headers)
        return Response(bytes(row[1]), media_type="image/jpeg", headers=headers)

    @app.get("/api/videos/{partition_key:path}/tracks/{track_id}/thumbnail.jpg")
    def thumbnail(request: Request, partition_key: str, track_id: int) -> Response:
        return validated_jpeg(request, "tracks", "partition_key = %s AND track_id = %s", (partition_key, track_id),
                              f"no thumbnail for track {track_id} of {partition_key}")

    @app.get("/api/videos/{partition_key:path}/thumbnail.jpg")
    def video_thumbnail(request: Request, partition_key: str) -> Response:
        return validated_jpeg(request, "videos", "partition_key = %s", (partition_key,),
                              f"no thumbnail for {partition_key}")

    @app.get("/api/videos/{partition_key:path}/video")
    def footage(partition_key: str) -> Response:
        """The recording: range requests from the local file, or a presigned URL for S3."""
        # What a client reads says which video, never where the store keeps it (paths, buckets): those go
        # to the log.
        with ctx.database.session() as conn:
            try:
                obj = catalog.object_for(conn, partition_key)
            except catalog.UnknownVideoError as exc:
                raise HTTPException(404, f"no video {partition_key!r}") from exc
            state, at = catalog.footage_states(conn, [partition_key]).get(partition_key, ("hot", None))
            storage_class = conn.execute("SELECT storage_class FROM videos WHERE partition_key = %s",
                                         (partition_key,)).fetchone()[0]
        if state == "expired":
            raise HTTPException(410, f"{partition_key!r}: {_footage_note(state, at)}")
        if storage_class in ARCHIVE_CLASSES:  # a presigned URL would fail in the browser without saying why
            raise HTTPException(409, f"{partition_key!r} is archived (S3 {storage_class}): restore it first "
                                     "(aws s3api restore-object), then play it")
        gone = f"the footage of {partition_key!r} is not in the store this service reads"
        if obj.source != ctx.store.source:
            log.info("%s is in a %s store; this service reads %s", obj.uri, obj.source, ctx.store.describe())
            raise HTTPException(404, gone)
        try:
            current = ctx.store.head(obj.key)
        except ObjectStoreError as exc:
            log.info("%s: %s", obj.uri, exc)
            raise HTTPException(404, gone) from exc
        if current.version != obj.version:  # the key holds newer bytes: this version's footage is gone
            raise HTTPException(410, f"{partition_key!r} was replaced by a newer upload ({current.partition_key})")
        if isinstance(ctx.store, S3Store):
            return RedirectResponse(ctx.store.presigned_url(obj), status_code=307)
        if isinstance(ctx.store, LocalFolderStore):
            path = ctx.store.path_of(obj.key).resolve()
            roots = [r.resolve() for r in (ctx.store.root, ctx.store.cold_root) if r is not None]
            if path.is_file() and any(path.is_relative_to(root) for root in roots):
                return FileResponse(path, media_type="video/mp4" if path.suffix.lower() in (".mp4", ".m4v", ".mov")
                                    else None)
        log.info("%s is no longer in %s", obj.uri, ctx.store.describe())
        raise HTTPException(404, gone)

    @app.get("/api/videos/{partition_key:path}")
    def video(partition_key: str) -> dict:
        with ctx.database.session() as conn:
            found = catalog.list_status(conn, limit=1, partition_key=partition_key)
            if not found:
                raise HTTPException(404, f"no video {partition_key!r}")
            summary = conn.execute("SELECT safety_score, summary, incidents, generator FROM summaries "
                                   "WHERE partition_key = %s", (partition_key,)).fetchone()
            tracks = conn.execute(
                "SELECT t.track_id, t.class_name, t.first_t, t.last_t, a.description FROM tracks t "
                "LEFT JOIN track_attributes a USING (partition_key, track_id) WHERE t.partition_key = %s "
                "ORDER BY t.first_t, t.track_id", (partition_key,)).fetchall()
        v = found[0]
        base = _video_path(partition_key)
        return {
            "partition_key": v.partition_key, "object_key": v.object_key, "camera": v.camera, "status": v.status,
            "recorded_at": v.recorded_at.isoformat() if v.recorded_at else None, "duration_s": v.duration_s,
            "covered_s": v.covered_s, "decode_errors": v.decode_errors, "notes": v.notes, "stages": v.stages,
            "superseded_by": v.superseded_by, "footage": v.footage,
            "footage_note": _footage_note(v.footage, v.footage_at),
            "video_url": None if v.footage == "expired" else f"{base}/video",
            "summary": None if summary is None else {"safety_score": summary[0], "text": summary[1],
                                                     "incidents": summary[2], "generator": summary[3]},
            "tracks": [{"track_id": t[0], "class_name": t[1], "start_s": round(t[2], 2), "end_s": round(t[3], 2),
                        "text": t[4], "thumbnail_url": f"{base}/tracks/{t[0]}/thumbnail.jpg"} for t in tracks],
        }

    @app.get("/api/similar/{partition_key:path}/{track_id}")
    def similar(partition_key: str, track_id: int, limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 10) -> dict:
        with ctx.database.session() as conn:
            hits = similar_tracks(conn, partition_key, track_id, limit=limit)
        return {"partition_key": partition_key, "track_id": track_id,
                "hits": _with_footage(ctx, [_hit(h, ctx) for h in hits])}

    @app.get("/api/cameras")
    def camera_list() -> dict:
        """Live cameras: recording or not, last packet and segment, gaps in the last 24 h, latest thumbnail."""
        with ctx.database.session() as conn:
            found = cameras.camera_health(conn)
            latest = dict(conn.execute(
                """SELECT DISTINCT ON (camera) camera, partition_key FROM videos
                   WHERE camera = ANY(%s) AND thumbnail_jpeg IS NOT NULL AND superseded_by IS NULL
                   ORDER BY camera, recorded_at DESC NULLS LAST""", ([c.name for c in found],)).fetchall())
        return {"cameras": [{**c.as_dict(), "latest_partition": latest.get(c.name),
                             "thumbnail_url": f"{_video_path(latest[c.name])}/thumbnail.jpg"
                             if c.name in latest else None} for c in found]}

    @app.get("/api/storage")
    def storage_at_a_glance(days: Annotated[int, Query(ge=1, le=366)] = 14) -> dict:
        """Footage bytes per camera, day and tier; each tier's free space and the days left at the current rate."""
        with ctx.database.session() as conn:
            return storage.report(conn, ctx.store, ctx.disk_floor, days)

    @app.get("/api/cameras/{camera}/day")
    def camera_day(camera: str, day: Annotated[date | None, Query(description="UTC day; today if absent")] = None
                   ) -> dict:
        """One camera's day: segments with safety scores, incidents and gaps, each with where to play it."""
        day = day or datetime.now(timezone.utc).date()
        if day >= date.max:  # its end, the next midnight, is past the last day a date can hold
            raise HTTPException(422, f"day must be before {date.max.isoformat()}")
        with ctx.database.session() as conn:
            known = conn.execute("SELECT 1 FROM cameras WHERE name = %s UNION SELECT 1 FROM videos WHERE camera = %s "
                                 "LIMIT 1", (camera, camera)).fetchone()
            if not known:
                raise HTTPException(404, f"no camera {camera!r}")
            found = cameras.camera_day(conn, camera, day)
        for item in found["segments"] + found["incidents"]:
            item["video_url"] = f"{_video_path(item['partition_key'])}/video"
        return found

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    @app.get("/cameras", include_in_schema=False)
    def cameras_page() -> FileResponse:
        return FileResponse(STATIC / "cameras.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app
