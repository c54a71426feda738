import os
import subprocess
import sys
from pathlib import Path

import psycopg
from dagster import DagsterInstance

from assets.partitions import VIDEOS_PARTITIONS_NAME
from orchestration.definitions import defs

REPO = Path(__file__).resolve().parents[2]


def test_definitions_expose_the_graph_sensor_and_job():
    assert defs.get_assets_def("raw_video").partitions_def.name == VIDEOS_PARTITIONS_NAME
    assert defs.resolve_sensor_def("video_upload_sensor").default_status.value == "RUNNING"
    job = defs.resolve_job_def("process_video")
    # exactly the six per-video stages: not the daily report, nothing else
    selected = {key.to_user_string() for key in job.asset_layer.selected_asset_keys}
    assert selected == {"raw_video", "detections", "tracks", "attributes", "embeddings", "summaries"}
    assert {key.to_user_string() for key in job.asset_layer.executable_asset_keys} == selected
    assert job.partitions_def.name == VIDEOS_PARTITIONS_NAME


def test_the_lineage_shows_each_stage_fed_by_what_it_reads():
    """What the UI's lineage graph draws: each stage's upstream assets are the tables it reads."""
    graph = defs.resolve_asset_graph()

    def parents(name):
        from dagster import AssetKey

        return {key.to_user_string() for key in graph.get(AssetKey(name)).parent_keys}

    assert parents("detections") == {"raw_video"}
    assert parents("tracks") == {"detections"}
    assert parents("attributes") == {"tracks"}
    assert parents("embeddings") == {"attributes"}
    # incidents read tracks with their attributes and the detections (the scene's evidence), not the vectors
    assert parents("summaries") == {"detections", "tracks", "attributes"}
    assert parents("camera_daily_report") == {"summaries"}
    assert parents("retention") == set()


def test_each_stage_asset_runs_the_library_module_of_its_name():
    """`assets/detections.py` runs `video_analysis/stages/detections.py`, whose STAGE is the asset's name: one
    name from the UI to the code and the catalogue's stage records."""
    import importlib

    from assets import VIDEO_STAGES

    for asset in VIDEO_STAGES:
        name = asset.key.to_user_string()
        assert importlib.import_module(f"video_analysis.stages.{name}").STAGE == name
        assert importlib.import_module(f"assets.{name}").stage.STAGE == name


