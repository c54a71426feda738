"""Find object versions that have not been seen yet, a bounded slice of the store at a time.

The position is a key to list after (S3's StartAfter), not a timestamp: it survives deleted keys
and never misses an object modified after the watermark, because a new version is simply a new
(key, version) pair. When a listing reaches the end the next scan wraps to the start, so every
object is revisited on each pass; what makes that safe is the ``known`` set (object versions
already registered), not the position.

The position always moves on. An object still being written is remembered in the cursor's
``pending`` list and looked at again on later scans, so an object that never settles (it keeps
growing, or its clock is in the future) never holds back the objects listed after it. An object is
settled when it was last modified ``settle_seconds`` ago, or when the scans have seen the same
version for ``settle_seconds`` (which is what decides for a modification time in the future).
Names that are not valid UTF-8 cannot be stored or shown; they are skipped, and reported once.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Container
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from video_analysis.runtime.keys import looks_like_video
from video_analysis.runtime.object_store import ObjectChangedError, ObjectInfo, ObjectStore, ObjectStoreError

log = logging.getLogger(__name__)

MAX_PENDING = 1000  # objects being written that a cursor remembers; more wait for the next pass
MAX_REPORTED = 1000  # unreadable names a cursor remembers having reported


@dataclass
class ScanCursor:
    """What a scan carries to the next one (the sensor stores it as JSON)."""

    start_after: str | None = None
    # key -> [version, first time a scan saw that version (ISO)]
    pending: dict[str, list[str]] = field(default_factory=dict)
    reported: list[str] = field(default_factory=list)  # unreadable names already reported

    @classmethod
    def from_json(cls, raw: str | None) -> ScanCursor:
        """An unreadable cursor restarts the pass: known versions are skipped anyway."""
        try:
            data = json.loads(raw) if raw else {}
            start_after = data.get("start_after")
            pending = {}
            for key, entry in dict(data.get("pending") or {}).items():
                version, seen = str(entry[0]), str(entry[1])
                datetime.fromisoformat(seen)  # a damaged entry drops the whole cursor, never a tick
                pending[str(key)] = [version, seen]
            return cls(
                start_after=start_after if isinstance(start_after, str) else None,
                pending=pending,
                reported=[str(name) for name in data.get("reported") or []],
            )
        except (ValueError, TypeError, AttributeError, IndexError, KeyError):
            return cls()

    def to_json(self) -> str:
        return json.dumps({"start_after": self.start_after, "pending": self.pending, "reported": self.reported})


@dataclass
class Scan:
    cursor: ScanCursor
    new: list[ObjectInfo] = field(default_factory=list)
    settling: list[str] = field(default_factory=list)  # still being written: looked at again later
    ignored: list[str] = field(default_factory=list)  # not video files by name
    unreadable: list[str] = field(default_factory=list)  # names first met this scan that are not UTF-8
    listed: int = 0

    @property
    def next_start_after(self) -> str | None:
        return self.cursor.start_after


def readable_name(key: str) -> bool:
    """Whether a key is valid UTF-8 (local file names can hold any bytes; the catalogue holds text)."""
    try:
        key.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def scan(
    store: ObjectStore,
    cursor: ScanCursor,
    known: Container[str],
    *,
    now: datetime,
    settle_seconds: float,
    limit: int,
    budget_s: float = 20.0,
) -> Scan:
    """One bounded step: a page of the listing, then a re-check of remembered unsettled objects.

    ``budget_s`` bounds the re-checks (one HEAD each), so a tick over a slow store stays short.
    """
    page = store.list_page(cursor.start_after, limit)
    deadline = time.monotonic() + budget_s  # after the listing, so a slow listing leaves the re-checks time
    pending = dict(cursor.pending)
    reported = list(cursor.reported)
    result = Scan(cursor=ScanCursor(page.next_start_after), listed=len(page.objects))
    settle = timedelta(seconds=settle_seconds)

    def judge(obj: ObjectInfo) -> None:
        if obj.partition_key in known:
            pending.pop(obj.key, None)
            return
        version, first_seen = pending.get(obj.key, [obj.version, now.isoformat()])
        if version != obj.version:  # it changed since the last look: it is still being written
            first_seen = now.isoformat()
        aged = timedelta(0) <= now - obj.last_modified and now - obj.last_modified >= settle
        steady = now - datetime.fromisoformat(first_seen) >= settle
        if aged or steady:
            pending.pop(obj.key, None)
            result.new.append(obj)
        else:
            pending[obj.key] = [obj.version, first_seen]
            result.settling.append(obj.key)

    listed_keys = set()
    for obj in page.objects:
        listed_keys.add(obj.key)
        if not readable_name(obj.key):
            if obj.key not in reported:
                result.unreadable.append(obj.key)
                reported.append(obj.key)
        elif not looks_like_video(obj.key):
            result.ignored.append(obj.key)
        else:
            judge(obj)

    for key in [k for k in pending if k not in listed_keys]:
        if time.monotonic() > deadline:
            break  # the rest are looked at first on the next tick
        pending[key] = pending.pop(key)  # looked at now: to the back of the line, so every key gets its turn
        try:
            judge(store.head(key))
        except ObjectChangedError:
            pending.pop(key, None)  # removed, or renamed by the uploader: nothing to wait for
        except ObjectStoreError as exc:
            log.warning("cannot look at %r again yet: %s", key, exc)

    if len(pending) > MAX_PENDING:  # the ones waited on longest go; the listing finds them again next time round
        log.warning("%d objects still being written are more than the %d remembered: forgetting %s, ...",
                    len(pending), MAX_PENDING, next(iter(pending)))
    result.cursor.pending = dict(list(pending.items())[-MAX_PENDING:])
    result.cursor.reported = reported[-MAX_REPORTED:]
    return result
