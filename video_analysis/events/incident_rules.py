"""The incident rules' thresholds and how the zones file overrides them, with the fingerprints that mark
summaries and attributes stale when the rules or zones change.

The defaults were chosen on hand-labelled clips (benchmarks/events.py, benchmarks/README.md).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import yaml


@dataclass(frozen=True)
class IncidentRules:
    # Dwell longer than this is loitering. Measured on real footage: people browsing a shelf or standing at a
    # counter stay 38-45 s, someone working at a table 26 s; a loiterer by a parked car over a minute.
    loiter_seconds: float = 50.0
    loiter_radius_heights: float = 2.5  # dwell: every sighting within this many body heights of the area's centre
    relink_seconds: float = 10.0  # a person's fragments this far apart in time may be one presence,
    relink_radius_heights: float = 1.0  # when the later one starts within this many body heights of the other's end
    # Crowding: more people at once than crowd_size (a capacity for the whole picture) when it is set; otherwise
    # at least crowd_factor times the camera's normal peak (its earlier videos') and crowd_min_people.
    crowd_size: int | None = None
    crowd_factor: float = 3.0
    crowd_min_people: int = 8
    crowd_history_videos: int = 5  # a camera's normal needs this many earlier videos
    # An object left alone this long is unattended (PETS 2006 uses 30 s; 20 s finds a bag left 27 s before a
    # clip ends, benchmarks/README.md).
    unattended_seconds: float = 20.0
    unattended_classes: tuple[str, ...] = ("backpack", "handbag", "suitcase")
    unattended_radius_heights: float = 1.5  # "near": a person's feet within this many body heights of its base
    # Someone else attends the object by staying this close (body heights, feet to its base; someone guarding a bag
    # stays within about a metre of it) for this long; passers-by and people busy nearby do not.
    unattended_attending_heights: float = 0.75
    unattended_attending_seconds: float = 5.0
    bag_max_heights: float = 0.6  # a static region taller than this many body heights is not a bag
    # Falls: lying (box width/height at least fall_lying_ratio) for fall_seconds, within fall_window_seconds of
    # being seen upright (height/width at least fall_upright_ratio) at that place, the box's top fall_drop_heights
    # of the standing height lower.
    fall_seconds: float = 2.0
    fall_window_seconds: float = 3.0
    fall_lying_ratio: float = 1.0
    fall_upright_ratio: float = 1.3
    fall_drop_heights: float = 0.4
    fall_stretch_heights: float = 0.6  # lying: at least this many standing heights across,
    fall_flat_heights: float = 0.5  # and at most this many tall
    severity: dict[str, int] = field(default_factory=lambda: {
        "loitering": 10, "running": 10, "crowding": 15, "zone_intrusion": 25, "unattended_object": 30, "fall": 30,
    })


def load_rules(path: Path | None) -> IncidentRules:
    """The rules in force: defaults, overridden by the ``rules:`` section of the zones file."""
    if path is None or not Path(path).exists():
        return IncidentRules()
    given = (yaml.safe_load(Path(path).read_text()) or {}).get("rules") or {}
    known = {f.name for f in fields(IncidentRules)}
    unknown = sorted(set(given) - known)
    if unknown:
        raise ValueError(f"{path}: unknown rules {unknown}; known: {sorted(known)}")
    if "unattended_classes" in given:
        given = {**given, "unattended_classes": tuple(given["unattended_classes"])}
    return replace(IncidentRules(), **given)


def rules_fingerprint(path: Path | None) -> str:
    """Short hash of the rules and zones in force: part of the summaries' version, so editing them marks
    the summaries stale (and a `--stale` backfill re-evaluates only summaries, over the stored tracks).

    A file with unknown rules hashes as "invalid" (the summaries step then says what is wrong) rather
    than stopping the whole code location from loading."""
    try:
        rules = asdict(load_rules(path))
    except (ValueError, TypeError):
        return "invalid"
    spec = json.dumps({"rules": rules, "zones": zones_fingerprint(path)}, sort_keys=True, default=str)
    return hashlib.sha1(spec.encode()).hexdigest()[:8]


def zones_fingerprint(path: Path | None) -> str:
    """Short hash of the zones (the file's `cameras:` section): part of the attributes' version, since
    attributes record which zones each track entered."""
    try:
        zones = (yaml.safe_load(Path(path).read_text()) or {}).get("cameras") if path and Path(path).exists() \
            else None
    except yaml.YAMLError:
        return "invalid"
    return hashlib.sha1(json.dumps(zones, sort_keys=True, default=str).encode()).hexdigest()[:8]

