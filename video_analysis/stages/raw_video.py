"""raw_video: fetch one object version, check that it really decodes, and catalogue it."""

from __future__ import annotations

import logging

from video_analysis.runtime.object_store import ObjectChangedError, ObjectStore
from video_analysis.stages import StageResult
from video_analysis.store import catalog
from video_analysis.store.db import Database
from video_analysis.vision.probe import DEFAULT_MAX_PIXELS, VideoProbeError, probe_video

log = logging.getLogger(__name__)

STAGE = "raw_video"


def run(db: Database, partition_key: str, store: ObjectStore, *, max_pixels: int = DEFAULT_MAX_PIXELS,
        run_id: str | None = None) -> StageResult:
    """Probe the video; an unusable one is marked failed with the reason (backfills then leave it out).

    A store that is down or refuses access says nothing about the video: that error propagates and the
    video stays as it was, to be retried.
    """
    with db.session() as conn:
        obj = catalog.object_for(conn, partition_key)
        footage, since = catalog.footage_states(conn, [partition_key]).get(partition_key, ("hot", None))
    if footage == "expired":  # not marked failed: the probe's figures and thumbnail stay, as its facts do
        raise ObjectChangedError(f"{obj.uri}: its footage was removed by retention"
                                 f"{f' on {since.date().isoformat()}' if since else ''}; its facts are kept, and "
                                 "there is nothing to re-run")
    try:
        with store.local_copy(obj) as path:
            probe = probe_video(path, max_pixels)
    except (VideoProbeError, ObjectChangedError) as exc:
        with db.session() as conn:
            catalog.mark_failed(conn, partition_key, str(exc))
        raise type(exc)(f"{obj.uri}: {exc}") from exc
    with db.session() as conn:
        catalog.save_probe(conn, partition_key, probe)
        catalog.record_stage(conn, partition_key, STAGE, "done", row_count=1, run_id=run_id)
    log.info("%s: %d frames at %.2f fps, %dx%d", obj.uri, probe.frame_count, probe.fps, probe.width, probe.height)
    return StageResult(rows=1, metadata={
        "object": obj.uri,
        "container": probe.container,
        "codec": probe.codec,
        "duration_s": probe.duration_s,
        "fps": probe.fps,
        "width": probe.width,
        "height": probe.height,
        "status": probe.status,
        "notes": probe.notes,
        "rotation": probe.rotation,
        "indexed_s": probe.indexed_s,
        "frames": probe.frame_count,
        "header_frames": probe.header_frame_count,
        "size_bytes": probe.size_bytes,
        "sha256": probe.sha256,
        "thumbnail": probe.thumbnail_jpeg,
    })
