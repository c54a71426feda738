import subprocess
import sys
import time

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
    server = EmbeddedPostgres(tmp_path / "state" / "postgres")
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
        server.discard()


def _private_server(tmp_path) -> EmbeddedPostgres:
    return EmbeddedPostgres(tmp_path / "state" / "postgres")


def test_the_embedded_server_wants_its_password(pg_dsn, state_home):
    import os
    import stat

    import psycopg
    import pytest

    server = EmbeddedPostgres(state_home.pgdata)
    port = server.running_port()
    for dsn in (f"postgresql://postgres@127.0.0.1:{port}/reelgraph",
                f"postgresql://postgres:wrong@127.0.0.1:{port}/reelgraph",
                f"postgresql://reelgraph-pg@127.0.0.1:{port}/reelgraph"):
        with pytest.raises(psycopg.OperationalError, match="password"):
            psycopg.connect(dsn, connect_timeout=5)
    assert stat.S_IMODE(os.stat(server.password_file).st_mode) == 0o600
    assert "trust" not in (server.pgdata / "pg_hba.conf").read_text()
    with db.connect(pg_dsn) as conn:  # the project's own DSN carries it
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_a_program_on_the_servers_port_asking_for_the_password_in_clear_never_gets_it(tmp_path):
    """While the embedded server is down another local program can listen on its port: the client must not
    answer its request for a cleartext password (PostgreSQL's wire protocol, AuthenticationCleartextPassword)."""
    import socket
    import struct
    import threading

    import psycopg
    import pytest

    from tests.helpers import free_port

    port, received = free_port(), []
    listener = socket.create_server(("127.0.0.1", port))

    def impostor():
        conn, _ = listener.accept()
        with conn:
            conn.settimeout(5)
            while True:  # "no" to the client's requests for SSL or GSS encryption, then its startup message
                length, code = struct.unpack("!II", conn.recv(8))
                if code not in (80877103, 80877104):
                    conn.recv(length - 8)
                    break
                conn.sendall(b"N")
            conn.sendall(b"R" + struct.pack("!II", 8, 3))  # "send me your password in clear"
            try:
                while chunk := conn.recv(4096):
                    received.append(chunk)
            except OSError:
                pass

    thread = threading.Thread(target=impostor, daemon=True)
    thread.start()
    server = EmbeddedPostgres(tmp_path / "pgdata")
    (tmp_path / "pgdata").mkdir()
    with pytest.raises(psycopg.OperationalError, match="cleartext|password"):
        psycopg.connect(server.dsn(port), connect_timeout=5)
    thread.join(10)
    listener.close()
    assert not any(server.password().encode() in chunk for chunk in received), received


def test_the_state_folder_is_private_and_nothing_above_it_is_opened(tmp_path):
    import os
    import stat

    from video_analysis.runtime.home import StateHome
    from video_analysis.runtime.postgres_install import SERVER_USER

    closed = tmp_path / "closed"
    closed.mkdir(mode=0o700)  # as /root is: nobody else may enter
    home = StateHome(closed / "home").ensure()
    server = EmbeddedPostgres(home.pgdata)
    try:
        with db.connect(server.start()) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        assert stat.S_IMODE(os.stat(home.root).st_mode) == 0o700
        assert stat.S_IMODE(os.stat(closed).st_mode) == 0o700  # not opened to let the server in
        assert stat.S_IMODE(os.stat(server.pgdata).st_mode) == 0o700
        if os.geteuid() == 0:  # the server runs as its own user, on data outside the root-only state folder
            import pwd

            assert not server.pgdata.is_relative_to(closed)
            assert pwd.getpwuid(os.stat(server.pgdata).st_uid).pw_name == SERVER_USER
    finally:
        server.discard()


def test_a_data_folder_that_trusted_everyone_is_switched_to_passwords(tmp_path):
    import psycopg
    import pytest

    server = _private_server(tmp_path)
    try:
        server.start()
        server.stop()
        # What an older version wrote: trust for every local connection.
        hba = server.pgdata / "pg_hba.conf"
        hba.write_text("host all all 127.0.0.1/32 trust\n")
        port_dsn = server.start()
        assert "trust" not in hba.read_text()
        port = server.running_port()
        with pytest.raises(psycopg.OperationalError, match="password"):
            psycopg.connect(f"postgresql://postgres@127.0.0.1:{port}/reelgraph", connect_timeout=5)
        with db.connect(port_dsn) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        server.discard()


def test_a_pid_file_naming_a_reused_pid_does_not_stop_the_server_starting(tmp_path):
    import os

    server = _private_server(tmp_path)
    try:
        server.start()
        server.stop()
        # A crash left postmaster.pid behind, and its pid now belongs to another program (this test).
        (server.pgdata / "postmaster.pid").write_text(
            f"{os.getpid()}\n{server.pgdata}\n0\n5999\n\n127.0.0.1\n0 0\nready\n")
        assert server.running_port() is None
        dsn = server.start()
        with db.connect(dsn) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        server.discard()


def test_the_server_caches_an_eighth_of_memory_and_keeps_its_cache_across_restarts(tmp_path, monkeypatch):
    from video_analysis.runtime.embedded_postgres import EmbeddedPostgresError
    from video_analysis.runtime.postgres_memory import shared_buffers_mb

    assert shared_buffers_mb(24 * 2**30) == 3072 and shared_buffers_mb(512 * 2**20) == 128
    assert shared_buffers_mb(256 * 2**30) == 4096
    from configuration.settings import Settings

    monkeypatch.setenv("REELGRAPH_POSTGRES_SHARED_BUFFERS", "96MB")  # what the entry points pass to the server
    server = EmbeddedPostgres(tmp_path / "state" / "postgres", Settings.from_env().postgres_shared_buffers)
    try:
        with db.connect(server.start(), autocommit=True) as conn:
            assert conn.execute("SHOW shared_buffers").fetchone()[0] == "96MB"
            conn.execute("CREATE TABLE kept AS SELECT g AS x FROM generate_series(1, 100000) g")
            assert conn.execute("SELECT sum(x) FROM kept").fetchone()[0] == 5000050000
        server.stop()  # autoprewarm writes down the blocks the cache held
        assert (server.pgdata / "autoprewarm.blocks").exists()
        server.start()  # and reads them back
        deadline = time.monotonic() + 30
        while "autoprewarm successfully prewarmed" not in server.logfile.read_text():
            assert time.monotonic() < deadline, server.logfile.read_text()[-2000:]
            time.sleep(0.2)
        server.stop()
        try:
            EmbeddedPostgres(server.requested, "96MB; rm -rf /").start()
            raise AssertionError("a malformed size must not start the server")
        except EmbeddedPostgresError as exc:
            assert "REELGRAPH_POSTGRES_SHARED_BUFFERS" in str(exc)
        assert server.running_port() is None
    finally:
        server.discard()
