"""An incident as every rule reports it (type, span, tracks, measurement, confidence, moments that show it),
how its confidence is made, and its stored JSON form."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np


@dataclass(frozen=True)
class Incident:
    type: str
    start_t: float
    end_t: float
    track_ids: list[int]
    detail: str
    confidence: float = 1.0  # how strong the evidence is, 0-1: weighs the incident in the safety score
    evidence_t: list[float] = field(default_factory=list)  # moments (s) whose frames show it


def evidence_confidence(*parts: float) -> float:
    """The mean of evidence strengths, each in [0, 1], rounded for storage."""
    return round(float(np.clip(np.mean(parts), 0.0, 1.0)), 2)


def incidents_json(incidents: list[Incident]) -> list[dict]:
    return [asdict(i) for i in incidents]

