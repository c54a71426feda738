"""Reading a postmaster.pid: the pid, port and status it names, and whether that pid is really this folder's server."""

from __future__ import annotations

import os
from pathlib import Path


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


def is_postgres(pid: int, pgdata: Path | None = None) -> bool:
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
