"""What every analysis stage shares: turning unusable inputs into clear failures, and recording state."""

from contextlib import contextmanager

from dagster import AssetCheckResult, AssetExecutionContext, Failure

from resources import PostgresResource
from video_analysis import catalog
from video_analysis.quality import Finding


@contextmanager
def recorded_stage(context: AssetExecutionContext, database: PostgresResource, stage: str):
    """Record a failed stage (best effort) in `stage_runs`, so `reelgraph status` shows the reason."""
    try:
        yield
    except catalog.UnknownVideoError as exc:
        _record_failure(context, database, stage, str(exc))
        raise Failure(description=str(exc), allow_retries=False) from exc
    except Exception as exc:
        _record_failure(context, database, stage, f"{type(exc).__name__}: {exc}")
        raise


def _record_failure(context, database, stage, message):
    try:
        with database.session() as conn:
            catalog.record_stage(conn, context.partition_key, stage, "failed", error=message,
                                 run_id=context.run.run_id)
    except Exception:  # the database itself may be what failed
        context.log.warning("could not record the failure of %s in stage_runs", stage)


def check_results(asset_key: str, findings: list[Finding]) -> list[AssetCheckResult]:
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
