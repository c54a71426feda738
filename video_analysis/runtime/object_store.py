"""Where raw footage lives: a local inbox folder by default, any S3-compatible bucket when configured.

Both stores list in key order with a ``start_after`` position, so a caller can page through a
bucket of any size a bounded slice at a time, and both fetch one object version into a local
file by streaming (an S3 object is downloaded once into the cache, never the whole bucket).

Stages read footage through ``local_copy``, which holds the file while they use it: the S3 download
cache is bounded by size and evicts the least recently used files first, but never a file that a
step holds (a shared ``flock``, released by the kernel even when the step is killed).
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Protocol

from video_analysis.runtime.keys import normalize_version, partition_key_for

log = logging.getLogger(__name__)

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


# S3 error codes, by what they mean for the video.
_GONE_CODES = {"PreconditionFailed", "NoSuchKey", "404", "412"}
_ACCESS_CODES = {"AccessDenied", "403", "InvalidAccessKeyId", "ExpiredToken", "SignatureDoesNotMatch",
                 "InvalidToken", "AllAccessDisabled", "AccountProblem"}


def s3_error(exc: Exception, what: str) -> ObjectStoreError:
    """The store error a botocore failure stands for: gone, refused, or transient."""
    code = getattr(exc, "response", {}).get("Error", {}).get("Code", "") if hasattr(exc, "response") else ""
    if code in _GONE_CODES:
        return ObjectChangedError(f"{what}: changed or removed since it was listed")
    if code in _ACCESS_CODES:
        return ObjectStoreAccessError(f"{what}: access refused ({code}); fix the credentials or policy, then re-run")
    return ObjectStoreUnavailableError(f"{what}: the store is unavailable ({code or type(exc).__name__}: {exc})")


def s3_client(endpoint_url: str | None, region_name: str | None, *, quick: bool = False):
    """A client that rides out throttling and 5xx answers with adaptive, backed-off retries.

    ``quick``: fewer attempts and shorter timeouts, for callers that must answer within seconds (a sensor
    tick); what they miss, their next call picks up.
    """
    import boto3
    from botocore.config import Config

    attempts, timeout = (3, 10) if quick else (8, 60)
    config = Config(retries={"max_attempts": attempts, "mode": "adaptive"}, connect_timeout=min(10, timeout),
                    read_timeout=timeout)
    return boto3.client("s3", endpoint_url=endpoint_url or None, region_name=region_name, config=config)


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
    source: str

    def list_page(self, start_after: str | None, limit: int) -> ListingPage: ...

    def fetch(self, obj: ObjectInfo) -> Path: ...

    def local_copy(self, obj: ObjectInfo): ...  # context manager: the local file, held while in use

    def put(self, local_path: Path, key: str) -> ObjectInfo: ...

    def delete(self, obj: ObjectInfo) -> bool: ...  # the object and any cached copy; False when it was gone

    def head(self, key: str) -> ObjectInfo: ...

    def describe(self) -> str: ...


def local_version(size: int, mtime_ns: int) -> str:
    """Cheap version token for a local file; the content hash is taken later, when probing."""
    return hashlib.sha1(f"{size}:{mtime_ns}".encode()).hexdigest()[:12]


class LocalFolderStore:
    """A folder on disk treated as a bucket: keys are POSIX paths relative to the folder.

    ``cold_root`` is the cold tier (another folder or volume): retention moves old footage there under the same
    key; reads find it there, and only the hot folder is listed for new uploads."""

    source = "local"

    def __init__(self, root: Path, cold_root: Path | None = None):
        self.root = Path(root)
        self.cold_root = Path(cold_root) if cold_root else None
        if self.cold_root is not None and self.cold_root.resolve().is_relative_to(self.root.resolve()):
            raise ValueError(f"the cold tier {self.cold_root} is inside the inbox {self.root}: its footage would be "
                             "listed as new uploads; put it beside the inbox (REELGRAPH_COLD_DIR)")

    def describe(self) -> str:
        return f"local folder {self.root}"

    def _info(self, path: Path, key: str | None = None) -> ObjectInfo:
        stat = path.stat()
        return ObjectInfo(
            key=key or path.relative_to(self.root).as_posix(),
            version=local_version(stat.st_size, stat.st_mtime_ns),
            size=stat.st_size,
            last_modified=datetime.fromtimestamp(stat.st_mtime, tz=timezone.utc),
            source=self.source,
        )

    def path_of(self, key: str) -> Path:
        """Where the key's file is now: the hot folder, else the cold tier (the hot path when in neither)."""
        hot = self.root / key
        if not hot.is_file() and self.cold_root is not None and (self.cold_root / key).is_file():
            return self.cold_root / key
        return hot

    def _walk(self) -> Iterator[Path]:
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            for name in filenames:
                if not name.startswith("."):  # hidden files are partial uploads / editor temp files
                    yield Path(dirpath) / name

    def list_page(self, start_after: str | None, limit: int) -> ListingPage:
        if not self.root.exists():
            return ListingPage([], None)
        keys = sorted(p.relative_to(self.root).as_posix() for p in self._walk())
        if start_after is not None:
            keys = [k for k in keys if k > start_after]
        page, more = keys[:limit], len(keys) > limit
        objects = []
        for key in page:
            try:
                objects.append(self._info(self.root / key))
            except FileNotFoundError:
                continue  # removed between walk and stat
        return ListingPage(objects, page[-1] if more and page else None)

    def head(self, key: str) -> ObjectInfo:
        path = self.path_of(key)
        if not path.is_file():
            raise ObjectChangedError(f"{key!r} is not in {self.describe()}")
        return self._info(path, key)

    def fetch(self, obj: ObjectInfo) -> Path:
        current = self.head(obj.key)
        if current.version != obj.version:
            raise ObjectChangedError(
                f"{obj.key!r} changed since it was listed (version {obj.version} is now {current.version})"
            )
        return self.path_of(obj.key)

    @contextmanager
    def local_copy(self, obj: ObjectInfo) -> Iterator[Path]:
        yield self.fetch(obj)  # the inbox file itself: nothing to evict

    def delete(self, obj: ObjectInfo) -> bool:
        """The file in every tier, whatever its version now (erasure is of the key's footage); False when it was
        gone."""
        removed = False
        for root in (self.root, self.cold_root):
            if root is None:
                continue
            try:
                (root / obj.key).unlink()
                removed = True
            except FileNotFoundError:
                pass
        return removed

    def move_to_cold(self, obj: ObjectInfo) -> str | None:
        """Move the file to the cold tier under the same key, keeping its times (and so its version): a copy
        under a hidden name renamed into place, then the hot file removed. Returns the tier's name."""
        if self.cold_root is None:
            return None
        hot, cold = self.root / obj.key, self.cold_root / obj.key
        if not hot.is_file():
            if cold.is_file():
                return "cold folder"  # moved by a sweep that stopped before saying so
            raise ObjectChangedError(f"{obj.key!r} is not in {self.describe()}")
        cold.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=cold.parent, prefix=".moving-", delete=False) as tmp:
            pass
        try:
            shutil.copy2(hot, tmp.name)
            with open(tmp.name, "rb") as handle:
                os.fsync(handle.fileno())
            os.replace(tmp.name, cold)
            folder = os.open(cold.parent, os.O_RDONLY)
            try:
                os.fsync(folder)  # the rename is on disk before the only other copy goes
            finally:
                os.close(folder)
        except BaseException:
            Path(tmp.name).unlink(missing_ok=True)
            raise
        hot.unlink()
        return "cold folder"

    def put(self, local_path: Path, key: str) -> ObjectInfo:
        target = self.root / key
        target.parent.mkdir(parents=True, exist_ok=True)
        # Copy under a hidden name then rename, so a listing never sees a half-written file.
        with tempfile.NamedTemporaryFile(dir=target.parent, prefix=".upload-", delete=False) as tmp:
            with open(local_path, "rb") as src:
                shutil.copyfileobj(src, tmp, CHUNK_BYTES)
        os.replace(tmp.name, target)
        return self._info(target)


