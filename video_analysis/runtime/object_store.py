"""Where raw footage lives, as every caller sees it: the store interface, what it lists, and its errors.

The stores: a local inbox folder by default (`local_store.LocalFolderStore`), any S3-compatible bucket when
configured (`s3_store.S3Store`, its downloads in `download_cache.DownloadCache`).

Both stores list in key order with a ``start_after`` position, so a caller can page through a
bucket of any size a bounded slice at a time, and both fetch one object version into a local
file by streaming (an S3 object is downloaded once into the cache, never the whole bucket).

Stages read footage through ``local_copy``, which holds the file while they use it: the S3 download
cache is bounded by size and evicts the least recently used files first, but never a file that a
step holds (a shared ``flock``, released by the kernel even when the step is killed).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

from video_analysis.runtime.keys import partition_key_for

CHUNK_BYTES = 8 * 1024 * 1024


class ObjectStoreError(RuntimeError):
    """The store could not list or fetch an object."""


class ObjectChangedError(ObjectStoreError):
    """The object was replaced or removed after it was listed: this version no longer exists."""


class ObjectStoreAccessError(ObjectStoreError):
    """The store refused us (permissions, expired or wrong credentials): fix access, then re-run."""


class ArchivedFootageError(ObjectStoreError):
    """The object is in an S3 archive class: it reads only after a restore (retrying sooner does not help)."""


class ObjectStoreUnavailableError(ObjectStoreError):
    """The store failed transiently (throttling, 5xx, a dropped connection) after its retries: try again."""


@dataclass(frozen=True)
class ObjectInfo:
    """One version of one stored object, as listed."""

    key: str
    version: str
    size: int
    last_modified: datetime
    source: str  # "local" or "s3"
    bucket: str | None = None
    etag: str | None = None  # the store's full ETag (S3), used to pin downloads to this version

    @property
    def partition_key(self) -> str:
        return partition_key_for(self.key, self.version)

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}" if self.source == "s3" else self.key


@dataclass(frozen=True)
class ListingPage:
    objects: list[ObjectInfo]
    # Key to continue after on the next call; None once the listing reached the end.
    next_start_after: str | None


class ObjectStore(Protocol):
    """What stages, sensors and the recorder ask of a store, local or S3."""

    source: str

    def list_page(self, start_after: str | None, limit: int) -> ListingPage: ...

    def fetch(self, obj: ObjectInfo) -> Path: ...

    def local_copy(self, obj: ObjectInfo): ...  # context manager: the local file, held while in use

    def put(self, local_path: Path, key: str) -> ObjectInfo: ...

    def delete(self, obj: ObjectInfo) -> bool: ...  # the object and any cached copy; False when it was gone

    def head(self, key: str) -> ObjectInfo: ...

    def describe(self) -> str: ...
