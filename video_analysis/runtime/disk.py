"""Free space on the volumes footage is written to, against a floor: below it, retention frees space first, then
recording pauses and pipeline steps refuse to start, rather than failing half-way with a full disk."""

from __future__ import annotations

import errno
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]i?b?|b)?\s*$", re.I)
_UNITS = {"": 1, "b": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}


class DiskFullError(OSError):
    """A volume we write to is below its free-space floor, or ran out of space."""

    def __str__(self) -> str:
        return self.strerror or super().__str__()


@dataclass(frozen=True)
class DiskFloor:
    """The least free space a volume keeps: bytes, or a share of the volume's size."""

    bytes: int = 0
    percent: float = 0.0

    @classmethod
    def parse(cls, text: str) -> DiskFloor:
        """``"5%"``, ``"20G"``, ``"512M"``, ``"0"`` (no floor)."""
        text = (text or "0").strip()
        if text.endswith("%"):
            try:
                percent = float(text[:-1])
            except ValueError:
                percent = -1.0
            if not 0 <= percent < 100:
                raise ValueError(f"disk floor {text!r}: a share of the volume is between 0% and 100%")
            return cls(percent=percent)
        match = _SIZE.match(text)
        if not match:
            raise ValueError(f"disk floor {text!r}: write bytes with a unit (20G, 512M) or a share (5%)")
        return cls(bytes=int(float(match.group(1)) * _UNITS[(match.group(2) or "")[:1].lower()]))

    def required(self, volume_bytes: int) -> int:
        return max(self.bytes, int(volume_bytes * self.percent / 100))

    def __str__(self) -> str:
        return f"{self.percent:g}%" if self.percent else describe_bytes(self.bytes)


@dataclass(frozen=True)
class Space:
    path: Path
    free: int
    total: int
    floor: int

    @property
    def short(self) -> int:
        """Bytes to free to be back at the floor (0 when above it)."""
        return max(0, self.floor - self.free)

    def describe(self) -> str:
        return (f"{describe_bytes(self.free)} free on the volume of {self.path}, below the floor of "
                f"{describe_bytes(self.floor)}")


def space(path: Path, floor: DiskFloor) -> Space:
    """Free space where ``path`` is (its nearest existing folder)."""
    probe = Path(path)
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    usage = shutil.disk_usage(probe)
    return Space(Path(path), usage.free, usage.total, floor.required(usage.total))


def check(path: Path, floor: DiskFloor, doing: str) -> None:
    """Raise DiskFullError when the volume of ``path`` is below the floor: ``doing`` would then fail half-way."""
    found = space(path, floor)
    if found.short:
        raise DiskFullError(errno.ENOSPC, f"disk full: {found.describe()}; {doing} needs room (free space, or let "
                                          "retention remove old footage: `reelgraph retention`)")


def is_disk_full(exc: BaseException) -> bool:
    """Whether an error (or one it was raised from) is a volume out of space."""
    while exc is not None:
        if isinstance(exc, DiskFullError) or (isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)):
            return True
        text = str(exc)
        if "No space left on device" in text or "could not extend file" in text:
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def describe_bytes(count: int) -> str:
    for unit, size in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if abs(count) >= size:
            return f"{count / size:.1f} {unit}"
    return f"{count} B"


def file_bytes(path: Path) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0
