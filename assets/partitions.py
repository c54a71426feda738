"""One dynamic partition per object version (see video_analysis.runtime.keys for the key format)."""

from dagster import DynamicPartitionsDefinition

VIDEOS_PARTITIONS_NAME = "videos"

videos_partitions = DynamicPartitionsDefinition(name=VIDEOS_PARTITIONS_NAME)
