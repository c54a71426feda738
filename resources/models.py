"""The model registry as a resource: resolves each task's checkpoint once per process and loads it."""

from dagster import ConfigurableResource
from pydantic import Field, PrivateAttr

from models import ModelRegistry, ModelUnavailableError, ResolvedModel
from video_analysis.runtime.settings import Settings
from video_analysis.vision.loaders import load_model


class ModelRegistryResource(ConfigurableResource):
    profile: str | None = Field(
        default=None, description="full | offline | auto. Defaults to $REELGRAPH_MODEL_PROFILE, else auto."
    )
    manifest: str | None = Field(
        default=None, description="Model manifest. Defaults to $REELGRAPH_MODELS_MANIFEST, else models/manifest.yaml."
    )

    _loaded: dict = PrivateAttr(default_factory=dict)

    def registry(self, allow_download: bool = True) -> ModelRegistry:
        cache = Settings.from_env().model_cache_dir()
        return ModelRegistry(cache, manifest=self.manifest, profile=self.profile, allow_download=allow_download)

    def resolve(self, task: str, allow_download: bool = True) -> ResolvedModel:
        return self.registry(allow_download).resolve(task)

    def load(self, task: str, allow_download: bool = True):
        """(resolved checkpoint, loaded model); loaded once per process and reused across partitions."""
        resolved = self.resolve(task, allow_download)
        settings = Settings.from_env()
        key = (task, resolved.path, settings.device, settings.text_runtime)
        if key not in self._loaded:
            self._loaded[key] = load_model(resolved.backend, resolved.path, resolved.config_path,
                                           cache_dir=self.registry(allow_download).cache_dir, device=settings.device,
                                           text_runtime=settings.text_runtime)
        return resolved, self._loaded[key]

    def load_optional(self, task: str, allow_download: bool = True):
        """(resolved, model, None), or (None, None, reason) when this profile has no model for the task."""
        try:
            resolved, model = self.load(task, allow_download)
        except ModelUnavailableError as exc:
            return None, None, str(exc)
        return resolved, model, None
