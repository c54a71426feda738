"""Freeing a disk below its floor: the oldest analysed footage without incidents on it expires early."""

from __future__ import annotations

from pathlib import Path

import psycopg

from video_analysis.runtime.object_store import ObjectStore
from video_analysis.store.retention_apply import RetentionResult, expire_footage
from video_analysis.store.retention_plan import AGED_COLUMNS, SETTLED, aged_videos


def free_space(conn: psycopg.Connection, store: ObjectStore, wanted_bytes: int, volume: Path) -> RetentionResult:
    """A disk below its floor: remove the oldest analysed footage without incidents that lies on that disk
    (facts kept, rows marked expired) until ``wanted_bytes`` are freed. Footage with incidents, footage not
    analysed yet, footage on another volume (the cold tier, an S3 bucket) is never removed here."""
    result = RetentionResult()
    root = getattr(store, "root", None)
    if root is None or not _same_volume(Path(root), Path(volume)):
        return result  # nothing removable there would free this volume
    rows = conn.execute(
        f"""SELECT {AGED_COLUMNS} FROM videos v JOIN summaries s USING (partition_key)
             WHERE v.source = 'local' AND v.footage = 'hot' AND s.incident_count = 0 AND {SETTLED}
             ORDER BY at, v.partition_key LIMIT 2000""").fetchall()  # noqa: S608
    for aged in aged_videos(rows):
        if result.expired_bytes >= wanted_bytes:
            break
        try:
            result.expired_bytes += expire_footage(conn, store, aged)
            result.expired += 1
        except Exception as exc:  # noqa: BLE001 - the next one may go
            result.failures.append(f"{aged.partition_key}: {exc}")
    return result


def _same_volume(a: Path, b: Path) -> bool:
    def device(path: Path) -> int:
        while not path.exists() and path != path.parent:
            path = path.parent
        return path.stat().st_dev

    return device(a) == device(b)
