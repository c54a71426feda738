"""The local Dagster instance: SQLite storage under the state folder, shared by the UI and the CLI."""

import os
import shutil
from pathlib import Path

from video_analysis.runtime.home import StateHome

LOCAL_CONFIG = Path(__file__).resolve().parents[1] / "deploy" / "local" / "dagster.yaml"


def ensure_local_instance(home: StateHome) -> Path:
    """Point DAGSTER_HOME at the state folder (unless set) and give it deploy/local/dagster.yaml once."""
    dagster_home = Path(os.environ.setdefault("DAGSTER_HOME", str(home.dagster_home)))
    dagster_home.mkdir(parents=True, exist_ok=True)
    config = dagster_home / "dagster.yaml"
    if not config.exists():
        if LOCAL_CONFIG.exists():
            shutil.copyfile(LOCAL_CONFIG, config)
        else:  # installed without the checkout's deploy/ folder
            config.write_text("telemetry:\n  enabled: false\n")
    return dagster_home
