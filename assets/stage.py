"""What every video stage shares: many videos per run, per-video failures, recorded state.

A run of a video stage covers one partition (the upload sensor) or a range of them (a backfill batches
``REELGRAPH_VIDEOS_PER_RUN`` videos per run, so each model loads once per batch). The stage body handles
one video; `materialize_videos` runs it over the run's partitions and decides what a failure means:

- a problem with one video (unregistered, unreadable, missing from the store, upstream stage absent) is
  recorded in `stage_runs` and the batch goes on; the videos that succeeded are reported materialized one
  by one, then the step fails naming every bad video, so Dagster never shows a bad partition as done;
- anything else (database gone, model missing, GPU error) stops the batch at once, since it would fail
  every remaining video the same way.
"""

import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from dagster import (
    AssetCheckResult,
    AssetExecutionContext,
    AssetMaterialization,
    BackfillPolicy,
    BetaWarning,
    Failure,
    MaterializeResult,
)

from resources import PostgresResource
from video_analysis import catalog
from video_analysis.object_store import ObjectStoreError
from video_analysis.probe import VideoProbeError
from video_analysis.quality import Finding
from video_analysis.settings import Settings

# Backfill policies are beta in Dagster; the warning would repeat on every code-location load.
warnings.filterwarnings("ignore", message="Parameter `backfill_policy`", category=BetaWarning)

# Failures that belong to one video; the rest of a batch is still worth running.
VIDEO_FAULTS = (catalog.UnknownVideoError, ObjectStoreError, VideoProbeError, Failure)


def video_backfill_policy() -> BackfillPolicy:
    """Every video stage shares it, so a backfill run carries a batch of videos through the whole chain."""
    return BackfillPolicy.multi_run(Settings.from_env().videos_per_run)


@dataclass
class VideoOutcome:
    """What one video's pass through a stage produced, for the UI."""

    metadata: dict
    findings: list[Finding] = field(default_factory=list)


@contextmanager
def batch_setup(context: AssetExecutionContext, database: PostgresResource, stage: str):
    """Around what a stage prepares once per run (loading models): its failure is every video's failure."""
    try:
        yield
    except Exception as exc:
        for key in context.partition_keys:
            _record_failure(context, database, stage, key, _reason(exc))
        raise


def materialize_videos(
    context: AssetExecutionContext,
    database: PostgresResource,
    stage: str,
    process: Callable[[str], VideoOutcome],
    batch_metadata: dict | None = None,
) -> Iterator[MaterializeResult | AssetMaterialization]:
    keys = list(context.partition_keys)
    outcomes: dict[str, VideoOutcome] = {}
    failures: dict[str, str] = {}
    for key in keys:
        try:
            outcomes[key] = process(key)
        except VIDEO_FAULTS as exc:
            failures[key] = _reason(exc)
            _record_failure(context, database, stage, key, failures[key])
            context.log.error("%s failed at %s: %s", key, stage, failures[key])
        except Exception as exc:
            _record_failure(context, database, stage, key, _reason(exc))
            raise

    if failures:
        for key, outcome in outcomes.items():
            yield AssetMaterialization(asset_key=context.asset_key, partition=key, metadata=outcome.metadata)
        if len(keys) == 1:
            description = failures[keys[0]]
        else:
            description = f"{len(failures)} of {len(keys)} videos failed at {stage}: " + "; ".join(
                f"{key}: {reason}" for key, reason in failures.items())
        # Bad input does not get better on retry: fail once, clearly; the reasons are in `stage_runs`.
        raise Failure(description=description, allow_retries=False)

    if len(keys) == 1:
        outcome = outcomes[keys[0]]
        yield MaterializeResult(metadata={**(batch_metadata or {}), **outcome.metadata},
                                check_results=check_results(context, outcome.findings))
        return
    for key, outcome in outcomes.items():
        context.add_asset_metadata(outcome.metadata, partition_key=key)
    findings = [f for outcome in outcomes.values() for f in outcome.findings]
    yield MaterializeResult(metadata={**(batch_metadata or {}), "videos_in_run": len(keys)},
                            check_results=check_results(context, _combine(findings, keys, outcomes)))


def _reason(exc: Exception) -> str:
    if isinstance(exc, Failure):
        return exc.description or str(exc)
    if isinstance(exc, catalog.UnknownVideoError | VideoProbeError | ObjectStoreError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def _record_failure(context, database, stage, partition_key, message):
    """Best effort: the database itself may be what failed."""
    try:
        with database.session() as conn:
            catalog.record_stage(conn, partition_key, stage, "failed", error=message, run_id=context.run.run_id)
    except Exception:
        context.log.warning("could not record the failure of %s for %s in stage_runs", stage, partition_key)


def _combine(findings: list[Finding], keys: list[str], outcomes: dict[str, VideoOutcome]) -> list[Finding]:
    """One result per check over the batch: it passes when it passed for every video."""
    combined = []
    for name in dict.fromkeys(f.name for f in findings):
        failed = [f"{key}: {f.detail}" for key in keys for f in outcomes[key].findings
                  if f.name == name and not f.passed]
        detail = "; ".join(failed) if failed else f"passed for all {len(keys)} videos"
        combined.append(Finding(name, not failed, detail))
    return combined


def check_results(context: AssetExecutionContext, findings: list[Finding]) -> list[AssetCheckResult]:
    asset_key = context.asset_key
    return [AssetCheckResult(asset_key=asset_key, check_name=f.name, passed=f.passed,
                             metadata={"detail": f.detail}) for f in findings]


def model_code_version(stage_version: str, task: str) -> str:
    """The stage's code version including its model's version: a model upgrade marks partitions stale.

    Resolved from what is already on disk: loading the code location never downloads weights.
    """
    from resources import ModelRegistryResource

    try:
        return f"{stage_version}:{ModelRegistryResource().resolve(task, allow_download=False).version}"
    except Exception:  # no model for this task yet: the stage reports it when it runs
        return f"{stage_version}:unresolved"
