"""Resolve a task to a verified local checkpoint: cache it once, never re-download, say what was chosen.

The profile comes from ``REELGRAPH_MODEL_PROFILE`` (``full`` | ``offline`` | ``auto``). ``auto`` (the
default) takes ``full`` when its weights can be reached (cached, mirrored or downloadable) and
otherwise falls back to ``offline``, recording why in ``ResolvedModel.note``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import yaml

from video_analysis.store.outputs import ModelStamp

log = logging.getLogger(__name__)

MANIFEST = Path(__file__).with_name("manifest.yaml")

PROFILES = ("full", "offline")


class ModelUnavailableError(RuntimeError):
    """The checkpoint for a task cannot be found, fetched or verified."""


@dataclass(frozen=True)
class ResolvedModel:
    task: str
    name: str
    backend: str
    version: str
    profile: str
    path: Path
    config_path: Path | None = None
    note: str = ""

    @property
    def stamp(self) -> ModelStamp:
        """What rows produced by this checkpoint are stamped with."""
        return ModelStamp(self.name, self.version)

    def describe(self) -> str:
        text = f"{self.task}: {self.name} ({self.backend}, {self.version}, profile {self.profile})"
        return f"{text}; {self.note}" if self.note else text


class ModelRegistry:
    def __init__(self, cache_dir: Path, manifest: Path | None = None, profile: str | None = None,
                 allow_download: bool = True):
        self.cache_dir = Path(cache_dir)
        self.allow_download = allow_download
        manifest = Path(manifest or os.environ.get("REELGRAPH_MODELS_MANIFEST") or MANIFEST)
        self.spec = yaml.safe_load(manifest.read_text())
        self.requested_profile = (profile or os.environ.get("REELGRAPH_MODEL_PROFILE") or "auto").lower()
        if self.requested_profile not in (*PROFILES, "auto"):
            raise ValueError(f"REELGRAPH_MODEL_PROFILE must be full, offline or auto, not {self.requested_profile!r}")

    # -- public ------------------------------------------------------------------------------------
    def resolve(self, task: str) -> ResolvedModel:
        if self.requested_profile != "auto":
            return self._resolve_in(task, self.requested_profile)
        try:
            return self._resolve_in(task, "full")
        except ModelUnavailableError as exc:
            try:
                fallback = self._resolve_in(task, "offline")
            except ModelUnavailableError as offline_exc:
                raise ModelUnavailableError(f"full profile: {exc}; offline profile: {offline_exc}") from exc
            note = f"full-profile weights unreachable ({exc}); using the offline profile"
            log.log(logging.WARNING if self.allow_download else logging.DEBUG, "%s: %s", task, note)
            return ResolvedModel(**{**fallback.__dict__, "note": note})

    def checkpoint(self, task: str, profile: str) -> tuple[str, dict]:
        name = self.spec["profiles"].get(profile, {}).get(task)
        if name is None:
            raise ModelUnavailableError(f"profile {profile!r} names no checkpoint for {task!r}")
        return name, self.spec["checkpoints"][name]

    # -- resolution --------------------------------------------------------------------------------
    def _resolve_in(self, task: str, profile: str) -> ResolvedModel:
        name, entry = self.checkpoint(task, profile)
        path = self._fetch(entry["source"], entry.get("sha256"))
        config = self._fetch(entry["config"], None) if entry.get("config") else None
        return ResolvedModel(task=task, name=name, backend=entry["backend"], version=str(entry["version"]),
                             profile=profile, path=path, config_path=config)

    def _fetch(self, source: str, sha256: str | None) -> Path:
        if source.startswith("package:"):
            path = self._from_package(source.removeprefix("package:"))
        elif source.startswith("ultralytics:"):
            path = self._from_ultralytics(source.removeprefix("ultralytics:"))
        elif source.startswith("hf:"):
            path = self._from_hub(source.removeprefix("hf:"))
        elif source.startswith("s3://"):
            path = self._from_s3(source)
        else:
            path = Path(source).expanduser()
            if not path.exists():
                raise ModelUnavailableError(f"{source} does not exist")
        if sha256 and path.is_file():
            self._verify(path, sha256)
        return path

    def _from_package(self, spec: str) -> Path:
        module, _, relative = spec.partition("/")
        found = importlib.util.find_spec(module)
        if found is None or not found.submodule_search_locations:
            raise ModelUnavailableError(f"package {module!r} is not installed (pip install 'reelgraph[offline]')")
        path = Path(next(iter(found.submodule_search_locations))) / relative
        if not path.exists():
            raise ModelUnavailableError(f"{relative} is missing from package {module!r}")
        return path

    def _from_ultralytics(self, asset: str) -> Path:
        target = self.cache_dir / "ultralytics" / asset
        if target.exists():
            return target
        if not self.allow_download or os.environ.get("YOLO_OFFLINE") or os.environ.get("HF_HUB_OFFLINE"):
            raise ModelUnavailableError(f"{asset} is not cached in {target.parent} and downloads are off")
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            from ultralytics.utils.downloads import attempt_download_asset

            downloaded = Path(attempt_download_asset(str(target)))
        except Exception as exc:  # network errors come in many types
            raise ModelUnavailableError(f"cannot download {asset}: {exc}") from exc
        if not downloaded.exists():
            raise ModelUnavailableError(f"cannot download {asset}")
        return downloaded

    def _from_hub(self, repo_id: str) -> Path:
        try:
            from huggingface_hub import snapshot_download

            return Path(snapshot_download(repo_id, cache_dir=self.cache_dir / "hf",
                                          local_files_only=not self.allow_download))
        except Exception as exc:
            raise ModelUnavailableError(f"cannot fetch {repo_id} from the Hugging Face hub: {exc}") from exc

    def _from_s3(self, uri: str) -> Path:
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        target = self.cache_dir / "s3" / bucket / key
        if target.exists():
            return target
        if not self.allow_download:
            raise ModelUnavailableError(f"{uri} is not cached and downloads are off")
        import boto3

        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(target.suffix + ".part")
        try:
            boto3.client("s3", endpoint_url=os.environ.get("REELGRAPH_S3_ENDPOINT_URL") or None).download_file(
                bucket, key, str(partial))
        except Exception as exc:
            raise ModelUnavailableError(f"cannot download {uri}: {exc}") from exc
        shutil.move(partial, target)
        return target

    def _verify(self, path: Path, expected: str) -> None:
        stat = path.stat()
        stamp = self.cache_dir / "verified" / hashlib.sha1(str(path.resolve()).encode()).hexdigest()
        token = f"{stat.st_size}:{stat.st_mtime_ns}:{expected}"
        if stamp.exists() and stamp.read_text() == token:
            return
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(8 * 1024 * 1024), b""):
                digest.update(block)
        if digest.hexdigest() != expected:
            raise ModelUnavailableError(f"{path} fails its checksum (sha256 {digest.hexdigest()}, expected {expected})")
        stamp.parent.mkdir(parents=True, exist_ok=True)
        stamp.write_text(token)
