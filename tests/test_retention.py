"""Retention over a store of synthetic segments: exactly what the policy says goes, nothing more; a sweep killed
mid-way is finished by the next, and no row is left pointing at footage that is gone."""

import os
import signal
import subprocess
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from psycopg.types.json import Jsonb

from tests.helpers import REELGRAPH, run_cli
from video_analysis.runtime.local_store import LocalFolderStore
from video_analysis.store import catalog
from video_analysis.store.retention import sweep
from video_analysis.store.retention_plan import plan_retention
from video_analysis.store.retention_policy import (
    RetentionConfigError,
    RetentionPolicy,
    load_retention,
    parse_retention,
)

POLICY = """
retention:
  default: {retain_days: 7, retain_incident_days: 14, retain_facts_days: 20, cold_after_days: 3}
  uploads: {retain_days: 30}
  cameras:
    gate: {retain_days: 2, retain_incident_days: 10, cold_after_days: 1}
"""
NOW = datetime(2026, 2, 1, 12, 0, tzinfo=timezone.utc)


def _segments(inbox: Path, now: datetime, cameras=("lobby", "gate", "yard"), days=25, per_day=4) -> None:
    """Small files named as the recorder names segments, one every 6 hours, back from ``now``."""
    for camera in cameras:
        folder = inbox / "cameras" / camera
        folder.mkdir(parents=True, exist_ok=True)
        for n in range(days * per_day):
            at = now - timedelta(hours=6 * n + 1)
            (folder / f"{at:%Y-%m-%dT%H-%M-%S}.mp4").write_bytes(b"segment %d" % n * 10)


def _uploads(inbox: Path, now: datetime, ages_days=(1, 10, 29, 31, 40)) -> None:
    for age in ages_days:
        path = inbox / f"upload-{age}d.mp4"
        path.write_bytes(b"upload" * 100)
        stamp = (now - timedelta(days=age)).timestamp()
        os.utime(path, (stamp, stamp))


def _register_all(db, store: LocalFolderStore) -> int:
    page = store.list_page(None, 100_000)
    for obj in page.objects:
        catalog.register(db, obj)
    # uploaded (and registered by the sensor) when they were written: an upload ages from its arrival
    db.execute("UPDATE videos SET registered_at = last_modified")
    return len(page.objects)


def _give_incidents(db, every: int = 5) -> set[str]:
    """Every ``every``-th video gets a summary with an incident (the rest a summary without)."""
    db.execute("UPDATE videos SET status = 'ready', duration_s = 600")  # as if probed and analysed
    keys = [k for k, in db.execute("SELECT partition_key FROM videos ORDER BY partition_key")]
    with_incident = set(keys[::every])
    for key in keys:
        count = 1 if key in with_incident else 0
        db.execute("INSERT INTO summaries (partition_key, safety_score, incident_count, incidents, summary, facts, "
                   "generator) VALUES (%s, %s, %s, %s, 'synthetic', '{}', 'test')",
                   (key, 100 - 20 * count, count, Jsonb([{"type": "loitering"}] * count)))
    return with_incident


def _expected(db, now: datetime, incidents: set[str]) -> dict[str, str]:
    """The policy worked out by hand for every video: erased, expired, cold or hot."""
    # uploads: retain_days 30, the rest from the default, raised to it (incidents' footage and facts >= 30 days)
    rules = {"gate": (2, 10, 20, 1), None: (30, 30, 30, 3)}
    expected = {}
    for key, camera, recorded, modified in db.execute(
            "SELECT partition_key, camera, recorded_at, last_modified FROM videos"):
        keep, keep_incident, facts, cold = rules.get(camera, (7, 14, 20, 3))
        age = (now - (recorded or modified)).total_seconds() / 86400
        if age > facts:
            expected[key] = "erased"
        elif age > (keep_incident if key in incidents else keep):
            expected[key] = "expired"
        elif cold is not None and age > cold:
            expected[key] = "cold"
        else:
            expected[key] = "hot"
    return expected


