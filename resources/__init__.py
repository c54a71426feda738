"""Typed Dagster resources, each configured from the environment by default."""

from resources.database import PostgresResource
from resources.models import ModelRegistryResource
from resources.object_store import ObjectStoreResource

__all__ = ["ModelRegistryResource", "ObjectStoreResource", "PostgresResource"]
