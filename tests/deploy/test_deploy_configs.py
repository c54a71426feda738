"""Every deployment target's configuration loads, and GPU placement reaches only the GPU stages."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
import yaml
from dagster import DagsterInstance

from assets import ALL_ASSETS
from assets.placement import GPU_POOL
from tests.http_servers import json_server

REPO = Path(__file__).resolve().parents[2]
GPU_STAGES = {"detections", "embeddings"}


def _instance_from(target: str, tmp_path: Path, edits: dict | None = None) -> DagsterInstance:
    """The target's dagster.yaml, with the values its comments ask a user to edit filled in."""
    text = (REPO / "deploy" / target / "dagster.yaml").read_text()
    for placeholder, value in (edits or {}).items():
        assert placeholder in text, placeholder
        text = text.replace(placeholder, value)
    (tmp_path / "dagster.yaml").write_text(text)
    return DagsterInstance.from_config(str(tmp_path))


def test_local_workstation_instance_caps_the_gpu_pool(tmp_path):
    instance = _instance_from("local", tmp_path)
    try:
        assert instance.run_monitoring_enabled and instance.run_retries_enabled
        assert yaml.safe_load((tmp_path / "dagster.yaml").read_text())["concurrency"]["pools"]["default_limit"] == 1
        from orchestration.recovery import LocalRunLauncher

        assert isinstance(instance.run_launcher, LocalRunLauncher)
        assert instance.run_launcher.supports_check_run_worker_health
    finally:
        instance.dispose()


@pytest.fixture
def aws(tmp_path, pg_dsn, moto_endpoint, monkeypatch):
    """deploy/aws/dagster.yaml against the embedded PostgreSQL and moto's ECS, EC2 and S3: a cluster, a VPC,
    the analysis task definition, and one EC2 GPU instance registered as a container instance."""
    import boto3

    with psycopg.connect(pg_dsn.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS dagster_aws_test WITH (FORCE)")
        conn.execute("CREATE DATABASE dagster_aws_test")
    url = pg_dsn.replace("postgresql://", "postgresql+psycopg2://").rsplit("/", 1)[0] + "/dagster_aws_test"
    client = {"endpoint_url": moto_endpoint, "region_name": "us-east-1"}
    for name, value in {"AWS_ENDPOINT_URL": moto_endpoint, "AWS_DEFAULT_REGION": "us-east-1",
                        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(name, value)
    ec2, ecs = boto3.client("ec2", **client), boto3.client("ecs", **client)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName=f"tasks-{vpc}", Description="tasks", VpcId=vpc)["GroupId"]
    cluster = f"reelgraph-{vpc[-8:]}"
    ecs.create_cluster(clusterName=cluster)
    ecs.register_task_definition(family="reelgraph-analysis", requiresCompatibilities=["FARGATE", "EC2"],
                                 networkMode="awsvpc", cpu="1024", memory="4096",
                                 containerDefinitions=[{"name": "reelgraph", "image": "reelgraph-analysis:latest",
                                                        "cpu": 1024, "memory": 4096}])
    image = ec2.describe_images()["Images"][0]["ImageId"]
    gpu_host = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, InstanceType="g5.xlarge")["Instances"][0]
    ecs.register_container_instance(cluster=cluster, instanceIdentityDocument=json.dumps({
        "instanceId": gpu_host["InstanceId"], "region": "us-east-1", "instanceType": "g5.xlarge"}))
    for name, value in {"DAGSTER_POSTGRES_URL": url, "DAGSTER_ECS_TASK_DEFINITION": "reelgraph-analysis:1",
                        "DAGSTER_COMPUTE_LOG_BUCKET": "reelgraph-logs"}.items():
        monkeypatch.setenv(name, value)
    edits = {"cluster: reelgraph ": f"cluster: {cluster} ", "subnet-REPLACE-ME": subnet, "sg-REPLACE-ME": group}
    return {"ecs": ecs, "cluster": cluster, "subnet": subnet, "group": group, "home": tmp_path, "edits": edits}


