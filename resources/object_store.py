"""Where raw footage is read from: the local inbox, or S3 when a bucket is configured."""


from pathlib import Path

from dagster import ConfigurableResource
from pydantic import Field

from configuration.settings import Settings
from video_analysis.runtime.local_store import LocalFolderStore
from video_analysis.runtime.object_store import ObjectStore
from video_analysis.runtime.s3_store import S3Store


class ObjectStoreResource(ConfigurableResource):
    """Each field falls back to its environment variable, then to the local inbox."""

    bucket: str | None = Field(default=None, description="S3 bucket. Defaults to $REELGRAPH_S3_BUCKET.")
    prefix: str | None = Field(default=None, description="Key prefix to watch. Defaults to $REELGRAPH_S3_PREFIX.")
    endpoint_url: str | None = Field(
        default=None, description="S3 endpoint (MinIO, LocalStack, moto). Defaults to $REELGRAPH_S3_ENDPOINT_URL."
    )
    region_name: str | None = Field(default=None, description="AWS region. Defaults to $AWS_REGION.")
    inbox: str | None = Field(
        default=None, description="Local inbox folder when no bucket is set. Defaults to <REELGRAPH_HOME>/inbox."
    )

    def store(self, quick: bool = False) -> ObjectStore:
        """The configured store; ``quick`` gives up sooner on a slow S3 (for the sensor's bounded ticks)."""
        settings = Settings.from_env()
        home = settings.home.ensure()
        bucket = self.bucket or settings.s3_bucket
        if bucket:
            return S3Store(
                bucket,
                self.prefix if self.prefix is not None else settings.s3_prefix,
                cache_dir=home.cache,
                cache_max_bytes=int(settings.cache_max_gb * 1024**3),
                endpoint_url=self.endpoint_url or settings.s3_endpoint_url,
                region_name=self.region_name or settings.aws_region,
                quick=quick,
            )
        inbox = Path(self.inbox or settings.inbox or home.inbox)
        inbox.mkdir(parents=True, exist_ok=True)
        return LocalFolderStore(inbox, settings.cold_path)
