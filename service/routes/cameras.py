"""Live cameras, one camera's day, and storage at a glance."""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query

from service.context import ServiceContext, _video_path
from video_analysis.store import cameras, storage
from video_analysis.store.camera_counts import camera_day_counts


def router(ctx: ServiceContext) -> APIRouter:
    routes = APIRouter()

    @routes.get("/api/cameras")
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

    @routes.get("/api/storage")
    def storage_at_a_glance(days: Annotated[int, Query(ge=1, le=366)] = 14) -> dict:
        """Footage bytes per camera, day and tier; each tier's free space and the days left at the current rate."""
        with ctx.database.session() as conn:
            return storage.report(conn, ctx.store, ctx.disk_floor, days)

    def known_day(conn, camera: str, day: date | None) -> date:
        day = day or datetime.now(timezone.utc).date()
        if day >= date.max:  # its end, the next midnight, is past the last day a date can hold
            raise HTTPException(422, f"day must be before {date.max.isoformat()}")
        known = conn.execute("SELECT 1 FROM cameras WHERE name = %s UNION SELECT 1 FROM videos WHERE camera = %s "
                             "LIMIT 1", (camera, camera)).fetchone()
        if not known:
            raise HTTPException(404, f"no camera {camera!r}")
        return day

    @routes.get("/api/cameras/{camera}/day")
    def camera_day(camera: str, day: Annotated[date | None, Query(description="UTC day; today if absent")] = None
                   ) -> dict:
        """One camera's day: segments with safety scores, incidents and gaps, each with where to play it."""
        with ctx.database.session() as conn:
            found = cameras.camera_day(conn, camera, known_day(conn, camera, day))
        for item in found["segments"] + found["incidents"]:
            item["video_url"] = f"{_video_path(item['partition_key'])}/video"
        return found

    @routes.get("/api/cameras/{camera}/counts")
    def camera_counts(camera: str, day: Annotated[date | None, Query(description="UTC day; today if absent")] = None
                      ) -> dict:
        """One camera's day in counts: people, line crossings and zone entries per hour, people in view per
        5 minutes (peak and mean), and each zone's stays."""
        with ctx.database.session() as conn:
            return camera_day_counts(conn, camera, known_day(conn, camera, day))

    return routes
