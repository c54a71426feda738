"""Find object versions that have not been seen yet, a bounded slice of the store at a time.

The position is a key to list after (S3's StartAfter), not a timestamp: it survives deleted keys
and never misses an object modified after the watermark, because a new version is simply a new
(key, version) pair. When a listing reaches the end the next scan wraps to the start, so every
object is revisited on each pass; what makes that safe is the ``known`` set (object versions
already registered), not the position.
"""

from __future__ import annotations

from collections.abc import Container
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from video_analysis.runtime.keys import looks_like_video
from video_analysis.runtime.object_store import ObjectInfo, ObjectStore


@dataclass
class Scan:
    new: list[ObjectInfo] = field(default_factory=list)
    next_start_after: str | None = None
    settling: list[str] = field(default_factory=list)  # still being written: left for a later scan
    ignored: list[str] = field(default_factory=list)  # not video files by name
    listed: int = 0


def scan(
    store: ObjectStore,
    start_after: str | None,
    known: Container[str],
    *,
    now: datetime,
    settle_seconds: float,
    limit: int,
) -> Scan:
    page = store.list_page(start_after, limit)
    result = Scan(listed=len(page.objects))
    resume_after = start_after  # the key just before the first settling object, if any
    previous = start_after
    for obj in page.objects:
        if not looks_like_video(obj.key):
            result.ignored.append(obj.key)
        elif obj.partition_key in known:
            pass
        elif now - obj.last_modified < timedelta(seconds=settle_seconds):
            if not result.settling:
                resume_after = previous
            result.settling.append(obj.key)
        else:
            result.new.append(obj)
        previous = obj.key
    # Come back to the first unsettled object next time instead of waiting for a full pass.
    result.next_start_after = resume_after if result.settling else page.next_start_after
    return result