class DownloadCache:
    """Downloaded files under one folder, bounded by total size; least recently used go first."""

    def __init__(self, root: Path, max_bytes: int):
        self.root = Path(root)
        self.max_bytes = max_bytes

    @contextmanager
    def hold(self, path: Path) -> Iterator[bool]:
        """Hold ``path`` against eviction; yields False when it is not there (or was just evicted)."""
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            yield False
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)
            yield os.fstat(fd).st_nlink > 0  # evicted between open and lock: gone
        finally:
            os.close(fd)

    def make_room(self, incoming: int) -> None:
        """Evict unheld files, least recently used first, until ``incoming`` more bytes fit."""
        files = []
        for folder, _dirs, names in os.walk(self.root):
            for name in names:
                path = Path(folder) / name
                try:
                    stat = path.stat()
                except FileNotFoundError:
                    continue
                files.append((stat.st_mtime_ns, stat.st_size, path))
        total = sum(size for _, size, _ in files)
        for _, size, path in sorted(files):
            if total + incoming <= self.max_bytes:
                return
            try:  # a download in progress holds its .part file: one left by a killed step does not
                fd = os.open(path, os.O_RDONLY)
            except FileNotFoundError:
                total -= size
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue  # a running step reads it
            try:
                path.unlink(missing_ok=True)
                total -= size
                log.info("evicted %s (%d bytes) from the download cache", path, size)
            finally:
                os.close(fd)
        if total + incoming > self.max_bytes:
            log.warning("the download cache holds %d bytes in files in use; %d more go over its %d-byte bound",
                        total, incoming, self.max_bytes)


