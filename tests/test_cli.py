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
    assert [line.split()[1] for line in lines] == ["database:", "object", "models:", "gpu:", "runs:"]
    assert "pgvector 0.8" in lines[0] and "schema v" in lines[0]
    assert "detector: picodet-s-416" in lines[2] and "text_embedder: all-minilm-l6-v2" in lines[2]
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


def test_partial_and_odd_footage_is_processed_and_shown_as_it_decoded(cli_env, bottle_clip, tmp_path):
    from tests.media import corrupt_middle, write_video

    whole = write_video(tmp_path / "whole.mp4", 240, rate=30, source=bottle_clip, faststart=True)
    cut = tmp_path / "power-loss.mp4"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    damaged = corrupt_middle(write_video(tmp_path / "plain.mp4", 240, rate=30, source=bottle_clip),
                             tmp_path / "damaged.mp4")
    dvr = write_video(tmp_path / "dvr-export.avi", 120, rate=30, codec="mpeg4", pts_step=2, source=bottle_clip)
    result = run("process", str(cut), str(damaged), str(dvr), env_extra=cli_env)
    assert result.returncode == 0, result.stdout + result.stderr

    by_key = {row["object_key"]: row for row in json.loads(run("status", "--json", env_extra=cli_env,
                                                                check=True).stdout)}
    cut_row, damaged_row, dvr_row = by_key["power-loss.mp4"], by_key["damaged.mp4"], by_key["dvr-export.avi"]
    assert cut_row["status"] == "partial" and cut_row["covered_s"] < 6.0 and cut_row["duration_s"] == 8.0
    assert damaged_row["status"] == "partial" and damaged_row["decode_errors"] >= 1
    assert damaged_row["covered_s"] > 7.0  # what follows the damage decoded too
    assert dvr_row["status"] == "ready" and dvr_row["decoded_frames"] == 120
    for row in (cut_row, damaged_row, dvr_row):
        assert {stage["status"] for stage in row["stages"].values()} == {"done"}, row
    table = run("status", env_extra=cli_env, check=True).stdout
    assert "partial" in table and "of 8.0 s decoded" in table


AFTER_AN_IN_PROCESS_RUN = """
import signal, subprocess, sys
from dagster import asset, materialize
import orchestration.cli as cli

@asset
def one():
    return 1

def run_then_stop_a_child(_args=None):
    assert materialize([one]).success
    child = subprocess.Popen(["sleep", "60"])
    child.terminate()
    try:
        print("child:", child.wait(5))
    except subprocess.TimeoutExpired:
        child.kill()
        print("child: ignored SIGTERM")
    return 0

if sys.argv[1] == "through the CLI":
    cli.cmd_doctor = run_then_stop_a_child  # a command of the CLI, as `reelgraph process` runs one
    sys.exit(cli.main(["doctor"]))
run_then_stop_a_child()
"""


@pytest.mark.parametrize("started", ["directly", "through the CLI"])
def test_a_command_started_in_the_background_keeps_sigterm_after_an_in_process_run(started):
    """A shell starts a background command with SIGINT ignored; after an in-process Dagster run (`reelgraph
    process`) SIGTERM was ignored too (Dagster maps it onto SIGINT's handler), and so in every process started
    after it outside a run. The CLI takes SIGINT back. ("directly" pins Dagster's behaviour: should an upgrade
    stop mapping SIGTERM, that case fails and the CLI's step may go.)"""
    import signal
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", AFTER_AN_IN_PROCESS_RUN, started], capture_output=True, text=True,
                          timeout=120, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    assert done.returncode == 0, done.stderr[-2000:]
    expected = "child: ignored SIGTERM" if started == "directly" else f"child: {-signal.SIGTERM}"
    assert expected in done.stdout, done.stdout


