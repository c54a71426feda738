"""Jobs whose steps the ECS executor launches: one GPU stage and one CPU stage, each on its own."""

from dagster import Definitions, define_asset_job
from dagster_aws.ecs import ecs_executor

from assets import VIDEO_STAGES
from orchestration.definitions import build_resources

defs = Definitions(
    assets=VIDEO_STAGES,
    resources=build_resources(),
    jobs=[define_asset_job(f"{stage}_on_ecs", selection=[stage], executor_def=ecs_executor)
          for stage in ("detections", "tracks")],
)


def detections_on_ecs():
    return defs.resolve_job_def("detections_on_ecs")


def tracks_on_ecs():
    return defs.resolve_job_def("tracks_on_ecs")
