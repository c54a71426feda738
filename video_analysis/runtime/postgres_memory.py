"""How much the embedded PostgreSQL caches (an eighth of memory, 128 MB to 4 GB), kept warm across restarts."""

from __future__ import annotations

import os
import re
from pathlib import Path

from video_analysis.runtime.postgres_install import EmbeddedPostgresError

_SIZE = re.compile(r"\d+(kB|MB|GB|TB)?")


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


def memory_options(shared_buffers: str | None, bin_path: Path) -> str:
    """The server's memory settings: ``shared_buffers`` (PostgreSQL units; None sizes it from memory), and
    pg_prewarm's autoprewarm when the binaries in ``bin_path`` have it."""
    buffers = shared_buffers or f"{shared_buffers_mb()}MB"
    if not _SIZE.fullmatch(buffers):
        raise EmbeddedPostgresError(f"REELGRAPH_POSTGRES_SHARED_BUFFERS must be a size such as 2GB or 512MB, "
                                    f"not {buffers!r}")
    options = f"-c shared_buffers={buffers}"
    library = bin_path.parent / "lib"
    if any((library / f"pg_prewarm{suffix}").exists() for suffix in (".so", ".dylib")):  # else starts plain
        options += " -c shared_preload_libraries=pg_prewarm"
    return options
