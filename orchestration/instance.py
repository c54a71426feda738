"""The local Dagster instance: SQLite storage under the state folder, shared by the UI and the CLI."""

import os
from pathlib import Path

import yaml

from video_analysis.home import StateHome

LOCAL_INSTANCE = {
    "telemetry": {"enabled": False},
    "run_monitoring": {"enabled": True, "free_slots_after_run_end_seconds": 30},
    "run_retries": {"enabled": True, "max_retries": 1},
    "sensors": {"use_threads": True, "num_workers": 2},
    # One heavy (pool "gpu") step at a time; raise to the number of GPUs on a workstation.
    "concurrency": {"pools": {"default_limit": 1}},
}


def ensure_local_instance(home: StateHome) -> Path:
    """Point DAGSTER_HOME at the state folder (unless set) and write its dagster.yaml once."""
    dagster_home = Path(os.environ.setdefault("DAGSTER_HOME", str(home.dagster_home)))
    dagster_home.mkdir(parents=True, exist_ok=True)
    config = dagster_home / "dagster.yaml"
    if not config.exists():
        config.write_text(yaml.safe_dump(LOCAL_INSTANCE, sort_keys=False))
    return dagster_home
