import json

import pytest

from tests.helpers import run_cli as run


@pytest.fixture
def cli_env(inbox, db, tmp_path):
    return {"DAGSTER_HOME": str(tmp_path / "dagster")}


def test_doctor_reports_one_line_per_part(cli_env):
    result = run("doctor", env_extra=cli_env)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert [line.split()[1] for line in lines] == ["database:", "object", "models:", "gpu:"]
    assert "pgvector 0.8" in lines[0] and "schema v" in lines[0]
    assert "detector: ssd-mobilenet-v2-coco" in lines[2] and "text_embedder: all-minilm-l6-v2" in lines[2]
    assert "image_embedder: absent" in lines[2]


def test_doctor_fails_when_the_database_is_unreachable(cli_env):
    result = run("doctor", env_extra={**cli_env, "REELGRAPH_DATABASE_URL": "postgresql://nobody@127.0.0.1:9/x"})
    assert result.returncode == 1
    assert result.stdout.startswith("FAIL database:")


def test_process_then_status(cli_env, person_clip, bad_files):
    notes, _ = bad_files["notes.mp4"]
    result = run("process", str(person_clip), str(notes), env_extra=cli_env)
    assert result.returncode == 1  # one of the two files is not a video
    assert "ok   " in result.stdout and "not a video file" in result.stdout

    status = json.loads(run("status", "--json", env_extra=cli_env, check=True).stdout)
    by_key = {row["object_key"]: row for row in status}
    assert by_key["one-by-one-person-detection.mp4"]["frame_count"] == 1394
    assert by_key["one-by-one-person-detection.mp4"]["stages"]["raw_video"]["status"] == "done"
    assert by_key["notes.mp4"]["status"] == "failed"
    assert "not a video file" in by_key["notes.mp4"]["stages"]["raw_video"]["error"]

    table = run("status", env_extra=cli_env, check=True).stdout
    assert "1394" in table and "failed" in table


def test_process_reports_missing_files(cli_env):
    result = run("process", "/nonexistent/clip.mp4", env_extra=cli_env)
    assert result.returncode == 1 and "no such file" in result.stdout
