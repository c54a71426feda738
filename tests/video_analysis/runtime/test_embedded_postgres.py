"""The embedded server through what goes wrong around it: a kill -9, a start while it recovers, a lost or
empty password file, a stale postmaster.pid naming someone else's server, a restart where its port was."""

import logging
import os
import signal
import socket
import stat
import threading
import time

import psycopg
import pytest

from video_analysis.runtime import embedded_postgres
from video_analysis.runtime.embedded_postgres import EmbeddedPostgres, EmbeddedPostgresError, pidfile_status
from video_analysis.store import db


@pytest.fixture
def server(tmp_path):
    """A private server's folders (not started), discarded afterwards."""
    server = EmbeddedPostgres(tmp_path / "state" / "postgres")
    yield server
    server.discard()


def _answers(dsn: str) -> bool:
    with db.connect(dsn) as conn:
        return conn.execute("SELECT 1").fetchone() == (1,)


def _set_status(server: EmbeddedPostgres, status: str) -> None:
    """Rewrite the status line of the running server's postmaster.pid, as PostgreSQL itself writes it."""
    pidfile = server.pgdata / "postmaster.pid"
    lines = pidfile.read_text().splitlines()
    lines[7] = status.ljust(8)
    pidfile.write_text("\n".join(lines) + "\n")


def test_the_status_line_of_a_pidfile_tells_starting_ready_and_stopping_apart():
    head = "4242\n/data\n1796377939\n5999\n\n127.0.0.1\n  3170482    294957\n"
    assert pidfile_status(head + "ready   \n") == (4242, 5999, "ready")
    assert pidfile_status(head + "standby \n") == (4242, 5999, "ready")
    assert pidfile_status(head + "starting\n") == (4242, 5999, "starting")  # crash recovery included
    assert pidfile_status(head + "stopping\n") == (4242, 5999, "stopping")
    assert pidfile_status(head) == (4242, 5999, "starting")  # written before the status line
    assert pidfile_status("4242\n/data\n") == (4242, None, "starting")
    assert pidfile_status("") is None


def test_a_start_while_the_server_recovers_waits_for_it_instead_of_starting_another(server, caplog):
    dsn = server.start()
    port = server.running_port()
    _set_status(server, "starting")  # what a server replaying its log after a crash shows
    assert server.running_port() is None and server.status() == ("starting", None)
    threading.Timer(2.0, _set_status, (server, "ready")).start()
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger=embedded_postgres.__name__):
        assert server.start() == dsn  # the same server, once ready; no second one tried
    assert time.monotonic() - started >= 1.9
    assert any("is starting" in r.getMessage() and "waiting" in r.getMessage() for r in caplog.records)
    assert server.running_port() == port and _answers(dsn)


def test_a_server_killed_mid_write_starts_again_with_what_it_had_committed(server):
    dsn = server.start()
    with db.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE kept AS SELECT g AS x FROM generate_series(1, 1000) g")

    told = []  # what the writer's client was told of its insert

    def write():  # seconds of work: its process goes on after the postmaster's death, holding the server's memory
        try:
            with db.connect(dsn, autocommit=True) as conn:
                conn.execute("INSERT INTO kept SELECT g FROM generate_series(1, 4000000) g")
            told.append("committed")
        except psycopg.Error:
            told.append("failed")

    writer = threading.Thread(target=write)
    writer.start()
    time.sleep(1.0)
    assert writer.is_alive()
    os.kill(pidfile_status((server.pgdata / "postmaster.pid").read_text())[0], signal.SIGKILL)  # the postmaster
    started = time.monotonic()
    dsn = server.start()
    assert time.monotonic() - started < embedded_postgres.START_TIMEOUT_S
    writer.join()
    with db.connect(dsn) as conn:
        # every committed row, once; the insert in flight wholly there if its client was told it committed, else
        # not at all (never half)
        landed = told == ["committed"]
        assert conn.execute("SELECT count(*), count(DISTINCT x) FILTER (WHERE x <= 1000) FROM kept").fetchone() == (
            1000 + 4_000_000 * landed, 1000), told
        assert conn.execute("SELECT count(*) FROM kept WHERE x <= 1000").fetchone()[0] == 1000 * (1 + landed)
    assert "database system was interrupted" in server.logfile.read_text()  # it did recover from the crash