def _found(db, store: LocalFolderStore, keys) -> dict[str, str]:
    """What the catalogue says of each video, checked against the files: no row points at missing footage, and
    no footage is left for a row that says it is gone."""
    rows = dict(db.execute("SELECT partition_key, footage FROM videos").fetchall())
    found = {}
    for key in keys:
        state = rows.get(key, "erased")
        found[key] = state
        obj_key = key.rsplit("@", 1)[0]
        hot, cold = (store.root / obj_key).is_file(), (store.cold_root / obj_key).is_file()
        assert (hot, cold) == {"hot": (True, False), "cold": (False, True), "expired": (False, False),
                               "erased": (False, False)}[state], (key, state, hot, cold)
    return found


def test_a_sweep_removes_exactly_what_the_policy_says_and_a_second_changes_nothing(db, tmp_path):
    store = LocalFolderStore(tmp_path / "inbox", tmp_path / "cold")
    _segments(store.root, NOW)
    _uploads(store.root, NOW)
    total = _register_all(db, store)
    incidents = _give_incidents(db)
    expected = _expected(db, NOW, incidents)
    assert total == 305 and {"hot", "cold", "expired", "erased"} <= set(expected.values())
    config = parse_retention(__import__("yaml").safe_load(POLICY))

    plan, result = sweep(db, store, config, NOW)
    assert _found(db, store, expected) == expected
    counts = {state: list(expected.values()).count(state) for state in ("cold", "expired", "erased")}
    assert (result.moved_cold, result.expired, result.erased) == (counts["cold"], counts["expired"], counts["erased"])
    assert result.failures == []
    # footage with an incident outlives the rest: of lobby's videos 10 days old, only those with one keep footage
    kept_for_incident = [k for k, state in expected.items() if k in incidents and state == "cold"
                         and k.startswith("cameras/lobby/")]
    assert any((NOW - _recorded(db, k)).days >= 7 for k in kept_for_incident)
    # every erasure left its audit record, naming no key
    audit = db.execute("SELECT asked_for, sum(videos) FROM erasures GROUP BY asked_for").fetchall()
    assert audit == [("retention", counts["erased"])]
    # a second sweep the same day has nothing to do
    _, again = sweep(db, store, config, NOW)
    assert (again.moved_cold, again.expired, again.erased, again.failures) == (0, 0, 0, [])
    # cold footage still reads, from the cold tier, at the version catalogued
    cold_key = next(k for k, state in expected.items() if state == "cold")
    obj = catalog.object_for(db, cold_key)
    assert store.fetch(obj).is_relative_to(store.cold_root) and len(store.fetch(obj).read_bytes()) == obj.size


def _recorded(db, key: str) -> datetime:
    return db.execute("SELECT coalesce(recorded_at, last_modified) FROM videos WHERE partition_key = %s",
                      (key,)).fetchone()[0]


def test_without_a_policy_nothing_is_removed(db, tmp_path):
    store = LocalFolderStore(tmp_path / "inbox", tmp_path / "cold")
    _segments(store.root, NOW, cameras=("lobby",), days=400, per_day=1)
    _register_all(db, store)
    plan = plan_retention(db, load_retention(tmp_path / "absent.yaml"), NOW)
    assert (plan.to_cold, plan.to_expire, plan.to_erase) == ([], [], [])


@pytest.mark.parametrize(("section", "says"), [
    ({"default": {"retain_days": 30, "retain_facts_days": 10}}, "retain_facts_days (10) is shorter than"),
    ({"default": {"retain_days": -1}}, "retain_days is a number of days > 0"),
    ({"default": {"retain_dayz": 3}}, "unknown setting 'retain_dayz'"),
    ({"cameras": {"gate": {"retain_days": 5, "cold_after_days": 5}}}, "cold_after_days (5) must be shorter"),
    ({"keep": {}}, "unknown retention key 'keep'"),
])
def test_a_policy_that_cannot_mean_what_it_says_is_refused(section, says):
    with pytest.raises(RetentionConfigError, match=says.replace("(", r"\(").replace(")", r"\)")):
        parse_retention({"retention": section})


