"""What test modules share: plain helpers and constants. Fixtures live in conftest.py, generated video files
in tests/media.py.

Test modules import from here, never from one another (nor from conftest.py). Heavy dependencies (Dagster,
the code location, torch) are imported where a helper runs, so importing this module stays cheap.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from testbed.system import apt_install, free_port  # noqa: F401 - the tests' and the benchmarks' one copy
from tests.http_servers import S3Proxy, webhook_sink

if TYPE_CHECKING:
    from dagster import DagsterInstance

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
REELGRAPH = BIN / "reelgraph"
MANIFEST = REPO / "models" / "manifest.yaml"

# Counted by eye on a contact sheet of one-by-one-person-detection.mp4: six people cross the room one
# at a time, in these intervals (seconds).
PEOPLE_ON_SCREEN = [(8, 20), (24, 46), (52, 70), (76, 88), (94, 120), (124, 136)]


def write_manifest(folder: Path, checkpoints: dict, profiles: dict) -> Path:
    """A model manifest (models/manifest.yaml format) in ``folder``."""
    import yaml

    path = folder / "manifest.yaml"
    path.write_text(yaml.safe_dump({"profiles": profiles, "checkpoints": checkpoints}))
    return path


def run_cli(*args: str, env_extra: dict | None = None, check: bool = False) -> subprocess.CompletedProcess:
    """The installed ``reelgraph`` command, in a subprocess with this session's environment."""
    env = {**os.environ, **(env_extra or {})}
    return subprocess.run([str(REELGRAPH), *args], capture_output=True, text=True, env=env, timeout=600, check=check)


