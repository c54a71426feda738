"""The local-folder object store: the inbox (and its cold tier) on disk, listed and read as a bucket."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from video_analysis.runtime.object_store import CHUNK_BYTES, ListingPage, ObjectChangedError, ObjectInfo


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