def test_unset_periods_keep_incidents_and_facts_longer_than_footage():
    config = parse_retention({"retention": {"default": {"retain_days": 30}}})
    assert config.policy_for("any") == RetentionPolicy(30, 90, 365, None)
    assert config.policy_for(None) == config.default


def test_a_sweep_killed_mid_way_is_finished_by_the_next_with_no_row_pointing_at_missing_footage(db, tmp_path):
    now = datetime.now(timezone.utc)
    inbox, cold = tmp_path / "inbox", tmp_path / "cold"
    store = LocalFolderStore(inbox, cold)
    _segments(inbox, now, cameras=("lobby", "gate", "yard", "dock"), days=60, per_day=12)
    total = _register_all(db, store)
    incidents = _give_incidents(db, every=7)
    expected = _expected(db, now, incidents)
    zones = tmp_path / "zones.yaml"
    zones.write_text(POLICY)
    env = {**os.environ, "REELGRAPH_INBOX": str(inbox), "REELGRAPH_COLD_DIR": str(cold), "REELGRAPH_ZONES": str(zones),
           "DAGSTER_HOME": str(tmp_path / "dagster")}

    sweeping = subprocess.Popen([str(REELGRAPH), "retention"], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    progress = 0
    while time.monotonic() < deadline and sweeping.poll() is None:
        progress = db.execute("SELECT count(*) FROM videos WHERE footage <> 'hot'").fetchone()[0]
        if progress:
            break
        time.sleep(0.02)
    os.kill(sweeping.pid, signal.SIGKILL)  # as an OOM kill or a reboot would
    sweeping.wait(10)
    still_to_do = sum(1 for key, state in expected.items() if state in ("cold", "expired")) - progress
    assert progress and still_to_do > 0, f"the kill did not land mid-way ({progress} of {total} done)"

    done = run_cli("retention", env_extra={k: v for k, v in env.items() if k.startswith(("REELGRAPH_", "DAGSTER"))})
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    assert _found(db, store, expected) == expected
    assert "retention: " in done.stdout
    # what is kept, at a glance: bytes per camera, day and tier, and how long the disk lasts
    storage = run_cli("status", "--storage", "--days", "30", env_extra=env)
    assert storage.returncode == 0, storage.stderr[-2000:]
    assert "footage arriving:" in storage.stdout and "hot tier:" in storage.stdout
    assert any(line.split()[:1] == ["gate"] and "expired" in line for line in storage.stdout.splitlines())
    # a dry run after the sweep: nothing left to do
    assert "dry run: nothing changed; 0 video(s) to the cold tier, footage of 0 expired" in run_cli(
        "retention", "--dry-run", env_extra=env).stdout


def test_the_s3_lifecycle_rule_moves_each_camera_cold_on_its_own_day(tmp_path):
    import json

    zones = tmp_path / "zones.yaml"
    zones.write_text(POLICY)
    done = run_cli("retention", "--lifecycle", "--storage-class", "GLACIER_IR",
                   env_extra={"REELGRAPH_ZONES": str(zones)})
    assert done.returncode == 0, done.stderr
    rules = {r["ID"]: (r["Filter"]["Prefix"], r["Transitions"]) for r in json.loads(done.stdout)["Rules"]}
    assert rules == {"reelgraph-cold-gate": ("cameras/gate/", [{"Days": 1, "StorageClass": "GLACIER_IR"}]),
                     "reelgraph-cold-default": ("", [{"Days": 3, "StorageClass": "GLACIER_IR"}])}


def test_a_sweep_leaves_footage_not_analysed_in_flight_or_replaced_by_a_newer_upload(db, tmp_path):
    store = LocalFolderStore(tmp_path / "inbox", tmp_path / "cold")
    _segments(store.root, NOW, cameras=("lobby",), days=12, per_day=1)
    _register_all(db, store)
    _give_incidents(db, every=1000)  # analysed, without incidents (the first one has one: left out below)
    keys = [k for k, in db.execute("SELECT partition_key FROM videos ORDER BY recorded_at")]
    unanalysed, in_flight, replaced = keys[0], keys[1], keys[2]
    db.execute("UPDATE videos SET status = 'registered' WHERE partition_key = %s", (unanalysed,))
    db.execute("INSERT INTO stage_runs (partition_key, stage, status) VALUES (%s, 'detections', 'running')",
               (in_flight,))
    # the key of `replaced` now holds a newer upload (registered now, as its own partition)
    newer_file = store.root / replaced.rsplit("@", 1)[0]
    newer_file.write_bytes(b"the newer upload")
    catalog.register(db, store.head(replaced.rsplit("@", 1)[0]))
    config = parse_retention({"retention": {"default": {"retain_days": 1, "retain_incident_days": 1}}})

    _, result = sweep(db, store, config, NOW)
    states = dict(db.execute("SELECT partition_key, footage FROM videos").fetchall())
    assert states[unanalysed] == states[in_flight] == "hot"  # never analysed, or a stage at work on it
    assert states[replaced] == "expired" and newer_file.read_bytes() == b"the newer upload"  # the newer one stays
    assert result.expired == sum(1 for state in states.values() if state == "expired") > 0
    # an archive imported today with its old modification times ages from today
    old_file = store.root / "archive.mp4"
    old_file.write_bytes(b"archive")
    stamp = (NOW - timedelta(days=100)).timestamp()
    os.utime(old_file, (stamp, stamp))
    catalog.register(db, store.head("archive.mp4"))
    db.execute("UPDATE videos SET status = 'ready' WHERE object_key = 'archive.mp4'")
    plan = plan_retention(db, config, NOW)
    assert "archive.mp4" not in {a.obj.key for a in plan.to_expire + plan.to_erase}


def test_footage_kept_for_good_keeps_what_has_incidents_and_the_facts_too():
    config = parse_retention({"retention": {"default": {"retain_days": 30},
                                            "cameras": {"vault": {"retain_days": None}}}})
    assert config.policy_for("vault") == RetentionPolicy(None, None, None, None)
    with pytest.raises(RetentionConfigError, match="retain_incident_days keeps for good but retain_facts_days is 10"):
        parse_retention({"retention": {"default": {"retain_days": None, "retain_facts_days": 10}}})


def test_the_nightly_retention_asset_records_what_it_moved_and_removed(db, tmp_path, monkeypatch):
    from dagster import DagsterInstance, materialize

    from assets import retention
    from orchestration.definitions import build_resources, defs

    now = datetime.now(timezone.utc)
    inbox, cold, zones = tmp_path / "inbox", tmp_path / "cold", tmp_path / "zones.yaml"
    for name, value in {"REELGRAPH_INBOX": inbox, "REELGRAPH_COLD_DIR": cold, "REELGRAPH_ZONES": zones}.items():
        monkeypatch.setenv(name, str(value))
    zones.write_text(POLICY)
    store = LocalFolderStore(inbox, cold)
    _segments(inbox, now, cameras=("lobby",), days=100, per_day=1)  # 6 h apart: 25 days back
    _register_all(db, store)
    _give_incidents(db, every=1000)
    expected = _expected(db, now, set(db.execute("SELECT partition_key FROM summaries WHERE incident_count > 0")))

    with DagsterInstance.ephemeral() as instance:
        result = materialize([retention], resources=build_resources(), instance=instance)
        assert result.success
        [event] = result.asset_materializations_for_node("retention")
        shown = {name: value.value for name, value in event.metadata.items()}
    counts = {state: list(expected.values()).count(state) for state in ("cold", "expired", "erased")}
    assert (shown["moved to cold tier"], shown["footage expired"], shown["videos erased"]) == (
        counts["cold"], counts["expired"], counts["erased"])
    assert counts["expired"] and counts["erased"] and shown["bytes freed"] > 0 and shown["failures"] == []
    assert _found(db, store, expected) == expected
    # and it runs every night on its own
    schedule = defs.get_schedule_def("retention_job_schedule")
    assert schedule.cron_schedule == "30 2 * * *" and schedule.default_status.value == "RUNNING"
