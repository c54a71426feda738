"""The local Dagster instance: SQLite storage under the state folder, shared by the UI and the CLI."""

import shutil
from pathlib import Path

from configuration.settings import default_process_env
from video_analysis.runtime.home import StateHome

LOCAL_CONFIG = Path(__file__).resolve().parents[1] / "deploy" / "local" / "dagster.yaml"


def ensure_local_instance(home: StateHome) -> Path:
    """Point DAGSTER_HOME at the state folder (unless set) and give it deploy/local/dagster.yaml.

    A copy made earlier from deploy/local is refreshed when the project's file changes (an upgrade brings
    its fixes, such as crash recovery); a file the user wrote, without the project's first line, is kept.
    """
    dagster_home = Path(default_process_env("DAGSTER_HOME", str(home.dagster_home)))
    dagster_home.mkdir(parents=True, exist_ok=True)
    config = dagster_home / "dagster.yaml"
    if LOCAL_CONFIG.exists():
        shipped = LOCAL_CONFIG.read_text()
        current = config.read_text() if config.exists() else None
        if current is None or (current != shipped and current.startswith(shipped.splitlines()[0])):
            shutil.copyfile(LOCAL_CONFIG, config)
    elif not config.exists():  # installed without the checkout's deploy/ folder
        config.write_text("telemetry:\n  enabled: false\n")
    return dagster_home