@contextmanager
def seeded_torch(seed: int = 0):
    """Random-weight models built inside are the same every run; torch's global generator is restored after."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


@dataclass
class SensorHarness:
    """Evaluate the upload sensor the way the daemon does, and keep score of what it requested."""

    instance: DagsterInstance
    cursor: str | None = None
    run_keys: list[str] = field(default_factory=list)

    def tick(self) -> list[str]:
        """One evaluation; applies partition requests and the cursor; returns the run keys requested."""
        from dagster import SensorResult, SkipReason, build_sensor_context

        from orchestration.definitions import build_resources
        from orchestration.sensors import video_upload_sensor

        context = build_sensor_context(instance=self.instance, cursor=self.cursor, resources=build_resources())
        result = video_upload_sensor(context)
        if isinstance(result, SkipReason):
            self.cursor = context.cursor
            return []
        assert isinstance(result, SensorResult)
        for request in result.dynamic_partitions_requests or []:
            self.instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
        self.cursor = result.cursor
        keys = [request.run_key for request in result.run_requests]
        assert all(r.partition_key == r.run_key for r in result.run_requests)
        self.run_keys += keys
        return keys

    def tick_until_quiet(self, max_ticks: int = 50) -> int:
        for count in range(1, max_ticks + 1):
            before = len(self.run_keys)
            self.tick()
            if len(self.run_keys) == before and self.cursor_position() is None:
                return count
        raise AssertionError("sensor never settled")

    def cursor_position(self):
        return json.loads(self.cursor or "{}").get("start_after")

    def restart(self):
        """A restarted daemon: a new instance object over the same storage, same cursor."""
        from dagster import DagsterInstance

        self.instance = DagsterInstance.from_ref(self.instance.get_ref())

    def reset_cursor(self):
        self.cursor = None

    @property
    def partitions(self) -> list[str]:
        from assets.partitions import VIDEOS_PARTITIONS_NAME

        return self.instance.get_dynamic_partitions(VIDEOS_PARTITIONS_NAME)


class FlakyS3Proxy(S3Proxy):
    """A local HTTP proxy in front of moto's S3 that answers 503 SlowDown to the first ``failures`` GET
    requests for an object (listings and HEADs pass through), then forwards everything: a throttled or
    failing S3 as a client sees it. ``failures=None`` fails every object GET. ``put_delay_s`` holds each upload
    that long first (a slow uplink), counting those started and done."""

    def __init__(self, upstream: str, failures: int | None, put_delay_s: float = 0.0):
        self.failures, self.refused = failures, 0
        self.put_delay_s, self.puts_started, self.puts_done = put_delay_s, 0, 0
        super().__init__(upstream)

    def intercept(self, handler, body: bytes) -> bool:
        is_object_get = handler.command == "GET" and "list-type" not in handler.path and handler.path.count("/") >= 2
        if is_object_get and (self.failures is None or self.refused < self.failures):
            self.refused += 1
            handler.reply(503, b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message>"
                               b"</Error>", "application/xml")
            return True
        if handler.command == "PUT" and self.put_delay_s:
            self.puts_started += 1
            time.sleep(self.put_delay_s)  # the upload's bytes on a slow link
        return False

    def forwarded(self, handler) -> None:
        self.puts_done += handler.command == "PUT"


KITCHEN_KEY = "cameras/kitchen/2026-01-15T08-00-00.mp4"  # the bottle clip, as a camera segment


@contextmanager
def sample_clips_processed(pg_dsn: str, person_clip: Path, bottle_clip: Path, inbox: Path, dagster_folder: Path):
    """Both sample clips through every stage (offline profile), in an emptied database; yields
    (instance, {"person": partition, "kitchen": partition}). The environment holds until the block ends."""
    import shutil

    import pytest
    from dagster import instance_for_test, materialize

    from assets import VIDEO_STAGES
    from orchestration.definitions import build_resources
    from orchestration.failures import failure_reasons
    from video_analysis.store.db import connect

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("REELGRAPH_INBOX", str(inbox))
        patch.setenv("REELGRAPH_SETTLE_SECONDS", "0")
        patch.setenv("REELGRAPH_MODEL_PROFILE", "offline")
        with connect(pg_dsn, autocommit=True) as conn:
            conn.execute("TRUNCATE videos, descriptions, description_vectors CASCADE")
        (inbox / "cameras/kitchen").mkdir(parents=True)
        shutil.copyfile(person_clip, inbox / "one-by-one-person-detection.mp4")
        shutil.copyfile(bottle_clip, inbox / KITCHEN_KEY)
        with instance_for_test(temp_dir=str(dagster_folder)) as instance:
            partitions = SensorHarness(instance).tick()
            for partition in partitions:
                result = materialize(VIDEO_STAGES, partition_key=partition, instance=instance,
                                     resources=build_resources(), raise_on_error=False)
                assert result.success, failure_reasons(result)
            yield instance, {("person" if p.startswith("one-by-one") else "kitchen"): p for p in partitions}


def ensure_chromium() -> tuple[str, str] | None:
    """Debian's chromium and chromedriver, installed through apt when missing and we may (root).

    Returns their paths, or None where they are missing and cannot be installed here.
    """
    import shutil

    def found():
        browser, driver = shutil.which("chromium"), shutil.which("chromedriver")
        return (browser, driver) if browser and driver else None

    if found() or os.geteuid() != 0 or not shutil.which("apt-get"):
        return found()
    apt_install(["chromium", "chromium-driver"], found)
    return found()



def start_service(env: dict, log_path: Path, timeout_s: float = 120, host: str = "127.0.0.1",
                  token: str | None = None):
    """`reelgraph serve` on a free port, as a user starts it; returns (process, its URL) once it answers
    (with ``token``, once it answers a signed-in health check)."""
    import httpx

    port = free_port()
    log = open(log_path, "w+")  # noqa: SIM115 - the service writes into it for as long as it runs
    server = subprocess.Popen([str(REELGRAPH), "serve", "--host", host, "--port", str(port)], env=env, stdout=log,
                              stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if httpx.get(url + "/api/health", headers=headers, timeout=10).status_code == 200:
                return server, url
        except httpx.TransportError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            server.kill()
            log.seek(0)
            raise AssertionError("reelgraph serve did not come up:\n" + log.read()[-3000:])
        time.sleep(0.5)


def headless_chrome():
    """A headless Chromium through Selenium; fails in CI and skips elsewhere where it cannot be had."""
    import pytest

    chromium = ensure_chromium()
    if chromium is None:
        if os.environ.get("CI"):
            raise AssertionError("chromium and chromedriver are missing and could not be installed")
        pytest.skip("chromium and chromedriver are missing and cannot be installed here (not root)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium[0]
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000",
                     "--autoplay-policy=no-user-gesture-required"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(chromium[1]), options=options)
    driver.set_page_load_timeout(60)
    return driver


def wait_for(condition, timeout_s: float, what: str, interval_s: float = 1.0, context=lambda: ""):
    """Poll ``condition`` until it returns something truthy (returned); fail with ``what`` and ``context()``."""
    import time

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(interval_s)
    raise AssertionError(f"{what} within {timeout_s:.0f} s\n{context()}")


# How often the sensors of a test's `reelgraph dev` run (REELGRAPH_SENSOR_INTERVAL_SECONDS; 15 by default):
# Dagster's daemon looks about every 5 s, so 5 is the shortest that means what it says.
SENSOR_INTERVAL_S = 5


class DevStack:
    """`reelgraph dev` as a user starts it, in its own state folder; ``home_files`` are written there first
    (a cameras file, a zones file)."""

    def __init__(self, folder: Path, home_files: dict[str, str] | None = None):
        from orchestration.backfill import DagsterWebserver
        from video_analysis.runtime.embedded_postgres import EmbeddedPostgres

        self.home = folder / "home"
        self.home.mkdir(parents=True)
        for name, text in (home_files or {}).items():
            (self.home / name).write_text(text)
        self.manifest = folder / "manifest.yaml"
        shutil.copyfile(MANIFEST, self.manifest)
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.alerts, self.alert_sink = webhook_sink()
        self.env = {**os.environ, "REELGRAPH_HOME": str(self.home), "REELGRAPH_SETTLE_SECONDS": "1",
                    "REELGRAPH_SENSOR_INTERVAL_SECONDS": str(SENSOR_INTERVAL_S),
                    "REELGRAPH_ALERT_WEBHOOK": f"http://127.0.0.1:{self.alert_sink.port}/hooks/T0/SECRET",
                    "REELGRAPH_VIDEOS_PER_RUN": "5", "REELGRAPH_MODELS_MANIFEST": str(self.manifest),
                    "DAGSTER_HOME": str(self.home / "dagster"), "REELGRAPH_DAGSTER_URL": self.url}
        for name in ("REELGRAPH_INBOX", "REELGRAPH_S3_BUCKET", "REELGRAPH_DATABASE_URL", "REELGRAPH_CAMERAS"):
            self.env.pop(name, None)
        self.log_path = folder / "dev.log"
        self.log = open(self.log_path, "w")
        self.port = port
        self.start()
        self.server = EmbeddedPostgres(self.home / "postgres")
        self.webserver = DagsterWebserver(self.url)

    def start(self):
        """`reelgraph dev` in a session of its own, as a service manager starts it."""
        self.process = subprocess.Popen([str(BIN / "reelgraph"), "dev", "--no-sample", "--port", str(self.port)],
                                        env=self.env, stdout=self.log, stderr=subprocess.STDOUT,
                                        start_new_session=True)

    def log_tail(self) -> str:
        """The end of the stack's log without the sensor daemon's routine lines, which would fill it."""
        lines = [line for line in self.log_path.read_text().splitlines()
                 if "SensorDaemon" not in line or "Error" in line or "error" in line]
        return "\n".join(lines)[-6000:]

    def runs_of(self, object_key: str) -> str:
        """Every run of the video's partition, one line each: what a failure message needs to show."""
        lines = []
        for record in self.instance().get_run_records():
            run = record.dagster_run
            if run.tags.get("dagster/partition", "").startswith(object_key):
                parent = run.tags.get("dagster/parent_run_id", "")[:8]
                lines.append(f"{run.run_id[:8]} {run.status.value} parent={parent} start={record.start_time} "
                             f"end={record.end_time} tags={dict(run.tags)}")
        return "\n".join(lines)

    def wait_until_up(self, timeout_s=180):
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                if self.webserver.query("{ version }") and (self.home / "inbox").is_dir():
                    return
            except Exception:  # noqa: BLE001 - WebserverError: not up yet
                pass
            time.sleep(1)
        raise AssertionError("reelgraph dev did not come up\n" + self.log_tail())

    def sql(self, query, params=()):
        from video_analysis.store import db

        with db.connect(self.server.dsn(self.server.running_port())) as conn:
            return conn.execute(query, params).fetchall()

    def cli(self, *args) -> str:
        done = subprocess.run([str(BIN / "reelgraph"), *args], env=self.env, capture_output=True, text=True,
                              timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    def stop(self):
        self.end()
        self.server.discard()
        self.alert_sink.close()
        self.log.close()

    def end(self):
        """Stop this `reelgraph dev` and everything it started, by whatever means it takes."""
        for sig, wait_s in ((signal.SIGTERM, 30), (signal.SIGKILL, 10)):
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                pass
            try:
                self.process.wait(wait_s)
                break
            except subprocess.TimeoutExpired:
                continue

    def instance(self):
        from dagster import DagsterInstance

        return DagsterInstance.from_config(str(self.home / "dagster"))

    def wait_for(self, condition, timeout_s: float, what: str, video: str | None = None):
        """``wait_for`` whose failure shows the log, and with ``video`` that video's runs and stages."""
        def context():
            shown = self.log_tail()
            if video:
                shown += f"\n--- runs of {video}:\n{self.runs_of(video)}\n--- stages: {self.stage_states(video)}"
            return shown

        return wait_for(condition, timeout_s, what, context=context)

    def sensor_ticks_since(self, sensor: str, since: float) -> int:
        """Ticks of ``sensor`` the daemon finished after ``since`` (a Unix time): evidence that it ran, where a
        test asserts that nothing more happened over some ticks (a fixed sleep proves no tick ran)."""
        query = """query ($name: String!) { sensorOrError(sensorSelector: {repositoryLocationName: "reelgraph",
          repositoryName: "__repository__", sensorName: $name}) {
          ... on Sensor { sensorState { ticks(limit: 50) { timestamp status } } } } }"""
        ticks = self.webserver.query(query, {"name": sensor})["sensorOrError"]["sensorState"]["ticks"]
        return sum(1 for tick in ticks if tick["timestamp"] > since and tick["status"] != "STARTED")

    def sensor_tick_in_progress(self, sensor: str) -> bool:
        """Whether the daemon is in the middle of a tick of ``sensor`` (stopping a sensor lets that tick finish)."""
        query = """query ($name: String!) { sensorOrError(sensorSelector: {repositoryLocationName: "reelgraph",
          repositoryName: "__repository__", sensorName: $name}) {
          ... on Sensor { sensorState { ticks(limit: 1) { status } } } } }"""
        ticks = self.webserver.query(query, {"name": sensor})["sensorOrError"]["sensorState"]["ticks"]
        return bool(ticks) and ticks[0]["status"] == "STARTED"

    def completed(self, object_key: str) -> bool:
        """Every stage of the video done (embeddings and summaries run side by side: neither is last)."""
        return set(self.stage_states(object_key).values()) == {"done"} and len(self.stage_states(object_key)) == 6

    def stage_states(self, object_key: str) -> dict:
        return dict(self.sql("SELECT s.stage, s.status FROM stage_runs s JOIN videos v USING (partition_key) "
                             "WHERE v.object_key = %s", (object_key,)))
