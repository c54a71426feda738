"""The model registry: which checkpoint serves each task, where it comes from, and its version."""

from models.registry import ModelRegistry, ModelUnavailableError, ResolvedModel

__all__ = ["ModelRegistry", "ModelUnavailableError", "ResolvedModel"]