def test_aws_instance_launches_runs_on_ecs_with_postgres_storage_and_s3_logs(aws):
    instance = _instance_from("aws", aws["home"], aws["edits"])
    try:
        launcher = instance.run_launcher
        assert type(launcher).__name__ == "EcsRunLauncher"
        assert launcher.run_task_kwargs["capacityProviderStrategy"] == [{"capacityProvider": "FARGATE", "weight": 1}]
        assert type(instance.compute_log_manager).__name__ == "S3ComputeLogManager"
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
    finally:
        instance.dispose()


def _step_task(ecs, cluster, step_key, log, timeout_s=120):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        arns = ecs.list_tasks(cluster=cluster)["taskArns"]
        for task in ecs.describe_tasks(cluster=cluster, tasks=arns, include=["TAGS"])["tasks"] if arns else []:
            if {"key": "dagster/step-key", "value": step_key} in task.get("tags", []):
                return task
        time.sleep(1)
    raise AssertionError(f"no ECS task was launched for step {step_key}:\n{log.read_text()[-3000:]}")


def test_ecs_executor_puts_the_gpu_stage_on_a_gpu_task_and_the_cpu_stage_on_fargate(aws, monkeypatch):
    """The run is an ECS task (its metadata endpoint served here); the ECS executor launches each step as a
    task of its own in moto's ECS, and what it asked for is read back with DescribeTasks."""
    ecs, cluster = aws["ecs"], aws["cluster"]
    network = {"awsvpcConfiguration": {"subnets": [aws["subnet"]], "securityGroups": [aws["group"]]}}
    [run_task] = ecs.run_task(cluster=cluster, taskDefinition="reelgraph-analysis:1", networkConfiguration=network,
                              capacityProviderStrategy=[{"capacityProvider": "FARGATE", "weight": 1}])["tasks"]
    task = {"TaskARN": run_task["taskArn"], "Cluster": cluster}
    metadata = json_server(lambda _: task, method="GET")  # ECS's task metadata endpoint, as the task sees it

    instance = _instance_from("aws", aws["home"], aws["edits"])
    instance.add_dynamic_partitions("videos", ["cameras/lobby/2026-01-15T08-00-00.mp4@0123456789ab"])
    instance.dispose()
    env = {**os.environ, "DAGSTER_HOME": str(aws["home"]),
           "ECS_CONTAINER_METADATA_URI_V4": f"http://127.0.0.1:{metadata.port}"}
    logs = {job: aws["home"] / f"{job}.log" for job in ("detections_on_ecs", "tracks_on_ecs")}
    runs = [subprocess.Popen([sys.executable, "-c", _EXECUTE.format(job=job)], cwd=REPO, env=env,
                             stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)
            for job, log in logs.items()]
    try:
        gpu_task = _step_task(ecs, cluster, "detections", logs["detections_on_ecs"])
        cpu_task = _step_task(ecs, cluster, "tracks", logs["tracks_on_ecs"])
    finally:
        for run in runs:  # the step tasks never run in moto: stop waiting for them
            os.killpg(run.pid, signal.SIGKILL)
        metadata.close()

    [gpu_container] = gpu_task["overrides"]["containerOverrides"]
    assert gpu_container["resourceRequirements"] == [{"type": "GPU", "value": "1"}]
    assert gpu_task["capacityProviderName"] == "reelgraph-gpu"
    assert "execute_step" in " ".join(gpu_container["command"])
    assert (gpu_task["overrides"]["cpu"], gpu_task["overrides"]["memory"]) == ("4096", "15360")

    [cpu_container] = cpu_task["overrides"]["containerOverrides"]
    assert "resourceRequirements" not in cpu_container
    assert cpu_task["capacityProviderName"] == "FARGATE"
    assert "execute_step" in " ".join(cpu_container["command"])


_EXECUTE = """
from dagster import DagsterInstance, execute_job, reconstructable
from tests.deploy.ecs_jobs import {job}
execute_job(reconstructable({job}), instance=DagsterInstance.get(),
            tags={{"dagster/partition": "cameras/lobby/2026-01-15T08-00-00.mp4@0123456789ab"}})
"""


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
    from orchestration.executors import build_executor

    monkeypatch.setenv("REELGRAPH_EXECUTOR", "ecs")
    assert build_executor().name == "ecs"
    monkeypatch.setenv("REELGRAPH_EXECUTOR", "multiprocess")
    assert build_executor() is None
    monkeypatch.setenv("REELGRAPH_EXECUTOR", "batch")
    with pytest.raises(ValueError, match="REELGRAPH_EXECUTOR must be one of multiprocess, ecs, k8s, not 'batch'"):
        build_executor()