class S3Store:
    """An S3 bucket (or MinIO/LocalStack/moto through ``endpoint_url``) under an optional prefix."""

    source = "s3"

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        cache_dir: Path,
        cache_max_bytes: int = 20 * 1024**3,
        endpoint_url: str | None = None,
        region_name: str | None = None,
        client=None,
        quick: bool = False,
    ):
        self.bucket = bucket
        self.prefix = prefix.lstrip("/")
        self.cache_dir = Path(cache_dir)
        self.cache = DownloadCache(self.cache_dir / "s3", cache_max_bytes)
        self.client = client or s3_client(endpoint_url, region_name, quick=quick)

    def describe(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    def _info(self, key: str, etag: str, size: int, last_modified: datetime) -> ObjectInfo:
        return ObjectInfo(
            key=key,
            version=normalize_version(etag),
            size=size,
            last_modified=last_modified,
            source=self.source,
            bucket=self.bucket,
            etag=etag,
        )

    def list_page(self, start_after: str | None, limit: int) -> ListingPage:
        objects: list[ObjectInfo] = []
        position = start_after
        truncated = True
        while truncated and len(objects) < limit:
            kwargs = {"Bucket": self.bucket, "Prefix": self.prefix, "MaxKeys": min(1000, limit - len(objects))}
            if position:
                kwargs["StartAfter"] = position
            try:
                response = self.client.list_objects_v2(**kwargs)
            except Exception as exc:  # botocore raises many types
                raise s3_error(exc, f"cannot list {self.describe()}") from exc
            for item in response.get("Contents", []):
                position = item["Key"]  # past placeholders too: a page of only folders must not loop forever
                if item["Key"].endswith("/"):
                    continue  # folder placeholders
                objects.append(self._info(item["Key"], item["ETag"], item["Size"], item["LastModified"]))
            truncated = response.get("IsTruncated", False)
        return ListingPage(objects, position if truncated else None)

    def head(self, key: str) -> ObjectInfo:
        try:
            response = self.client.head_object(Bucket=self.bucket, Key=key)
        except Exception as exc:
            raise s3_error(exc, f"{key!r} in {self.describe()}") from exc
        return self._info(key, response["ETag"], response["ContentLength"], response["LastModified"])

    def fetch(self, obj: ObjectInfo) -> Path:
        """Stream one object version into the cache (once); later calls reuse the cached file."""
        with self.local_copy(obj) as path:
            return path

    @contextmanager
    def local_copy(self, obj: ObjectInfo) -> Iterator[Path]:
        """The object version as a cached file, held against eviction until the block ends."""
        target = self.cache.root / self.bucket / partition_key_for(obj.key, obj.version)
        with self.cache.hold(target) as present:
            if present and target.stat().st_size == obj.size:
                os.utime(target)  # recently used
                yield target
                return
        target.parent.mkdir(parents=True, exist_ok=True)
        self.cache.make_room(obj.size)
        with self._download(obj, target.parent) as held:
            fcntl.flock(held, fcntl.LOCK_SH)  # held from the first byte to the last use: never evicted between
            os.replace(held.name, target)
            log.info("fetched %s (%d bytes) into %s", obj.uri, obj.size, target)
            yield target

    def _download(self, obj: ObjectInfo, folder: Path):
        """The object in a hidden ``.part-`` file, returned open and locked (exclusive while it is written)."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            # IfMatch pins the version we listed: a re-upload in between fails instead of mixing versions.
            pinned = {"IfMatch": obj.etag} if obj.etag else {}
            response = self.client.get_object(Bucket=self.bucket, Key=obj.key, **pinned)
        except (ClientError, BotoCoreError) as exc:
            if getattr(exc, "response", {}).get("Error", {}).get("Code") == "InvalidObjectState":
                raise ArchivedFootageError(
                    f"cannot fetch {obj.uri}: it is in an archive storage class (Glacier): restore it first "
                    f"(aws s3api restore-object --bucket {self.bucket} --key '{obj.key}' --restore-request Days=7), "
                    "then re-run once the restore is done") from exc
            raise s3_error(exc, f"cannot fetch {obj.uri}") from exc
        tmp = tempfile.NamedTemporaryFile(dir=folder, prefix=".part-", delete=False)  # noqa: SIM115 - returned open
        fcntl.flock(tmp, fcntl.LOCK_EX)
        try:
            for chunk in response["Body"].iter_chunks(CHUNK_BYTES):
                tmp.write(chunk)
            tmp.flush()
        except Exception as exc:
            tmp.close()
            os.unlink(tmp.name)
            raise ObjectStoreUnavailableError(f"cannot fetch {obj.uri}: the download broke off ({exc})") from exc
        return tmp

    def presigned_url(self, obj: ObjectInfo, expires_s: int = 3600) -> str:
        """A time-limited URL a browser can play the object from (range requests go straight to S3)."""
        return self.client.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": obj.key}, ExpiresIn=expires_s)

    def delete(self, obj: ObjectInfo) -> bool:
        """The object (every version of it, where the bucket keeps versions) and its cached copy; False when it
        was gone."""
        from botocore.exceptions import ClientError

        (self.cache.root / self.bucket / partition_key_for(obj.key, obj.version)).unlink(missing_ok=True)
        try:
            self.client.head_object(Bucket=self.bucket, Key=obj.key)
            existed = True
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchKey", "NotFound"):
                raise
            existed = False
        versions = self.client.list_object_versions(Bucket=self.bucket, Prefix=obj.key).get("Versions", []) \
            if existed else []
        for version in (v for v in versions if v["Key"] == obj.key and v.get("VersionId") not in (None, "null")):
            self.client.delete_object(Bucket=self.bucket, Key=obj.key, VersionId=version["VersionId"])
        if existed:
            self.client.delete_object(Bucket=self.bucket, Key=obj.key)
        return existed

    def move_to_cold(self, obj: ObjectInfo) -> str | None:
        """S3 footage goes cold through the bucket's lifecycle rule (`reelgraph retention --lifecycle` writes it):
        an object keeps its key, ETag and version when S3 moves it, so nothing is seen as a new upload. Returns
        the storage class once it is no longer STANDARD (None: not moved yet)."""
        try:
            response = self.client.head_object(Bucket=self.bucket, Key=obj.key)
        except Exception as exc:  # botocore raises many types
            raise s3_error(exc, f"{obj.key!r} in {self.describe()}") from exc
        storage_class = response.get("StorageClass") or "STANDARD"
        return None if storage_class == "STANDARD" else storage_class

    def put(self, local_path: Path, key: str) -> ObjectInfo:
        """Upload under the store's prefix (``key`` relative to it, as the recorder's ``cameras/...`` and
        `reelgraph process` give it), where the upload sensor lists; a key already under the prefix stays."""
        key = key if not self.prefix or key.startswith(self.prefix) else self.prefix + key.lstrip("/")
        self.client.upload_file(str(local_path), self.bucket, key)
        return self.head(key)
