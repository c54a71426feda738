"""`reelgraph forget`: a video erased on request leaves nothing findable, and an audit record of what went."""

import re
import shutil

import pytest

from tests.helpers import run_cli as run

pytestmark = pytest.mark.slow


def _tables_with_partition_key(db) -> list[str]:
    return [t for t, in db.execute("""SELECT table_name FROM information_schema.columns
                                      WHERE table_schema = 'public' AND column_name = 'partition_key'""")]


def test_a_forgotten_video_leaves_no_trace_in_search_the_api_the_database_or_the_store(inbox, db, tmp_path,
                                                                                        short_clip, bottle_clip):
    env = {"DAGSTER_HOME": str(tmp_path / "dagster")}
    gone_file, kept_file = tmp_path / "2026-01-15T08-00-00.mp4", tmp_path / "2026-01-15T09-00-00.mp4"
    shutil.copyfile(short_clip, gone_file)
    shutil.copyfile(bottle_clip, kept_file)
    out = run("process", "--prefix", "cameras/lobby/", str(gone_file), str(kept_file), env_extra=env, check=True)
    gone, kept = re.findall(r"-> (\S+)", out.stdout)
    said = {d for d, in db.execute("SELECT description FROM track_attributes WHERE partition_key = %s", (gone,))}
    said -= {d for d, in db.execute("SELECT description FROM track_attributes WHERE partition_key = %s", (kept,))}
    from datetime import date

    from video_analysis.store.reports import replace_daily_report

    replace_daily_report(db, date(2026, 1, 15))  # the day's report, as the daily schedule writes it
    assert said and db.execute("SELECT videos FROM camera_daily_reports WHERE camera = 'lobby'").fetchone() == (2,)

    dry = run("forget", gone, "--dry-run", env_extra=env, check=True).stdout
    assert f"would erase {gone} (lobby, 2026-01-15T08:00:00+00:00" in dry and "dry run: nothing erased" in dry
    assert run("forget", gone, env_extra=env).returncode == 2  # not without --yes
    assert db.execute("SELECT count(*) FROM tracks WHERE partition_key = %s", (gone,)).fetchone()[0] > 0

    done = run("forget", "cameras/lobby/2026-01-15T08-00-00.mp4", "--yes", env_extra=env)
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    assert "erased 1 video(s), 1 footage object(s)" in done.stdout and "note: Dagster run" not in done.stdout

    # the database: no row of any table names it; no description only it had; the day's report without it
    for table in _tables_with_partition_key(db):
        assert db.execute(f"SELECT count(*) FROM {table} WHERE partition_key = %s", (gone,)).fetchone() == (0,), table
    assert not db.execute("SELECT content FROM descriptions WHERE content = ANY(%s)", (list(said),)).fetchall()
    assert db.execute("SELECT videos FROM camera_daily_reports WHERE camera = 'lobby'").fetchone() == (1,)
    assert db.execute("SELECT count(*) FROM tracks WHERE partition_key = %s", (kept,)).fetchone()[0] > 0
    # the store: the footage is gone, the other video's stays
    assert not (inbox / "cameras" / "lobby" / gone_file.name).exists()
    assert (inbox / "cameras" / "lobby" / kept_file.name).exists()
    # the audit record: what went, and nothing that names or describes it
    [(videos, cameras, footage, rows, *record)] = db.execute(
        "SELECT videos, cameras, footage_bytes, rows_removed, asked_for, recorded_from::text FROM erasures").fetchall()
    assert (videos, cameras, footage) == (1, ["lobby"], gone_file.stat().st_size) and rows["tracks"] > 0
    assert not any(part in str(record) + str(rows) for part in ("08-00-00", ".mp4", gone.split("@")[-1]))

    # search and the service find nothing of it
    from fastapi.testclient import TestClient

    from resources import ModelRegistryResource, ObjectStoreResource, PostgresResource
    from service.app import ServiceContext, create_app
    from video_analysis.search import SearchFilters, search
    from video_analysis.store.db import PooledDatabase

    model, embedder = ModelRegistryResource().load("text_embedder", allow_download=False)
    hits = [h.partition_key for query in ["person", *said] for h in search(db, query, embedder, model.name,
                                                                           SearchFilters(), limit=50)]
    assert gone not in hits and kept in hits
    database = PooledDatabase(PostgresResource().dsn(), max_size=2)
    try:
        app = create_app(ServiceContext(database=database, store=ObjectStoreResource().store(),
                                        text_embedder=None, text_model_name="none"))
        with TestClient(app, base_url="http://127.0.0.1") as client:
            assert client.get(f"/api/videos/{gone}").status_code == 404
            assert client.get(f"/api/videos/{kept}").status_code == 200
    finally:
        database.close()
    # and Dagster keeps no partition of it, nor any materialization's metadata
    status = run("status", "--json", env_extra=env, check=True).stdout
    assert gone not in status and kept in status
    from dagster import AssetKey, AssetRecordsFilter, DagsterInstance

    with DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
        for stage in ("raw_video", "detections", "tracks", "attributes", "embeddings", "summaries"):
            records = instance.fetch_materializations(AssetRecordsFilter(
                asset_key=AssetKey(stage), asset_partitions=[gone, kept]), limit=10).records
            assert [r.partition_key for r in records] == [kept], stage
    assert run("forget", gone, "--yes", env_extra=env).returncode == 1  # asked again: nothing matches
