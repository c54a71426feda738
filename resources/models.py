"""The model registry as a resource: resolves each task's checkpoint once per process and loads it."""

import logging
import threading
from concurrent.futures import Future

from dagster import ConfigurableResource
from pydantic import Field

from configuration.settings import Settings
from models import ModelRegistry, ModelUnavailableError, ResolvedModel
from video_analysis.vision.loaders import load_model

log = logging.getLogger(__name__)

# Loaded models, per process: Dagster hands each step its own copy of a resource, and an in-process run's steps
# (and the next partitions of a batch) should find what an earlier one, or a load ahead, already loaded.
_loaded: dict[tuple, Future] = {}
_loaded_lock = threading.Lock()
# One model loads at a time in a process: two threads importing one package at once (transformers, torch) can
# deadlock on its module locks, and a load ahead runs beside the steps.
_loading = threading.RLock()


def one_load_at_a_time() -> threading.RLock:
    """Held while a model loads: what imports a model's libraries beside the steps holds it too."""
    return _loading


def _load_once(key: tuple, loader):
    """``loader()``'s model for ``key``, loaded by the first caller; later callers (a thread loading ahead
    included) wait for that one load. A failed load is forgotten: a caller that waited on it loads again itself,
    and raises its own error."""
    while True:
        with _loaded_lock:
            future = _loaded.get(key)
            owner = future is None
            if owner:
                future = _loaded[key] = Future()
        if owner:
            try:
                with _loading:
                    future.set_result(loader())
            except BaseException as exc:
                with _loaded_lock:
                    _loaded.pop(key, None)
                future.set_exception(exc)
        try:
            return future.result()
        except Exception:
            if owner:
                raise
            # another thread's load failed (a load ahead, say): try here, where the error belongs


class ModelRegistryResource(ConfigurableResource):
    profile: str | None = Field(
        default=None, description="full | offline | auto. Defaults to $REELGRAPH_MODEL_PROFILE, else auto."
    )
    manifest: str | None = Field(
        default=None, description="Model manifest. Defaults to $REELGRAPH_MODELS_MANIFEST, else models/manifest.yaml."
    )

    def registry(self, allow_download: bool = True) -> ModelRegistry:
        cache = Settings.from_env().model_cache_dir()
        return ModelRegistry(cache, manifest=self.manifest, profile=self.profile, allow_download=allow_download)

    def resolve(self, task: str, allow_download: bool = True) -> ResolvedModel:
        return self.registry(allow_download).resolve(task)

    def load(self, task: str, allow_download: bool = True):
        """(resolved checkpoint, loaded model); loaded once per process and reused across steps and partitions."""
        resolved = self.resolve(task, allow_download)
        settings = Settings.from_env()
        key = (task, resolved.path, settings.device, settings.text_runtime)
        return resolved, _load_once(key, lambda: load_model(
            resolved.backend, resolved.path, resolved.config_path, cache_dir=self.registry(allow_download).cache_dir,
            device=settings.device, text_runtime=settings.text_runtime))

    def preload(self, task: str) -> bool:
        """Load ``task``'s model now, for a step later in this process, without downloading; False when that
        failed, which is left for the step: it loads again and reports it."""
        try:
            self.load(task, allow_download=False)
        except Exception as exc:  # noqa: BLE001 - the step that needs the model raises it
            log.debug("loading %s ahead failed: %s", task, exc)
            return False
        return True

    def load_optional(self, task: str, allow_download: bool = True):
        """(resolved, model, None), or (None, None, reason) when this profile has no model for the task."""
        try:
            resolved, model = self.load(task, allow_download)
        except ModelUnavailableError as exc:
            return None, None, str(exc)
        return resolved, model, None
