"""Publishing closed segments: renamed into the inbox, or uploaded to S3, by each camera's own thread."""

from __future__ import annotations

import logging
import os
import queue
import threading
from pathlib import Path

from video_analysis.recording.segments import published_name, remove_quietly, segment_key
from video_analysis.runtime.local_store import LocalFolderStore
from video_analysis.runtime.object_store import ObjectStore
from video_analysis.runtime.redact import redact

log = logging.getLogger(__name__)

# A segment that could not be published is tried again after this long.
PUBLISH_RETRY_S = 30.0


def spool_folder(store: ObjectStore, spool_root: Path, camera: str) -> Path:
    """Where a camera's segments are written: beside their final place in the inbox (an atomic rename publishes
    them), or a local folder when they go to S3."""
    folder = store.root / "cameras" / camera if isinstance(store, LocalFolderStore) else Path(spool_root) / camera
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _publish_locally(path: Path, root: Path, key: str) -> str:
    """``path`` published under ``key`` in a local store without ever replacing a published segment: a hard
    link is created only where no file is (a segment of the same start, from a recorder restarted within the
    second, gets a suffix), then the spool's name is removed. Returns the key used."""
    stem, suffix = key.rsplit(".", 1) if "." in key.rsplit("/", 1)[-1] else (key, "")
    for attempt in range(1, 100):
        candidate = key if attempt == 1 else f"{stem}-{attempt}.{suffix}" if suffix else f"{stem}-{attempt}"
        try:
            os.link(path, root / candidate)
        except FileExistsError:
            continue
        os.unlink(path)
        return candidate
    raise FileExistsError(f"{key} and 98 more names like it are taken")


class Publisher(threading.Thread):
    """Publishes one camera's closed segments, in order, on a thread of its own: a slow upload or a store that is
    away never holds up reading any camera's stream. A segment that cannot be published waits and is tried
    again; whatever is still waiting when the recorder stops is published by its next start."""

    def __init__(self, store: ObjectStore, camera: str, on_published):
        super().__init__(name=f"publish-{camera}", daemon=True)
        self.store = store
        self.camera = camera
        self.on_published = on_published  # (key) -> None
        self._queue: queue.Queue[Path | None] = queue.Queue()
        self._pending: list[Path] = []
        self._stopping = False

    def submit(self, path: Path) -> None:
        self._queue.put(path)

    def close(self, timeout_s: float) -> None:
        self._queue.put(None)
        self.join(timeout_s)
        if self.is_alive():
            log.warning("%s: segments still being published at stop stay in the spool for the next start",
                        self.camera)

    def run(self) -> None:
        while True:
            try:
                item = self._queue.get(timeout=PUBLISH_RETRY_S if self._pending else None)
            except queue.Empty:
                item = ...  # time to try the waiting ones again
            if item is None:
                self._stopping = True
            elif item is not ...:
                self._pending.append(item)
            # in order, but one that cannot be published (a permission the store refuses for it alone) holds up
            # none after it: it waits for the next round
            self._pending = [path for path in self._pending if not self._publish(path)]
            if self._stopping:
                return

    def _publish(self, path: Path) -> bool:
        key = segment_key(self.camera, published_name(path) or path.name)
        try:
            if isinstance(self.store, LocalFolderStore):
                key = _publish_locally(path, self.store.root, key)
            else:
                self.store.put(path, key)
                remove_quietly(path)
        except FileNotFoundError:
            log.error("%s: %s is gone from the spool before it was published", self.camera, path.name)
            return True
        except Exception as exc:  # noqa: BLE001 - the store may be away: keep the file, try again
            log.error("%s: cannot publish %s (%s); kept in %s and tried again", self.camera, key,
                      redact(str(exc)), path.parent)
            return self._stopping  # at stop, leave it for the next start
        log.info("%s: published %s", self.camera, key)
        self.on_published(key)
        return True
