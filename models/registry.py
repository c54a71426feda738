"""Resolve a task to a verified local checkpoint: cache it once, never re-download, say what was chosen.

The profile comes from ``REELGRAPH_MODEL_PROFILE`` (``full`` | ``offline`` | ``auto``). ``auto`` (the
default) takes ``full`` when its weights can be reached (cached, mirrored or downloadable) and
otherwise falls back to ``offline``, recording why in ``ResolvedModel.note``.

A profile may name several checkpoints for a task, best first: the first whose weights can be reached
serves, and the note says why any before it did not (the offline detector: PicoDet-S where its weights are
cached, in ``REELGRAPH_MODEL_DIR`` or downloadable, else the SSD that a package ships).

Every checkpoint is checksummed. A manifest entry with ``sha256`` (and ``revision`` for ``hf:``) is
pinned for every machine. One without is pinned on first download, as a lock file would be: its sha256
(and the Hugging Face commit it resolved to) go into ``<cache>/pins.json``, later loads are verified
against them, and a warning says what to add to the manifest to pin it everywhere.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import yaml

from configuration.settings import Settings, env
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
        settings = Settings.from_env()
        manifest = Path(manifest or settings.models_manifest or MANIFEST)
        self.spec = yaml.safe_load(manifest.read_text())
        self.model_dir = settings.model_dir
        self.requested_profile = (profile or settings.model_profile or "auto").lower()
        if self.requested_profile not in (*PROFILES, "auto"):
            raise ValueError(f"REELGRAPH_MODEL_PROFILE must be full, offline or auto, not {self.requested_profile!r}")

    # -- public ------------------------------------------------------------------------------------
    def resolve(self, task: str) -> ResolvedModel:
        """The task's checkpoint; why any better one was passed over is in its note, logged once here."""
        resolved = self._resolve(task)
        if resolved.note:
            log.log(logging.WARNING if self.allow_download else logging.DEBUG, "%s: %s", task, resolved.note)
        return resolved

    def _resolve(self, task: str) -> ResolvedModel:
        if self.requested_profile != "auto":
            return self._resolve_in(task, self.requested_profile)
        try:
            return self._resolve_in(task, "full")
        except ModelUnavailableError as exc:
            try:
                fallback = self._resolve_in(task, "offline")
            except ModelUnavailableError as offline_exc:
                raise ModelUnavailableError(f"full profile: {exc}; offline profile: {offline_exc}") from exc
            note = f"full-profile weights unreachable ({exc}); using the offline profile" + (
                f"; {fallback.note}" if fallback.note else "")
            return ResolvedModel(**{**fallback.__dict__, "note": note})

    def checkpoints(self, task: str, profile: str) -> list[str]:
        """The checkpoints a profile names for a task, best first."""
        named = self.spec["profiles"].get(profile, {}).get(task)
        if named is None:
            raise ModelUnavailableError(f"profile {profile!r} names no checkpoint for {task!r}")
        return [named] if isinstance(named, str) else list(named)

    def checkpoint(self, task: str, profile: str) -> tuple[str, dict]:
        name = self.checkpoints(task, profile)[0]
        return name, self.spec["checkpoints"][name]

    # -- resolution --------------------------------------------------------------------------------
    def _resolve_in(self, task: str, profile: str) -> ResolvedModel:
        names = self.checkpoints(task, profile)
        passed_over = []
        for name in names:
            try:
                resolved = self.resolve_checkpoint(name, profile)
            except ModelUnavailableError as exc:
                if name == names[-1]:
                    raise ModelUnavailableError("; ".join([*passed_over, f"{name}: {exc}"])) from exc
                passed_over.append(f"{name}: {exc}")
                continue
            if passed_over:
                note = f"{'; '.join(passed_over)}; using {name}"
                return ResolvedModel(**{**resolved.__dict__, "note": note})
            return resolved
        raise AssertionError("unreachable")

    def resolve_checkpoint(self, name: str, profile: str = "") -> ResolvedModel:
        """One manifest checkpoint by name, fetched and verified."""
        entry = self.spec["checkpoints"][name]
        task = entry["task"]
        path = self._fetch(entry["source"], entry.get("sha256"), entry.get("revision"))
        config = self._fetch(entry["config"], entry.get("config_sha256")) if entry.get("config") else None
        return ResolvedModel(task=task, name=name, backend=entry["backend"], version=str(entry["version"]),
                             profile=profile, path=path, config_path=config)

    def _fetch(self, source: str, sha256: str | None, revision: str | None = None) -> Path:
        downloaded = source.startswith(("ultralytics:", "hf:", "s3://", "https://", "http://"))
        pin = self._pins().get(source, {}) if downloaded else {}
        if source.startswith("hf:") and revision is None:
            revision = pin.get("revision")
        path = self._locate(source, revision, sha256)
        if sha256 is None and downloaded:
            sha256 = pin.get("sha256") or self._pin(source, path)
        if sha256:
            try:
                self._verify(path, sha256)
            except ModelUnavailableError:
                if path.is_relative_to(self.cache_dir / "downloads"):
                    path.unlink(missing_ok=True)  # damaged or changed upstream: fetched again next time
                raise
        return path

    def _pins(self) -> dict:
        try:
            return json.loads((self.cache_dir / "pins.json").read_text())
        except FileNotFoundError:
            return {}

    def _pin(self, source: str, path: Path) -> str:
        """Trust on first download: record what arrived, so any later change is caught. Returns the sha256."""
        import fcntl

        digest = folder_sha256(path) if path.is_dir() else file_sha256(path)
        entry = {"sha256": digest}
        if source.startswith("hf:"):
            entry["revision"] = path.name  # snapshot folders are named by their commit
        target = self.cache_dir / "pins.json"
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(self.cache_dir / "pins.lock", "w") as lock:  # workers pinning at once keep every entry
            fcntl.flock(lock, fcntl.LOCK_EX)
            pins = self._pins()
            if source in pins:  # another worker pinned it first: its record stands
                return pins[source]["sha256"]
            partial = target.with_suffix(f".json.{os.getpid()}")
            partial.write_text(json.dumps({**pins, source: entry}, indent=2, sort_keys=True))
            os.replace(partial, target)
        log.warning("%s had no checksum in the manifest; pinned on this machine at sha256 %s%s. Add "
                    "`sha256: %s`%s to its manifest entry to pin it on every machine",
                    source, digest, f", revision {entry['revision']}" if "revision" in entry else "", digest,
                    f" and `revision: {entry['revision']}`" if "revision" in entry else "")
        return digest

    def _locate(self, source: str, revision: str | None, sha256: str | None = None) -> Path:
        if source.startswith("package:"):
            path = self._from_package(source.removeprefix("package:"))
        elif source.startswith("ultralytics:"):
            path = self._from_ultralytics(source.removeprefix("ultralytics:"))
        elif source.startswith("hf:"):
            path = self._from_hub(source.removeprefix("hf:"), revision)
        elif source.startswith("s3://"):
            path = self._from_s3(source)
        elif source.startswith(("https://", "http://")):  # an upstream release, or a mirror on the site's network
            path = self._from_url(source, sha256)
        else:
            path = Path(source).expanduser()
            if not path.exists():
                raise ModelUnavailableError(f"{source} does not exist")
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
        if not self.allow_download or env("YOLO_OFFLINE") or env("HF_HUB_OFFLINE"):
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

    def _from_hub(self, repo_id: str, revision: str | None) -> Path:
        """A snapshot at the manifest's pinned ``revision`` (a commit hash), or the main branch when unpinned."""
        try:
            from huggingface_hub import snapshot_download

            return Path(snapshot_download(repo_id, revision=revision, cache_dir=self.cache_dir / "hf",
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
            boto3.client("s3", endpoint_url=Settings.from_env().s3_endpoint_url or None).download_file(
                bucket, key, str(partial))
        except Exception as exc:
            raise ModelUnavailableError(f"cannot download {uri}: {exc}") from exc
        shutil.move(partial, target)
        return target

    def _from_url(self, url: str, sha256: str | None = None) -> Path:
        """A file published at a URL: ``REELGRAPH_MODEL_DIR`` first (air-gapped sites copy the files there by
        name), then the cache, else downloaded once into the cache, in a folder named by the sha256 the manifest
        pins (a manifest that moves to other bytes under the same name fetches them anew). The caller checks
        the sha256, so a file that changed at its URL or arrived damaged is refused, never used."""
        from urllib.parse import unquote, urlsplit

        name = unquote(urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1])
        local = self.model_dir or ""
        if local and (Path(local).expanduser() / name).is_file():
            return Path(local).expanduser() / name
        target = self.cache_dir / "downloads" / (sha256[:16] if sha256 else "unpinned") / name
        if target.exists():
            return target
        where = f"not in REELGRAPH_MODEL_DIR ({local})" if local else "REELGRAPH_MODEL_DIR unset"
        if not self.allow_download:
            raise ModelUnavailableError(f"{name} is not cached and downloads are off ({where})")
        import urllib.request

        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{name}.{os.getpid()}.part")
        try:
            with urllib.request.urlopen(url, timeout=30) as response, open(partial, "wb") as out:  # noqa: S310
                shutil.copyfileobj(response, out)
                expected = response.headers.get("Content-Length")
            if expected is not None and partial.stat().st_size != int(expected):
                raise OSError(f"the download stopped at {partial.stat().st_size} of {expected} bytes")
            os.replace(partial, target)
        except OSError as exc:
            raise ModelUnavailableError(f"cannot download {url} ({where}): {exc}") from exc
        finally:
            partial.unlink(missing_ok=True)
        return target

    def _verify(self, path: Path, expected: str) -> None:
        """Check a file's sha256, or a folder's (`folder_sha256`), once per change of the files."""
        files = sorted(p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts) \
            if path.is_dir() else [path]
        try:
            stats = [f.stat() for f in files]
        except FileNotFoundError as exc:  # removed meanwhile (another worker found it damaged)
            raise ModelUnavailableError(f"{path} went away while being checked: {exc}") from exc
        token = (f"{len(files)}:{sum(s.st_size for s in stats)}:{max((s.st_mtime_ns for s in stats), default=0)}:"
                 f"{expected}")
        stamp = self.cache_dir / "verified" / hashlib.sha1(str(path.resolve()).encode()).hexdigest()
        if stamp.exists() and stamp.read_text() == token:
            return
        try:
            actual = folder_sha256(path) if path.is_dir() else file_sha256(path)
        except FileNotFoundError as exc:
            raise ModelUnavailableError(f"{path} went away while being checked: {exc}") from exc
        if actual != expected:
            raise ModelUnavailableError(f"{path} fails its checksum (sha256 {actual}, expected {expected})")
        stamp.parent.mkdir(parents=True, exist_ok=True)
        stamp.write_text(token)


def file_sha256(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def folder_sha256(folder: Path) -> str:
    """One digest for a folder checkpoint: each file's relative path and sha256, in path order."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        digest.update(f"{path.relative_to(folder).as_posix()}\0{file_sha256(path)}\n".encode())
    return digest.hexdigest()
