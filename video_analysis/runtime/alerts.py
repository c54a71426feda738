"""Alerts: one JSON payload per failed run or silent camera, to the log and to a webhook (Slack-compatible text)."""

from __future__ import annotations

import json
import logging
import urllib.request
from dataclasses import asdict, dataclass

from video_analysis.runtime.redact import redact, redact_url

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FailureAlert:
    run_id: str
    job: str
    partition: str | None
    video: str | None
    stages: list[str]
    errors: list[str]

    @property
    def text(self) -> str:
        where = self.video or self.partition or "no partition"
        steps = "; ".join(f"{stage}: {error}" for stage, error in zip(self.stages, self.errors, strict=False))
        return f"reelgraph run {self.run_id[:8]} failed for {where}: {steps or 'no step failed'}"

    def payload(self) -> dict:
        return {**asdict(self), "text": self.text}


@dataclass(frozen=True)
class CameraAlert:
    camera: str
    silent_since: str  # ISO time, UTC
    reason: str
    last_segment: str | None

    @property
    def text(self) -> str:
        return f"reelgraph camera {self.camera} is silent since {self.silent_since}: {self.reason}"

    def payload(self) -> dict:
        return {**asdict(self), "text": self.text}


def send(alert: FailureAlert | CameraAlert, webhook_url: str | None, timeout_s: float = 10.0) -> bool:
    """Log the alert; POST it to the webhook when one is configured. Returns whether the webhook took it."""
    log.error(alert.text)
    if not webhook_url:
        return False
    request = urllib.request.Request(webhook_url, data=json.dumps(alert.payload()).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return 200 <= response.status < 300
    except OSError as exc:  # an unreachable alert sink must never hide the failure itself
        log.warning("alert webhook %s unreachable: %s", redact_url(webhook_url), redact(str(exc)))
        return False
