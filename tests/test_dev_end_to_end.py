"""The README's promise: with `reelgraph dev` running, a clip dropped into the inbox goes through every
stage on its own: the sensor registers it and one run materializes the whole chain."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from video_analysis import db
from video_analysis.postgres import EmbeddedPostgres

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_dropped_clip_is_materialized_by_the_sensor_on_its_own(tmp_path, person_clip):
    home = tmp_path / "home"
    home.mkdir(parents=True)
    for folder in (tmp_path, home):
        folder.chmod(0o755)
    env = {**os.environ, "REELGRAPH_HOME": str(home), "REELGRAPH_SETTLE_SECONDS": "1"}
    for name in ("DAGSTER_HOME", "REELGRAPH_INBOX", "REELGRAPH_S3_BUCKET", "REELGRAPH_DATABASE_URL"):
        env.pop(name, None)
    log = open(tmp_path / "dev.log", "w")
    dev = subprocess.Popen(
        [str(Path(sys.executable).parent / "reelgraph"), "dev", "--no-sample", "--port", str(_free_port())],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    server = EmbeddedPostgres(home / "postgres")
    try:
        deadline = time.monotonic() + 60
        while not (home / "inbox").is_dir() and time.monotonic() < deadline:
            time.sleep(0.5)
        shutil.copyfile(person_clip, home / "inbox" / ".copying")
        os.replace(home / "inbox" / ".copying", home / "inbox" / "one-by-one-person-detection.mp4")

        row, stages, deadline = None, {}, time.monotonic() + 420
        while time.monotonic() < deadline:
            if server.running_port():
                with db.connect(server.dsn(server.running_port())) as conn:
                    row = conn.execute("SELECT status, frame_count, fps, width, height FROM videos").fetchone()
                    stages = dict(conn.execute("SELECT stage, status FROM stage_runs").fetchall())
                if row and row[0] == "failed" or "failed" in stages.values() or stages.get("summaries") == "done":
                    break
            time.sleep(2)
        log_tail = (tmp_path / "dev.log").read_text()[-4000:]
        assert row == ("ready", 1394, 10.0, 768, 432), log_tail
        assert stages == {stage: "done" for stage in
                          ("raw_video", "detections", "tracks", "attributes", "embeddings", "summaries")}, log_tail
    finally:
        os.killpg(dev.pid, signal.SIGTERM)
        try:
            dev.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(dev.pid, signal.SIGKILL)
        server.stop()
        log.close()