def _unreadable_cwd(monkeypatch):
    """Reading where a process runs is refused, as it is for root without the right to trace another user's
    processes (a container's default)."""
    readlink = os.readlink

    def refuse(path, *args, **kwargs):
        if str(path).startswith("/proc/") and str(path).endswith("/cwd"):
            raise PermissionError(13, "Permission denied", str(path))
        return readlink(path, *args, **kwargs)

    monkeypatch.setattr(os, "readlink", refuse)


def test_a_pidfile_naming_another_folder_s_postgres_whose_folder_cannot_be_read_is_stale(
        server, pg_dsn, state_home, monkeypatch):
    server.start()
    server.stop()
    # A crash left postmaster.pid behind, and its pid now belongs to another PostgreSQL: the session's server.
    other = (EmbeddedPostgres(state_home.pgdata).pgdata / "postmaster.pid").read_text()
    (server.pgdata / "postmaster.pid").write_text(other)
    _unreadable_cwd(monkeypatch)
    assert server.running_port() is None
    dsn = server.start()
    assert _answers(dsn) and f":{pidfile_status(other)[1]}/" not in dsn


def test_its_own_server_is_still_known_when_its_folder_cannot_be_read(server, monkeypatch):
    dsn = server.start()
    port = server.running_port()
    _unreadable_cwd(monkeypatch)
    assert server.running_port() == port  # known by the folder it was started on
    assert server.start() == dsn


@pytest.mark.parametrize("content", ["", "  \n"])
def test_an_empty_password_file_is_replaced_and_the_server_starts_with_it(server, content):
    server.password_file.parent.mkdir(parents=True)
    server.password_file.write_text(content)  # a crash while an older version wrote it
    dsn = server.start()
    password = server.password_file.read_text().strip()
    assert len(password) >= 24 and f":{password}@" in dsn
    assert stat.S_IMODE(os.stat(server.password_file).st_mode) == 0o600
    assert _answers(dsn)
    assert not [p for p in server.password_file.parent.iterdir() if p.name.startswith(".postgres.password")]


def test_a_server_whose_password_file_was_lost_takes_the_new_one(server, caplog):
    server.start()
    port = server.running_port()
    server.password_file.write_text("")  # lost while the server runs
    with caplog.at_level(logging.ERROR, logger=embedded_postgres.__name__):
        with pytest.raises(EmbeddedPostgresError, match="reelgraph db stop"):
            server.start()
    assert any("is lost" in r.getMessage() for r in caplog.records)
    with pytest.raises(psycopg.OperationalError, match="password"):
        psycopg.connect(server.dsn(port), connect_timeout=5)
    server.stop()
    dsn = server.start()  # the server takes the password of the new file
    assert f":{server.password_file.read_text().strip()}@" in dsn and _answers(dsn)


def _listening_on(port: int, timeout_s: float = 30.0) -> socket.socket:
    """A socket listening on ``port``: another program taking the server's port. A client socket of a test
    process beside this one can hold the same number for a moment (pytest -n), so binding is retried."""
    squatter = socket.socket()
    squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # past the stopped server's TIME_WAITs
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            squatter.bind(("127.0.0.1", port))
            squatter.listen()
            return squatter
        except OSError:
            if time.monotonic() > deadline:
                squatter.close()
                raise
            time.sleep(0.2)


def test_a_restarted_server_keeps_its_port_unless_another_program_took_it(server, caplog):
    dsn = server.start()
    port = server.running_port()
    server.stop()
    assert server.start() == dsn  # a process holding the address reaches the server again
    server.stop()
    with _listening_on(port):
        with caplog.at_level(logging.WARNING, logger=embedded_postgres.__name__):
            moved = server.start()
        assert server.running_port() != port and _answers(moved)
    assert any(f"port {port}" in r.getMessage() and "taken" in r.getMessage() for r in caplog.records)
    new_port = server.running_port()
    server.stop()
    assert server.start() == moved and server.running_port() == new_port  # where it moved to is remembered
