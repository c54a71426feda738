"""Where each stage runs: GPU stages carry the tags that put their step on a GPU, per executor.

- ECS (``ecs_executor``): the step's container asks for a GPU through ``resourceRequirements`` and the task
  runs on an EC2 capacity provider with GPU instances (Fargate has no GPUs); CPU steps keep the
  launcher's defaults (Fargate).
- Kubernetes (``k8s_job_executor``): the step's pod asks for ``nvidia.com/gpu`` and tolerates GPU nodes.

Both sets of tags are always present; each executor reads only its own. Values come from the
environment so one image serves every cluster.
"""

import json

from configuration.settings import Settings

GPU_POOL = "gpu"


def gpu_op_tags() -> dict:
    settings = Settings.from_env()
    gpus, provider = settings.gpus_per_step, settings.ecs_gpu_capacity_provider
    return {
        "ecs/container_overrides": json.dumps({"resourceRequirements": [{"type": "GPU", "value": gpus}]}),
        "ecs/run_task_kwargs": json.dumps({"capacityProviderStrategy": [{"capacityProvider": provider, "weight": 1}]}),
        "ecs/memory": settings.ecs_gpu_memory_mib,
        "ecs/cpu": settings.ecs_gpu_cpu_units,
        "dagster-k8s/config": {
            "container_config": {"resources": {"limits": {"nvidia.com/gpu": gpus},
                                               "requests": {"nvidia.com/gpu": gpus}}},
            "pod_spec_config": {"tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists",
                                                 "effect": "NoSchedule"}]},
        },
    }
