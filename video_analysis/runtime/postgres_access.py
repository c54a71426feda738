"""Who may log in to the embedded PostgreSQL: its generated password file and scram-sha-256 over loopback only."""

from __future__ import annotations

import fcntl
import logging
import os
import secrets
import subprocess
import tempfile
from contextlib import contextmanager
from pathlib import Path

from video_analysis.runtime.postgres_install import START_TIMEOUT_S, EmbeddedPostgresError, PostgresInstall, as_root

log = logging.getLogger(__name__)

DATABASE_NAME = "reelgraph"
HBA_RULES = """# Written by reelgraph: password (scram-sha-256) over loopback TCP only; no unix socket.
host    all    all    127.0.0.1/32    scram-sha-256
host    all    all    ::1/128         scram-sha-256
"""


def write_private(path: Path, text: str) -> None:
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


def wrong_password(exc: Exception) -> bool:
    return "password authentication failed" in str(exc)


def trusts_anyone(hba: str) -> bool:
    """Whether pg_hba.conf lets some connection in without a password."""
    rules = (line.split("#", 1)[0].split() for line in hba.splitlines())
    return any(rule and rule[-1] == "trust" or "trust" in rule[3:] for rule in rules if rule)


class PostgresAccess(PostgresInstall):
    """A server's superuser password (``postgres.password``), its pg_hba.conf, and the DSN that carries both."""

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
            write_private(self.password_file, generated + "\n")
            return generated

    def _read_password(self) -> str | None:
        try:
            return self.password_file.read_text().strip() or None
        except FileNotFoundError:
            return None

    def dsn(self, port: int, database: str = DATABASE_NAME) -> str:
        """The server's URL. ``require_auth=scram-sha-256``: a program that takes the port while the server is
        down and asks for the password in clear (or for none) is refused, and never sees it."""
        return f"postgresql://postgres:{self.password()}@127.0.0.1:{port}/{database}?require_auth=scram-sha-256"

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

    @contextmanager
    def _password_for_initdb(self):
        """The password in a file initdb (running as the server user) can read, removed right after."""
        fd, name = tempfile.mkstemp(prefix=".pwfile-", dir=self.pgdata.parent)
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(self.password() + "\n")
            if as_root():
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
        if stat is not None and as_root():
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