def test_workspace_validates_with_the_dagster_cli():
    result = subprocess.run(
        [str(Path(sys.executable).parent / "dagster"), "definitions", "validate", "-w", "workspace.yaml"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "passed validation" in result.stderr + result.stdout


def test_postgres_instance_config_loads_and_stores_partitions(pg_dsn, tmp_path, monkeypatch):
    with psycopg.connect(pg_dsn.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS dagster_storage_test")
        conn.execute("CREATE DATABASE dagster_storage_test")
    url = pg_dsn.replace("postgresql://", "postgresql+psycopg2://").rsplit("/", 1)[0] + "/dagster_storage_test"
    monkeypatch.setenv("DAGSTER_POSTGRES_URL", url)
    (tmp_path / "dagster.yaml").write_text((REPO / "deploy/postgres/dagster.yaml").read_text())

    instance = DagsterInstance.from_config(str(tmp_path))
    try:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        instance.add_dynamic_partitions(VIDEOS_PARTITIONS_NAME, ["clip.mp4@abc"])
        assert instance.get_dynamic_partitions(VIDEOS_PARTITIONS_NAME) == ["clip.mp4@abc"]
    finally:
        instance.dispose()


def test_loading_the_code_location_needs_no_deep_learning_stack():
    # The light image (webserver, daemon, sensors) has no torch: definitions must load without it.
    code = ("import sys; import orchestration.definitions; "
            "print(sorted(m for m in ('torch', 'ultralytics', 'transformers', 'sentence_transformers') "
            "if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert result.stdout.strip() == "[]"


def test_editing_rules_or_zones_makes_only_summaries_stale_and_track_classes_only_tracks(tmp_path):
    """Rules are data: their hash is in the summaries' version (and the track policy's in the tracks')."""
    import json
    import os
    import subprocess
    import sys

    from tests.helpers import REPO

    code = ("import json; from dagster import AssetKey; from orchestration.definitions import defs; "
            "print(json.dumps({k: defs.get_assets_def(k).code_versions_by_key[AssetKey(k)] "
            "for k in ('detections', 'tracks', 'attributes', 'summaries')}))")

    def versions(config_text):
        config = tmp_path / "zones.yaml"
        config.write_text(config_text)
        env = {**os.environ, "REELGRAPH_ZONES": str(config)}
        out = subprocess.run([sys.executable, "-c", code], env=env, cwd=REPO, capture_output=True, text=True,
                             check=True)
        return json.loads(out.stdout.strip().splitlines()[-1])

    base = versions("rules:\n  loiter_seconds: 30\n")
    stricter = versions("rules:\n  loiter_seconds: 20\n")
    zoned = versions("rules:\n  loiter_seconds: 20\ncameras:\n  lobby:\n"
                     "    - {name: door, restricted: true, polygon: [[0, 0], [1, 0], [1, 1]]}\n")
    classes = versions("rules:\n  loiter_seconds: 20\ncameras:\n  lobby:\n"
                       "    - {name: door, restricted: true, polygon: [[0, 0], [1, 0], [1, 1]]}\n"
                       "track_classes:\n  lobby: [person]\n")
    assert base["summaries"] != stricter["summaries"] != zoned["summaries"] == classes["summaries"]
    # attributes record which zones each track entered: zones, not rules, change them
    assert base["attributes"] == stricter["attributes"] != zoned["attributes"] == classes["attributes"]
    assert base["tracks"] == stricter["tracks"] == zoned["tracks"] != classes["tracks"]
    assert base["detections"] == classes["detections"]
    # tiles off (as every deployment before them) keeps detections' version; a grid on a camera changes
    # only the detections' version (the later stages follow it as its downstream)
    assert ":" in base["detections"] and "tiles" not in base["detections"]
    tiled = versions("rules:\n  loiter_seconds: 30\ndetector_tiles:\n  gate: 3x2\n  '*': off\n")
    assert tiled["detections"] != base["detections"]
    assert {k: v for k, v in tiled.items() if k != "detections"} == {k: v for k, v in base.items()
                                                                        if k != "detections"}
    assert versions("rules:\n  loiter_seconds: 30\ndetector_tiles:\n  gate: 9x9\n")["detections"].endswith(
        "-tiles-invalid")  # the definitions still load


def test_the_sensors_run_as_often_as_configured_and_a_bad_interval_stops_the_load():
    code = ("from orchestration.definitions import defs\n"
            "print(sorted((s.name, s.minimum_interval_seconds) for s in defs.sensors))")
    repo = Path(__file__).resolve().parents[2]

    def intervals(value):
        env = {k: v for k, v in os.environ.items() if k != "REELGRAPH_SENSOR_INTERVAL_SECONDS"}
        if value is not None:
            env["REELGRAPH_SENSOR_INTERVAL_SECONDS"] = value
        return subprocess.run([sys.executable, "-c", code], cwd=repo, env=env, capture_output=True, text=True,
                              timeout=120)

    default, faster, bad = intervals(None), intervals("7"), intervals("0")
    assert "('video_upload_sensor', 15)" in default.stdout and "('failure_alert_sensor', 15)" in default.stdout
    assert "('camera_silence_sensor', 15)" in default.stdout
    assert "('video_upload_sensor', 7)" in faster.stdout and "('camera_silence_sensor', 7)" in faster.stdout
    assert "('failure_alert_sensor', 7)" in faster.stdout
    assert bad.returncode != 0 and "REELGRAPH_SENSOR_INTERVAL_SECONDS must be a whole number" in bad.stderr
