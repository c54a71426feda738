"""What every video stage shares: its declaration, many videos per run, per-video failures, UI metadata.

A run of a video stage covers one partition (the upload sensor) or a range of them (a backfill batches
``REELGRAPH_VIDEOS_PER_RUN`` videos per run, so each model loads once per batch). The stage's library
function handles one video; `materialize_videos` runs it over the run's partitions and decides what a
failure means:

- a problem with one video (unregistered, unreadable, missing from the store, upstream stage absent) is
  recorded in `stage_runs` and the batch goes on; the videos that succeeded are reported materialized one
  by one, then the step fails naming every bad video, so Dagster never shows a bad partition as done;
- anything else (database gone, model missing, GPU error) stops the batch at once, since it would fail
  every remaining video the same way.
"""

import base64
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetMaterialization,
    BackfillPolicy,
    BetaWarning,
    Failure,
    MaterializeResult,
    MetadataValue,
    asset,
)

from assets.partitions import videos_partitions
from assets.placement import GPU_POOL, gpu_op_tags
from configuration.settings import Settings
from resources import ModelRegistryResource, PostgresResource
from video_analysis.runtime import disk
from video_analysis.stages import VIDEO_FAULTS, StageResult
from video_analysis.store import catalog
from video_analysis.store.quality import Finding

# Backfill policies are beta in Dagster; the warning would repeat on every code-location load.
warnings.filterwarnings("ignore", message="Parameter `backfill_policy`", category=BetaWarning)

OWNERS = ["team:video-platform"]
# Dagster's per-run switch for run retries after a step failure (read when the run fails).
NO_RUN_RETRY_TAG = "dagster/retry_on_asset_or_op_failure"


def video_stage_asset(*, group: str, kinds: set[str], description: str, code_version: str, deps: Sequence = (),
                      checks: Sequence[str] = (), gpu: bool = False):
    """Declare a per-video stage: `videos` partitions, the batching backfill policy, owners, checks and,
    for GPU stages, the GPU pool and placement tags."""

    def declare(fn):
        return asset(
            name=fn.__name__,
            partitions_def=videos_partitions,
            backfill_policy=BackfillPolicy.multi_run(Settings.from_env().videos_per_run),
            deps=list(deps),
            group_name=group,
            kinds=kinds,
            owners=OWNERS,
            code_version=code_version,
            description=description,
            check_specs=[AssetCheckSpec(name, asset=fn.__name__) for name in checks],
            pool=GPU_POOL if gpu else None,
            op_tags=gpu_op_tags() if gpu else None,
        )(fn)

    return declare


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
    process: Callable[[str], StageResult],
    batch_metadata: dict | None = None,
) -> Iterator[MaterializeResult | AssetMaterialization]:
    """Run ``process`` (the stage's library function) over the run's videos and report each to Dagster."""
    keys = list(context.partition_keys)
    outcomes: dict[str, StageResult] = {}
    failures: dict[str, str] = {}
    settings = Settings.from_env()
    for key in keys:
        _record_running(context, database, stage, key)
        try:
            # below the free-space floor the step fails before it starts, rather than half-way with a full disk
            disk.check(settings.home.root, settings.floor, f"{stage} of {key}")
            outcomes[key] = process(key)
        except VIDEO_FAULTS as exc:
            failures[key] = _reason(exc)
            _record_failure(context, database, stage, key, failures[key])
            context.log.error("%s failed at %s: %s", key, stage, failures[key])
        except Exception as exc:
            _record_failure(context, database, stage, key, _reason(exc))
            raise

    batch_metadata = ui_metadata(batch_metadata or {})
    if failures:
        for key, outcome in outcomes.items():
            yield AssetMaterialization(asset_key=context.asset_key, partition=key, metadata=_video_metadata(outcome))
        if len(keys) == 1:
            description = failures[keys[0]]
        else:
            description = f"{len(failures)} of {len(keys)} videos failed at {stage}: " + "; ".join(
                f"{key}: {reason}" for key, reason in failures.items())
        # Bad input does not get better on retry: fail once, clearly; the reasons are in `stage_runs`. Run
        # retries stay on for what does get better (a crashed worker, a store or database outage).
        context.instance.add_run_tags(context.run.run_id, {NO_RUN_RETRY_TAG: "false"})
        raise Failure(description=description, allow_retries=False)

    if len(keys) == 1:
        outcome = outcomes[keys[0]]
        yield MaterializeResult(metadata={**batch_metadata, **_video_metadata(outcome)},
                                check_results=check_results(context, outcome.findings))
        return
    for key, outcome in outcomes.items():
        context.add_asset_metadata(_video_metadata(outcome), partition_key=key)
    yield MaterializeResult(metadata={**batch_metadata, "videos_in_run": len(keys)},
                            check_results=check_results(context, _combine(keys, outcomes)))