def test_after_kill_9_of_reelgraph_process_the_next_one_completes(cli_env, bottle_clip, short_clip, db, tmp_path):
    import os
    import signal
    import subprocess
    import time

    from tests.helpers import REELGRAPH

    env = {**os.environ, **cli_env}
    victim = subprocess.Popen([str(REELGRAPH), "process", str(bottle_clip)], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:  # kill it in the middle of detections, holding the GPU pool slot
        row = db.execute("SELECT status FROM stage_runs WHERE stage = 'detections'").fetchone()
        if row == ("running",):
            break
        assert victim.poll() is None, "the process ended before detections started"
        time.sleep(0.2)
    else:
        raise AssertionError("detections never started")
    os.killpg(victim.pid, signal.SIGKILL)
    victim.wait()

    doctor = run("doctor", env_extra=cli_env)
    assert doctor.returncode == 1 and "runs: 1 stuck, holding pool slots" in doctor.stdout

    started = time.monotonic()
    result = subprocess.run([str(REELGRAPH), "process", str(short_clip)], env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "recovered: run" in result.stdout and "pool slots freed" in result.stdout
    elapsed_s = time.monotonic() - started
    print(f"the next reelgraph process completed in {elapsed_s:.0f} s")
    assert elapsed_s < 240
    by_key = {row["object_key"]: row for row in json.loads(run("status", "--json", env_extra=cli_env,
                                                                check=True).stdout)}
    killed = by_key["bottle-detection.mp4"]["stages"]["detections"]
    assert killed["status"] == "failed" and "worker was killed" in killed["error"]
    assert by_key["short.mp4"]["stages"]["summaries"]["status"] == "done"
    assert "runs: none stuck" in run("doctor", env_extra=cli_env).stdout


def test_db_url_masks_the_password_unless_asked_to_show_it(pg_dsn, capsys, monkeypatch):
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    from orchestration.cli import main

    password = conninfo_to_dict(pg_dsn)["password"]
    assert main(["db", "url"]) == 0
    masked = capsys.readouterr().out.strip()
    assert main(["db", "url", "--show-password"]) == 0
    shown = capsys.readouterr().out.strip()
    leaked = password in masked
    assert password and not leaked, "reelgraph db url printed the password"
    assert masked == shown.replace(password, "***")  # the same URL, its password masked
    with psycopg.connect(shown) as conn:  # the shown one is what psql needs: it connects
        assert conn.execute("SELECT 1").fetchone() == (1,)
    monkeypatch.setenv("REELGRAPH_DATABASE_URL", "postgresql://reader:s3cret@db.internal:5432/footage")
    assert main(["db", "url"]) == 0
    assert capsys.readouterr().out.strip() == "postgresql://reader:***@db.internal:5432/footage"


@pytest.fixture
def full_profile_with_a_writer(tmp_path, tiny_vlm, monkeypatch):
    """The `full` profile whose summarizer (the answer writer) is a small vision-language checkpoint on disk."""
    import yaml

    from models.registry import MANIFEST
    from tests.helpers import write_manifest

    shipped = yaml.safe_load(MANIFEST.read_text())["checkpoints"]
    checkpoints = {**shipped, "tiny-vlm": {"task": "summarizer", "backend": "transformers-image-text-to-text",
                                          "source": str(tiny_vlm), "version": "tiny-vlm-1"}}
    manifest = write_manifest(tmp_path, checkpoints, {"full": {"text_embedder": "all-minilm-l6-v2",
                                                               "summarizer": "tiny-vlm"}})
    monkeypatch.setenv("REELGRAPH_MODELS_MANIFEST", str(manifest))
    monkeypatch.setenv("REELGRAPH_MODEL_PROFILE", "full")


def test_answer_writer_off_keeps_the_template_even_where_a_writer_is_present(db, full_profile_with_a_writer,
                                                                            capsys, monkeypatch):
    from pgvector.psycopg import register_vector

    from orchestration.cli import main
    from resources import ModelRegistryResource

    model, embedder = ModelRegistryResource().load("text_embedder")  # the profile's, as the service loads it
    summary = "600 seconds of camera yard: 2 people tracked. No incidents. Safety score 100/100."
    register_vector(db)
    db.execute("INSERT INTO videos (partition_key, source, object_key, version, size_bytes, last_modified, camera) "
               "VALUES ('yard.mp4@1', 'local', 'yard.mp4', '1', 1, now(), 'yard')")
    db.execute("INSERT INTO summaries (partition_key, safety_score, incident_count, incidents, summary, facts, "
               "generator) VALUES ('yard.mp4@1', 100, 0, '[]', %s, '{}', 'template')", (summary,))
    db.execute("INSERT INTO embeddings (partition_key, kind, content, model_name, model_version, dim, embedding) "
               "VALUES ('yard.mp4@1', 'summary_text', %s, %s, '1', %s, %s)",
               (summary, model.name, embedder.dim, embedder.embed([summary])[0]))
    question = "were there people in the yard?"  # (a "how many" question is counted, not written)

    monkeypatch.setenv("REELGRAPH_ANSWER_WRITER", "auto")
    assert main(["ask", question]) == 0
    consulted = capsys.readouterr().out
    # the writer was asked; a random checkpoint cites nothing, so the template stands and the note says so
    assert "(written by template; tiny-vlm's answer was empty or did not cite" in consulted

    monkeypatch.setenv("REELGRAPH_ANSWER_WRITER", "off")
    assert main(["ask", question]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == consulted.splitlines()[0]  # the same templated answer, citing the yard's summary
    assert "yard.mp4" in lines[0]
    assert lines[1] == "  (written by template)"  # and no writer was asked


def test_below_the_disk_floor_a_stage_fails_saying_disk_full_and_writes_nothing(cli_env, short_clip, db):
    full = run("process", str(short_clip), env_extra={**cli_env, "REELGRAPH_DISK_FLOOR": "99.99%"})
    assert full.returncode == 1 and "disk full:" in full.stdout, full.stdout + full.stderr[-2000:]
    [(stage, error)] = db.execute("SELECT stage, error FROM stage_runs WHERE status = 'failed'").fetchall()
    assert stage == "raw_video" and error.startswith("disk full: ") and "below the floor" in error
    assert db.execute("SELECT count(*) FROM detections").fetchone() == (0,)
    # space back: the same command completes the video, once
    again = run("process", str(short_clip), env_extra=cli_env)
    assert again.returncode == 0, again.stdout + again.stderr[-2000:]
    assert db.execute("SELECT count(*) FROM stage_runs WHERE status = 'done'").fetchone() == (6,)
