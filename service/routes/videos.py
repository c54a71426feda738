"""The catalogue, one video with its summary and tracks, thumbnails, and the footage itself."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import FileResponse, RedirectResponse, Response

from service.context import ARCHIVE_CLASSES, ServiceContext, _footage_note, _video_path
from video_analysis.runtime.local_store import LocalFolderStore
from video_analysis.runtime.object_store import ObjectStoreError
from video_analysis.runtime.s3_store import S3Store
from video_analysis.store import catalog

log = logging.getLogger("service.app")


def validated_jpeg(ctx: ServiceContext, request: Request, table: str, where: str, key: tuple, missing: str) -> Response:
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


def footage_response(ctx: ServiceContext, partition_key: str) -> Response:
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


def router(ctx: ServiceContext) -> APIRouter:
    routes = APIRouter()

    @routes.get("/api/videos")
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

    @routes.get("/api/videos/{partition_key:path}/tracks/{track_id}/thumbnail.jpg")
    def thumbnail(request: Request, partition_key: str, track_id: int) -> Response:
        return validated_jpeg(ctx, request, "tracks", "partition_key = %s AND track_id = %s", (partition_key, track_id),
                              f"no thumbnail for track {track_id} of {partition_key}")

    @routes.get("/api/videos/{partition_key:path}/incidents/{scene}/scene.jpg")
    def incident_scene(request: Request, partition_key: str, scene: int) -> Response:
        """The incident's scene: the whole frame at its moment, its tracks boxed, the zones and lines drawn."""
        return validated_jpeg(ctx, request, "scene_frames", "partition_key = %s AND scene = %s", (partition_key, scene),
                              f"no scene for incident {scene} of {partition_key}")

    @routes.get("/api/videos/{partition_key:path}/thumbnail.jpg")
    def video_thumbnail(request: Request, partition_key: str) -> Response:
        return validated_jpeg(ctx, request, "videos", "partition_key = %s", (partition_key,),
                              f"no thumbnail for {partition_key}")

    @routes.get("/api/videos/{partition_key:path}/video")
    def footage(partition_key: str) -> Response:
        """The recording: range requests from the local file, or a presigned URL for S3."""
        return footage_response(ctx, partition_key)

    @routes.get("/api/videos/{partition_key:path}")
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

    return routes
