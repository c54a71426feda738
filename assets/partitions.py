"""One dynamic partition per object version (see video_analysis.runtime.keys for the key format), and how a
video's partition is forgotten (erasure, retention)."""

from __future__ import annotations

from dagster import DynamicPartitionsDefinition

VIDEOS_PARTITIONS_NAME = "videos"

videos_partitions = DynamicPartitionsDefinition(name=VIDEOS_PARTITIONS_NAME)


def forget_partitions(instance, keys: list[str]) -> list[str]:
    """Dagster's records of these partitions: their materializations (which carry summaries and counts) and the
    partitions themselves. Where the event log cannot wipe single partitions (SQLite's), the runs of these
    partitions alone are deleted; the ids of runs that also carried other videos are returned."""
    from dagster import AssetKey, AssetRecordsFilter, DagsterRunStatus, RunsFilter

    from assets import VIDEO_STAGES

    known = set(instance.get_dynamic_partitions(VIDEOS_PARTITIONS_NAME))
    keys = [k for k in keys if k in known]
    kept: list[str] = []
    try:
        for stage in VIDEO_STAGES:
            instance.wipe_asset_partitions(AssetKey(stage.key.path), keys)
    except NotImplementedError:
        for key in keys:
            for run in instance.get_runs(RunsFilter(tags={"dagster/partition": key})):
                if run.status not in (DagsterRunStatus.STARTED, DagsterRunStatus.STARTING):
                    instance.delete_run(run.run_id)
        for stage in VIDEO_STAGES:  # what remains: runs that carried other videos too (backfill batches)
            remaining = instance.fetch_materializations(
                AssetRecordsFilter(asset_key=AssetKey(stage.key.path), asset_partitions=keys), limit=1000).records
            kept += [r.run_id for r in remaining if r.run_id not in kept]
    for key in keys:
        instance.delete_dynamic_partition(VIDEOS_PARTITIONS_NAME, key)
    return kept
