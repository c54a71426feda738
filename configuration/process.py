"""Process-wide settings of third-party libraries, applied once by each entry point.

Library objects never change the environment: a setting made as a side effect of loading one model would
change how every other model in the process loads. The code location and the CLI call
`prepare_process` when they start, and only fill in what the user has not set.
"""

from __future__ import annotations

from configuration.settings import default_process_env
from video_analysis.runtime.home import StateHome


def prepare_process(home: StateHome) -> None:
    # Ultralytics keeps its settings file under the state folder, and never pip-installs packages at run
    # time whatever a checkpoint asks for.
    default_process_env("YOLO_CONFIG_DIR", str(home.root / "models" / "ultralytics-config"))
    default_process_env("YOLO_AUTOINSTALL", "false")
