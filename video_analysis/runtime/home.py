"""The one state folder that holds everything reelgraph keeps locally.

Embedded database, inbox, download cache and the local Dagster instance all live under it, so
two checkouts (or two test runs) never share state: point ``REELGRAPH_HOME`` somewhere else (read by
`configuration.settings`, which passes it here).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

HOME_ENV = "REELGRAPH_HOME"


CHECKOUT = Path(__file__).resolve().parents[2]  # video_analysis/runtime/home.py -> the checkout


def _default_home() -> Path:
    # In a source checkout keep state beside the code (one state per checkout, as the README's `.reelgraph/inbox/`
    # says); an installed package falls back to the user's data folder.
    if (CHECKOUT / "pyproject.toml").exists() and (CHECKOUT / "video_analysis").is_dir():
        return CHECKOUT / ".reelgraph"
    return Path.home() / ".local" / "share" / "reelgraph"


@dataclass(frozen=True)
class StateHome:
    root: Path

    @classmethod
    def at(cls, configured: str | None) -> StateHome:
        """The folder ``configured`` ($REELGRAPH_HOME), else the checkout's or the user's default."""
        return cls(Path(configured).expanduser().resolve() if configured else _default_home())

    @property
    def pgdata(self) -> Path:
        return self.root / "postgres"

    @property
    def inbox(self) -> Path:
        return self.root / "inbox"

    @property
    def cache(self) -> Path:
        return self.root / "cache"

    @property
    def dagster_home(self) -> Path:
        return self.root / "dagster"

    @property
    def thumbnails(self) -> Path:
        return self.root / "thumbnails"

    def ensure(self) -> StateHome:
        """Create the folders; the state folder is this user's only (0700), folders above it are left as they are."""
        self.root.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o700)
        for folder in (self.inbox, self.cache, self.dagster_home, self.thumbnails):
            folder.mkdir(exist_ok=True)
        return self
