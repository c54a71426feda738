"""The executor each deployment target runs steps with (see deploy/ and assets/placement.py)."""

from configuration.settings import Settings


def build_executor():
    """The executor named by $REELGRAPH_EXECUTOR: multiprocess (default), ecs, or k8s."""
    choice = Settings.from_env().executor
    if choice == "ecs":
        from dagster_aws.ecs import ecs_executor

        return ecs_executor
    if choice == "k8s":
        from dagster_k8s import k8s_job_executor  # the `k8s` extra

        return k8s_job_executor
    if choice == "multiprocess":
        return None  # Dagster's default
    raise ValueError(f"REELGRAPH_EXECUTOR must be multiprocess, ecs or k8s, not {choice!r}")
