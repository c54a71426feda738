"""Every deployment target's configuration loads, and GPU placement reaches only the GPU stages."""

import json
import shutil
from pathlib import Path

import psycopg
import pytest
import yaml
from dagster import DagsterInstance

from assets import ALL_ASSETS
from orchestration.placement import GPU_POOL

REPO = Path(__file__).resolve().parents[2]
GPU_STAGES = {"detections", "embeddings"}


def _instance_from(target: str, tmp_path: Path) -> DagsterInstance:
    shutil.copyfile(REPO / "deploy" / target / "dagster.yaml", tmp_path / "dagster.yaml")
    return DagsterInstance.from_config(str(tmp_path))


def test_local_workstation_instance_caps_the_gpu_pool(tmp_path):
    instance = _instance_from("local", tmp_path)
    try:
        assert instance.run_monitoring_enabled and instance.run_retries_enabled
        assert yaml.safe_load((tmp_path / "dagster.yaml").read_text())["concurrency"]["pools"]["default_limit"] == 1
        assert type(instance.run_launcher).__name__ == "DefaultRunLauncher"
    finally:
        instance.dispose()


def test_aws_instance_launches_runs_on_ecs_with_postgres_storage_and_s3_logs(tmp_path, pg_dsn, moto_endpoint,
                                                                             monkeypatch):
    with psycopg.connect(pg_dsn.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS dagster_aws_test")
        conn.execute("CREATE DATABASE dagster_aws_test")
    url = pg_dsn.replace("postgresql://", "postgresql+psycopg2://").rsplit("/", 1)[0] + "/dagster_aws_test"
    for name, value in {"DAGSTER_POSTGRES_URL": url, "DAGSTER_ECS_TASK_DEFINITION": "reelgraph-analysis:1",
                        "DAGSTER_ECS_CLUSTER": "reelgraph", "DAGSTER_ECS_SUBNET": "subnet-0123",
                        "DAGSTER_COMPUTE_LOG_BUCKET": "reelgraph-logs", "AWS_ENDPOINT_URL": moto_endpoint,
                        "AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "testing",
                        "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(name, value)
    import boto3

    ecs = boto3.client("ecs", endpoint_url=moto_endpoint, region_name="us-east-1")
    ecs.create_cluster(clusterName="reelgraph")
    ecs.register_task_definition(family="reelgraph-analysis", requiresCompatibilities=["FARGATE", "EC2"],
                                 networkMode="awsvpc", cpu="1024", memory="4096",
                                 containerDefinitions=[{"name": "reelgraph", "image": "reelgraph-analysis:latest"}])
    instance = _instance_from("aws", tmp_path)
    try:
        launcher = instance.run_launcher
        assert type(launcher).__name__ == "EcsRunLauncher"
        assert launcher.run_task_kwargs["capacityProviderStrategy"] == [{"capacityProvider": "FARGATE", "weight": 1}]
        assert type(instance.compute_log_manager).__name__ == "S3ComputeLogManager"
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
    finally:
        instance.dispose()


def test_gpu_placement_reaches_only_the_gpu_stages():
    for asset in ALL_ASSETS:
        name = asset.key.to_user_string()
        tags = asset.op.tags
        if name in GPU_STAGES:
            assert asset.op.pool == GPU_POOL
            container = json.loads(tags["ecs/container_overrides"])
            assert container["resourceRequirements"] == [{"type": "GPU", "value": "1"}]
            strategy = json.loads(tags["ecs/run_task_kwargs"])["capacityProviderStrategy"]
            assert strategy[0]["capacityProvider"] != "FARGATE"  # Fargate has no GPUs
            k8s = tags["dagster-k8s/config"]
            k8s = json.loads(k8s) if isinstance(k8s, str) else k8s
            assert k8s["container_config"]["resources"]["limits"]["nvidia.com/gpu"] == "1"
            assert k8s["pod_spec_config"]["tolerations"][0]["key"] == "nvidia.com/gpu"
        else:
            assert not any(key.startswith(("ecs/", "dagster-k8s/")) for key in tags), name
            assert asset.op.pool is None


def test_executor_follows_the_environment(monkeypatch):
    from orchestration.placement import build_executor

    monkeypatch.setenv("REELGRAPH_EXECUTOR", "ecs")
    assert build_executor().name == "ecs"
    monkeypatch.setenv("REELGRAPH_EXECUTOR", "multiprocess")
    assert build_executor() is None
    monkeypatch.setenv("REELGRAPH_EXECUTOR", "batch")
    with pytest.raises(ValueError, match="multiprocess, ecs or k8s"):
        build_executor()


def test_helm_values_run_our_code_location_with_the_k8s_executor():
    values = yaml.safe_load((REPO / "deploy/k8s/values.yaml").read_text())
    [deployment] = values["dagster-user-deployments"]["deployments"]
    assert deployment["dagsterApiGrpcArgs"][:2] == ["--module-name", "orchestration.definitions"]
    assert {"name": "REELGRAPH_EXECUTOR", "value": "k8s"} in deployment["env"]
    assert values["runLauncher"]["type"] == "K8sRunLauncher"


def test_iam_policy_grants_only_reads_of_the_raw_prefix_and_the_model_mirror():
    policy = json.loads((REPO / "deploy/iam-policy.json").read_text())
    actions = {s["Action"] for s in policy["Statement"]}
    assert actions == {"s3:ListBucket", "s3:GetObject"}
    assert all(s["Effect"] == "Allow" and "*" != s["Resource"] for s in policy["Statement"])


def test_compose_stack_wires_database_bucket_and_code_location():
    compose = yaml.safe_load((REPO / "deploy/docker-compose.yml").read_text())
    services = compose["services"]
    assert {"postgres", "minio", "reelgraph", "webserver", "daemon"} <= set(services)
    assert services["postgres"]["image"].startswith("pgvector/")
    workspace = yaml.safe_load((REPO / "deploy/compose/workspace.yaml").read_text())
    assert workspace["load_from"][0]["grpc_server"]["host"] == "reelgraph"
    gpu = services["reelgraph"]["deploy"]["resources"]["reservations"]["devices"][0]
    assert gpu["capabilities"] == ["gpu"]
    assert "postgresql+psycopg2://" in services["webserver"]["environment"]["DAGSTER_POSTGRES_URL"]


def test_light_image_requirements_carry_no_deep_learning_stack():
    lines = (REPO / "deploy/requirements-ingest.txt").read_text().lower()
    assert not any(name in lines for name in ("torch", "ultralytics", "transformers"))