def ui_metadata(values: dict) -> dict:
    """Plain values as Dagster metadata: dicts and lists as JSON, floats as floats, JPEG bytes as images."""
    converted = {}
    for name, value in values.items():
        if isinstance(value, bytes):
            encoded = base64.b64encode(value).decode("ascii")
            converted[name] = MetadataValue.md(f"![{name}](data:image/jpeg;base64,{encoded})")
        elif isinstance(value, dict | list):
            converted[name] = MetadataValue.json(value)
        elif isinstance(value, float):
            converted[name] = MetadataValue.float(value)
        else:
            converted[name] = value
    return converted


def _video_metadata(outcome: StageResult) -> dict:
    return {"dagster/row_count": outcome.rows, **ui_metadata(outcome.metadata)}


def _reason(exc: Exception) -> str:
    if isinstance(exc, (*VIDEO_FAULTS, disk.DiskFullError)):
        return str(exc)
    if disk.is_disk_full(exc):  # the volume filled under the step (the database's, the download cache's)
        return f"disk full: {type(exc).__name__}: {exc}"
    return f"{type(exc).__name__}: {exc}"


def _record_running(context, database, stage, partition_key):
    """`reelgraph status` shows the stage in flight (and, if its worker dies, recovery marks it failed)."""
    try:
        with database.session() as conn:
            catalog.mark_stage_running(conn, partition_key, stage, context.run.run_id)
    except Exception:  # an unregistered video (it fails clearly next) or the database (it fails next)
        context.log.warning("could not record %s of %s as running in stage_runs", stage, partition_key)


def _record_failure(context, database, stage, partition_key, message):
    """Best effort: the database itself may be what failed."""
    try:
        with database.session() as conn:
            catalog.record_stage(conn, partition_key, stage, "failed", error=message, run_id=context.run.run_id)
    except Exception:
        context.log.warning("could not record the failure of %s for %s in stage_runs", stage, partition_key)


def _combine(keys: list[str], outcomes: dict[str, StageResult]) -> list[Finding]:
    """One result per check over the batch: it passes when it passed for every video."""
    names = dict.fromkeys(f.name for outcome in outcomes.values() for f in outcome.findings)
    combined = []
    for name in names:
        failed = [f"{key}: {f.detail}" for key in keys for f in outcomes[key].findings
                  if f.name == name and not f.passed]
        detail = "; ".join(failed) if failed else f"passed for all {len(keys)} videos"
        warn_only = all(f.warn_only for outcome in outcomes.values() for f in outcome.findings if f.name == name)
        combined.append(Finding(name, not failed, detail, warn_only))
    return combined


def check_results(context: AssetExecutionContext, findings: list[Finding]) -> list[AssetCheckResult]:
    return [AssetCheckResult(asset_key=context.asset_key, check_name=f.name, passed=f.passed,
                             severity=AssetCheckSeverity.WARN if f.warn_only else AssetCheckSeverity.ERROR,
                             metadata={"detail": f.detail}) for f in findings]


def model_code_version(stage_version: str, task: str) -> str:
    """The stage's code version including its model's version: a model upgrade marks partitions stale.

    Resolved from what is already on disk: loading the code location never downloads weights.
    """
    try:
        return f"{stage_version}:{ModelRegistryResource().resolve(task, allow_download=False).version}"
    except Exception:  # no model for this task yet: the stage reports it when it runs
        return f"{stage_version}:unresolved"
