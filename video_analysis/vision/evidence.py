"""Which tracks count: classes that matter for CCTV, and enough evidence that something was really there.

Detections keep every class the detector reports; only tracks of these classes, seen on enough sampled
frames with enough mean confidence, become tracks, attributes, summaries and search hits. A detector's
one-frame false positive on a road ("2 cell phones") is not a fact about the footage.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import yaml

# People, vehicles, bags and bottles: what CCTV review asks about (COCO names, as the detectors report them).
CCTV_CLASSES = ("person", "bicycle", "car", "motorcycle", "bus", "truck", "backpack", "handbag", "suitcase",
                "bottle")


@dataclass(frozen=True)
class TrackPolicy:
    classes: frozenset[str] | None  # None: every class
    min_frames: int = 2  # sampled frames a track was seen on (at the default 6 fps: a third of a second)
    min_confidence: float = 0.45  # mean detector confidence over those frames

    def keeps(self, class_name: str, frames_seen: int, mean_confidence: float) -> bool:
        return ((self.classes is None or class_name in self.classes) and frames_seen >= self.min_frames
                and mean_confidence >= self.min_confidence)

    def fingerprint(self) -> str:
        """Short hash of the policy: part of the tracks' version, so a change marks them stale."""
        spec = {"classes": sorted(self.classes) if self.classes is not None else None,
                "min_frames": self.min_frames, "min_confidence": self.min_confidence}
        return hashlib.sha1(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:8]

    def describe(self) -> str:
        classes = ", ".join(sorted(self.classes)) if self.classes is not None else "every class"
        return f"{classes}; at least {self.min_frames} frames, mean confidence {self.min_confidence:g}"


def parse_classes(text: str | None) -> frozenset[str] | None:
    """"person, car" -> those classes; "*" -> every class; empty -> the CCTV default."""
    if not text or not text.strip():
        return frozenset(CCTV_CLASSES)
    if text.strip() == "*":
        return None
    return frozenset(name.strip() for name in text.split(",") if name.strip())


def policies_fingerprint(default: TrackPolicy, config: Path | None) -> str:
    """Short hash of the default policy and every camera's own classes: part of the tracks' version."""
    overrides = ((yaml.safe_load(Path(config).read_text()) or {}).get("track_classes")
                 if config is not None and Path(config).exists() else None)
    spec = json.dumps({"default": default.fingerprint(), "cameras": overrides}, sort_keys=True, default=str)
    return hashlib.sha1(spec.encode()).hexdigest()[:8]


def policy_for_camera(default: TrackPolicy, config: Path | None, camera: str | None) -> TrackPolicy:
    """The default policy, with a camera's own class list from the zones file when it has one:
    ``track_classes: {<camera>: [person, car], "*": [...]}`` (``"*"`` applies to cameras not listed)."""
    if config is None or not Path(config).exists():
        return default
    overrides = (yaml.safe_load(Path(config).read_text()) or {}).get("track_classes") or {}
    chosen = overrides.get(camera) if camera in overrides else overrides.get("*")
    if chosen is None:
        return default
    if isinstance(chosen, str):  # `lobby: "person, car"` as well as `lobby: [person, car]`
        chosen = [name.strip() for name in chosen.split(",") if name.strip()]
    classes = None if chosen in ("*", ["*"]) else frozenset(str(name) for name in chosen)
    return TrackPolicy(classes, default.min_frames, default.min_confidence)