def test_helm_values_run_our_code_location_with_the_k8s_executor():
    values = yaml.safe_load((REPO / "deploy/k8s/values.yaml").read_text())
    [deployment] = values["dagster-user-deployments"]["deployments"]
    assert deployment["dagsterApiGrpcArgs"][:2] == ["--module-name", "orchestration.definitions"]
    assert {"name": "REELGRAPH_EXECUTOR", "value": "k8s"} in deployment["env"]
    assert values["runLauncher"]["type"] == "K8sRunLauncher"


def test_iam_policy_grants_reads_of_the_raw_prefix_the_model_mirror_the_recorders_writes_and_retention_alone():
    policy = json.loads((REPO / "deploy/iam-policy.json").read_text())
    assert policy["Version"] == "2012-10-17"
    statements = {s["Sid"]: s for s in policy["Statement"]}
    assert len(statements) == len(policy["Statement"]) == 7  # one statement per Sid, and no others
    assert all(s["Effect"] == "Allow" for s in statements.values())
    # Each statement: one action, on exactly one resource (the placeholders a user replaces).
    assert {sid: (s["Action"], s["Resource"]) for sid, s in statements.items()} == {
        "ListRawFootage": ("s3:ListBucket", "arn:aws:s3:::RAW_BUCKET"),  # the bucket itself: ListBucket's resource
        "ReadRawFootage": ("s3:GetObject", "arn:aws:s3:::RAW_BUCKET/RAW_PREFIX*"),  # objects under the prefix only
        "ReadModelMirror": ("s3:GetObject", "arn:aws:s3:::MODEL_BUCKET/MODEL_PREFIX*"),
        # `reelgraph record` uploads segments under cameras/ of the raw prefix, and writes nowhere else
        "RecordCameraSegments": ("s3:PutObject", "arn:aws:s3:::RAW_BUCKET/RAW_PREFIXcameras/*"),
        # retention and `reelgraph forget` remove footage (every version) under the raw prefix, nowhere else
        "ListFootageVersions": ("s3:ListBucketVersions", "arn:aws:s3:::RAW_BUCKET"),
        "RetireFootage": ("s3:DeleteObject", "arn:aws:s3:::RAW_BUCKET/RAW_PREFIX*"),
        "RetireFootageVersions": ("s3:DeleteObjectVersion", "arn:aws:s3:::RAW_BUCKET/RAW_PREFIX*"),
    }
    # Listing is confined to the raw prefix, the same prefix the reads are confined to.
    for listing in ("ListRawFootage", "ListFootageVersions"):
        assert statements[listing]["Condition"] == {"StringLike": {"s3:prefix": ["RAW_PREFIX*"]}}
    assert all("Condition" not in statements[sid] for sid in ("ReadRawFootage", "ReadModelMirror",
                                                               "RecordCameraSegments", "RetireFootage",
                                                               "RetireFootageVersions"))
    assert not any(key in s for s in statements.values() for key in ("NotAction", "NotResource", "Principal"))


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


def test_compose_takes_credentials_from_an_ignored_env_file_and_publishes_on_loopback_only():
    import re
    import subprocess

    text = (REPO / "deploy/docker-compose.yml").read_text()
    services = yaml.safe_load(text)["services"]
    for name in ("postgres", "minio", "create-bucket"):
        secrets = {k: str(v) for k, v in (services[name].get("environment") or {}).items()
                   if k.endswith(("_USER", "_PASSWORD"))}
        assert len(secrets) == 2 and all(v.startswith("${") for v in secrets.values()), (name, secrets)
    assert "minio-secret" not in text and ":reelgraph@" not in text
    published = [port for service in services.values() for port in service.get("ports", [])]
    assert published and all(port.startswith("127.0.0.1:") for port in published)
    # every variable the stack needs is in the committed example, and the real file is never committed
    needed = set(re.findall(r"\$\{(\w+)", text))
    example = dict(line.split("=", 1) for line in (REPO / "deploy/.env.example").read_text().splitlines()
                   if line and not line.startswith("#"))
    assert needed == set(example)
    ignored = subprocess.run(["git", "check-ignore", "-q", "deploy/.env"], cwd=REPO, check=False)
    assert ignored.returncode == 0


