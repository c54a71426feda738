import subprocess
import sys

from video_analysis.runtime.embedded_postgres import EmbeddedPostgres
from video_analysis.store import db, schema


def test_embedded_server_serves_pgvector_on_loopback(pg_dsn):
    assert "@127.0.0.1:" in pg_dsn
    with db.connect(pg_dsn) as conn:
        [version] = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()
        assert version.startswith("0.8"), version  # what `reelgraph doctor` reports (tests/test_cli.py)
        distance = conn.execute("SELECT '[1,0]'::vector <=> '[0,1]'::vector").fetchone()[0]
        assert distance == 1.0


def test_migrations_are_versioned_and_idempotent(pg_dsn):
    assert db.prepare(pg_dsn) == []
    with db.connect(pg_dsn) as conn:
        assert schema.current_version(conn) == schema.LATEST_VERSION


def test_every_process_finds_the_same_server(pg_dsn, state_home):
    # A second process (webserver, daemon, run worker) resolves the same DSN instead of a new server.
    code = "import sys; from pathlib import Path; from video_analysis.store import db; " \
           "print(db.resolve_dsn(None, Path(sys.argv[1])))"
    out = subprocess.run([sys.executable, "-c", code, str(state_home.pgdata)], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == pg_dsn


def test_server_restarts_with_its_data(tmp_path):
    folder = tmp_path / "state"
    folder.mkdir()
    folder.chmod(0o755)
    tmp_path.chmod(0o755)
    server = EmbeddedPostgres(folder / "postgres")
    try:
        dsn = server.start()
        db.prepare(dsn)
        with db.connect(dsn, autocommit=True) as conn:
            conn.execute("CREATE TABLE kept (x int)")
            conn.execute("INSERT INTO kept VALUES (42)")
        server.stop()
        assert server.running_port() is None
        dsn = server.start()
        with db.connect(dsn) as conn:
            assert conn.execute("SELECT x FROM kept").fetchone()[0] == 42
    finally:
        server.stop()
