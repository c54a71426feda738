"""Dagster's side of removing videos: their partitions and materializations, for erasure and retention."""

from __future__ import annotations


def forget_partitions(instance, keys: list[str]) -> list[str]:
    """Dagster's records of these partitions: their materializations (which carry summaries and counts) and the
    partitions themselves. Where the event log cannot wipe single partitions (SQLite's), the runs of these
    partitions alone are deleted; the ids of runs that also carried other videos are returned."""
    from dagster import AssetKey, AssetRecordsFilter, DagsterRunStatus, RunsFilter

    from assets import VIDEO_STAGES
    from assets.partitions import VIDEOS_PARTITIONS_NAME

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
