"""The model registry as a resource: resolves each task's checkpoint once per process and loads it."""

from dagster import ConfigurableResource
from pydantic import Field, PrivateAttr

from models import ModelRegistry, ResolvedModel
from video_analysis.detectors import load_detector
from video_analysis.embeddings import load_embedder
from video_analysis.settings import Settings


class ModelRegistryResource(ConfigurableResource):
    profile: str | None = Field(
        default=None, description="full | offline | auto. Defaults to $REELGRAPH_MODEL_PROFILE, else auto."
    )
    manifest: str | None = Field(
        default=None, description="Model manifest. Defaults to $REELGRAPH_MODELS_MANIFEST, else models/manifest.yaml."
    )

    _loaded: dict = PrivateAttr(default_factory=dict)

    def registry(self, allow_download: bool = True) -> ModelRegistry:
        cache = Settings.from_env().home.ensure().root / "models"
        return ModelRegistry(cache, manifest=self.manifest, profile=self.profile, allow_download=allow_download)

    def resolve(self, task: str, allow_download: bool = True) -> ResolvedModel:
        return self.registry(allow_download).resolve(task)

    def detector(self):
        """(resolved checkpoint, loaded detector); loaded once per process and reused across partitions."""
        resolved = self.resolve("detector")
        key = ("detector", resolved.path)
        if key not in self._loaded:
            self._loaded[key] = load_detector(resolved.backend, resolved.path, resolved.config_path)
        return resolved, self._loaded[key]

    def embedder(self, task: str):
        """(resolved checkpoint, loaded embedder) for text_embedder or image_embedder."""
        resolved = self.resolve(task)
        key = (task, resolved.path)
        if key not in self._loaded:
            self._loaded[key] = load_embedder(resolved.backend, resolved.path)
        return resolved, self._loaded[key]
