"""Process-wide settings of third-party libraries, applied once by each entry point.

Library objects never change ``os.environ``: a setting made as a side effect of loading one model would
change how every other model in the process loads. The code location and the CLI call
`prepare_process` when they start, and only fill in what the user has not set.
"""

from __future__ import annotations

import os

from video_analysis.runtime.home import StateHome


def prepare_process(home: StateHome) -> None:
    # Ultralytics keeps its settings file under the state folder, and never pip-installs packages at run
    # time whatever a checkpoint asks for.
    os.environ.setdefault("YOLO_CONFIG_DIR", str(home.root / "models" / "ultralytics-config"))
    os.environ.setdefault("YOLO_AUTOINSTALL", "false")
