"""The S3 object store: a bucket (any S3-compatible endpoint) listed, downloaded into the cache, written and erased."""

from __future__ import annotations

import fcntl
import logging
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from video_analysis.runtime.download_cache import DownloadCache
from video_analysis.runtime.keys import normalize_version, partition_key_for
from video_analysis.runtime.object_store import (
    CHUNK_BYTES,
    ArchivedFootageError,
    ListingPage,
    ObjectChangedError,
    ObjectInfo,
    ObjectStoreAccessError,
    ObjectStoreError,
    ObjectStoreUnavailableError,
)

log = logging.getLogger(__name__)

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
