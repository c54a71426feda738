"""Object keys -> Dagster partition keys, and what a key tells about its footage.

A partition is one *object version*: the same key re-uploaded with new bytes is a new partition,
the same bytes uploaded twice are one. Partition keys are restricted to a safe alphabet (Dagster's
UI splits on commas, pipes and brackets) and bounded in length; whenever sanitizing changes a key, a
short hash of the original is appended so two different objects never collide.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import PurePosixPath

MAX_KEY_PART = 96
VERSION_CHARS = 12
VIDEO_EXTENSIONS = frozenset({".mp4", ".mov", ".m4v", ".mkv", ".avi", ".webm", ".ts", ".mpg", ".mpeg"})

_UNSAFE = re.compile(r"[^A-Za-z0-9._/-]+")
_CAMERA_KEY = re.compile(
    r"(?:^|/)cameras?/(?P<camera>[^/]+)/(?:.*/)?(?P<stamp>\d{4}-\d{2}-\d{2}[T_ ]\d{2}[-:]\d{2}[-:]\d{2})[^/]*$"
)


def _short_hash(text: str, chars: int = 8) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:chars]


def normalize_version(version: str) -> str:
    """An ETag or content hash reduced to a short, partition-safe token."""
    cleaned = re.sub(r"[^A-Za-z0-9]", "", version).lower()
    if not cleaned:
        raise ValueError(f"object version {version!r} has no usable characters")
    return cleaned[:VERSION_CHARS]


def partition_key_for(object_key: str, version: str) -> str:
    """The Dagster partition key of one object version, e.g. ``cameras/lobby/x.mp4@3f2a9c...``."""
    if not object_key or object_key.endswith("/"):
        raise ValueError(f"not an object key: {object_key!r}")
    sanitized = _UNSAFE.sub("_", object_key).strip("/")
    sanitized = re.sub(r"/{2,}", "/", sanitized).replace("..", "_")
    if sanitized != object_key or len(sanitized) > MAX_KEY_PART:
        keep = MAX_KEY_PART - 9
        sanitized = f"{sanitized[:keep]}~{_short_hash(object_key)}"
    return f"{sanitized}@{normalize_version(version)}"


def looks_like_video(object_key: str) -> bool:
    return PurePosixPath(object_key).suffix.lower() in VIDEO_EXTENSIONS


@dataclass(frozen=True)
class KeyFacts:
    camera: str | None
    recorded_at: datetime | None


def facts_from_key(object_key: str) -> KeyFacts:
    """Camera and recording start from keys like ``cameras/<camera>/<YYYY-MM-DDTHH-MM-SS>.mp4`` (UTC)."""
    match = _CAMERA_KEY.search(object_key)
    if not match:
        return KeyFacts(camera=None, recorded_at=None)
    stamp = re.sub(r"[T_ ]", "T", match["stamp"], count=1)
    date, time = stamp.split("T")
    try:
        recorded = datetime.strptime(f"{date}T{time.replace(':', '-')}", "%Y-%m-%dT%H-%M-%S")
    except ValueError:
        return KeyFacts(camera=match["camera"], recorded_at=None)
    return KeyFacts(camera=match["camera"], recorded_at=recorded.replace(tzinfo=timezone.utc))