def test_the_recorder_runs_on_the_light_image_in_compose_and_kubernetes():
    from video_analysis.recording.cameras import load_cameras

    services = yaml.safe_load((REPO / "deploy/docker-compose.yml").read_text())["services"]
    recorder = services["recorder"]
    assert recorder["build"]["dockerfile"] == "deploy/Dockerfile.ingest" and "deploy" not in recorder
    assert recorder["command"][:2] == ["reelgraph", "record"]
    assert recorder["environment"]["REELGRAPH_S3_BUCKET"] == "raw-videos"  # segments go where uploads go
    cameras = load_cameras(REPO / "deploy/compose/cameras.yaml", environ={"LOBBY_PASSWORD": "x"})
    assert [c.name for c in cameras] == ["lobby"] and cameras[0].kind == "rtsp"
    documents = list(yaml.safe_load_all((REPO / "deploy/k8s/recorder.yaml").read_text()))
    deployment = next(d for d in documents if d["kind"] == "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert "ingest" in container["image"] and container["args"][:2] == ["reelgraph", "record"]
    assert deployment["spec"]["replicas"] == 1 and "nvidia.com/gpu" not in str(container)
    config = next(d for d in documents if d["kind"] == "ConfigMap")
    assert "cameras:" in config["data"]["cameras.yaml"]
    # a stop waits for uploads in flight, within the pod's grace period; the spool outlives the pod
    pod = deployment["spec"]["template"]["spec"]
    stop_s = int(next(e["value"] for e in container["env"] if e["name"] == "REELGRAPH_RECORDER_STOP_SECONDS"))
    assert pod["terminationGracePeriodSeconds"] >= stop_s + 20
    [spool] = [v for v in pod["volumes"] if v["name"] == "spool"]
    claim = next(d for d in documents if d["kind"] == "PersistentVolumeClaim")
    assert spool["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]


def test_light_image_requirements_carry_no_deep_learning_stack():
    lines = (REPO / "deploy/requirements-ingest.txt").read_text().lower()
    assert not any(name in lines for name in ("torch", "ultralytics", "transformers"))


def test_the_review_service_is_deployed_only_with_a_token():
    services = yaml.safe_load((REPO / "deploy/docker-compose.yml").read_text())["services"]
    review = services["review"]
    assert review["command"][:2] == ["reelgraph", "serve"] and "0.0.0.0" in review["command"]
    assert review["environment"]["REELGRAPH_SERVICE_TOKENS"].endswith(":?set it in deploy/.env}")
    assert all(port.startswith("127.0.0.1:") for port in review["ports"])
    documents = list(yaml.safe_load_all((REPO / "deploy/k8s/review.yaml").read_text()))
    deployment = next(d for d in documents if d["kind"] == "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    tokens = next(e for e in container["env"] if e["name"] == "REELGRAPH_SERVICE_TOKENS")
    assert "optional" not in tokens["valueFrom"]["secretKeyRef"]  # no Secret, no pod
    assert container["readinessProbe"]["httpGet"]["path"] == "/api/health"
    # the image that runs it carries the service package
    assert "COPY service service" in (REPO / "deploy/Dockerfile.analysis").read_text()


def test_each_image_copies_every_package_the_project_installs():
    """An image built without one of the project's packages installs, then fails at its first import."""
    import tomllib

    found = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    packages = [name.rstrip("*") for name in found["include"]]
    for dockerfile, needless in (("Dockerfile.analysis", set()), ("Dockerfile.ingest", {"service"})):
        text = (REPO / "deploy" / dockerfile).read_text()
        missing = [p for p in packages if p not in needless and f"COPY {p} {p}" not in text]
        assert not missing, f"deploy/{dockerfile} does not copy {missing}"
