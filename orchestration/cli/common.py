"""What every command group shares: the log, where the checkout and the sample clips are, times as written."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

log = logging.getLogger("reelgraph")

CHECKOUT = Path(__file__).resolve().parents[2]
SAMPLE_CLIP = "one-by-one-person-detection.mp4"


def sample_videos_dir() -> Path | None:
    from configuration.settings import Settings

    configured = Settings.from_env().sample_videos
    candidates = [Path(configured)] if configured else [CHECKOUT.parent / "shared" / "data" / "videos"]
    return next((c for c in candidates if c.is_dir()), None)


def _when_text(moment) -> str:
    from datetime import timezone

    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S") if moment else "-"


def _when(text: str | None):
    from datetime import datetime, timezone

    if not text:
        return None
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _say_recovered(instance) -> None:
    from orchestration.recovery import recover
    from resources import PostgresResource

    for dead in recover(instance, PostgresResource()):
        print(f"recovered: run {dead.run_id[:8]} ({dead.partition or dead.job}) lost its worker (pid {dead.pid}); "
              "marked failed, pool slots freed")


def fetch_detector() -> None:
    """Fetch the detector's weights (once, into the model cache) before the code location loads: its stages'
    versions name the detector that can run, so a first run that downloaded a better one would otherwise mark
    its own partitions stale at the next load. Unreachable weights are said once; the fallback runs."""
    from resources import ModelRegistryResource

    try:
        model = ModelRegistryResource().resolve("detector")
    except Exception as exc:  # noqa: BLE001 - the detections step says it again, where it matters
        print(f"detector: none can be loaded yet ({exc})", file=sys.stderr)
        return
    print(f"detector: {model.name}" + (f" ({model.note})" if model.note else ""), file=sys.stderr)
