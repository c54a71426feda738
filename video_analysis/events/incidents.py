"""Rule-based incidents over a video's tracks, a 0-100 safety score, and a readable summary.

Every rule works on facts already stored (tracks and their attributes), so results are explainable:
each incident names its type, time span, the tracks involved and the measurement that fired it.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import numpy as np
import yaml

from video_analysis.wording import count, listing


@dataclass(frozen=True)
class IncidentRules:
    loiter_seconds: float = 30.0
    loiter_radius_heights: float = 1.5  # the whole path stays within this many body heights of its centre
    crowd_size: int = 5
    unattended_seconds: float = 30.0
    unattended_classes: tuple[str, ...] = ("backpack", "handbag", "suitcase")
    severity: dict[str, int] = field(default_factory=lambda: {
        "loitering": 10, "running": 10, "crowding": 15, "zone_intrusion": 25, "unattended_object": 30,
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


@dataclass(frozen=True)
class TrackFacts:
    track_id: int
    class_name: str
    first_t: float
    last_t: float
    path: list[list[float]]  # [t, cx, cy]
    box_height: float
    motion: str = "walking"
    speed_heights_s: float = 0.0
    zones: tuple[str, ...] = ()


@dataclass(frozen=True)
class Incident:
    type: str
    start_t: float
    end_t: float
    track_ids: list[int]
    detail: str


def _loitering(track: TrackFacts, rules: IncidentRules) -> Incident | None:
    dwell = track.last_t - track.first_t
    if track.class_name != "person" or dwell < rules.loiter_seconds or len(track.path) < 2:
        return None
    points = np.array(track.path)[:, 1:3]
    spread = float(np.linalg.norm(points - np.median(points, axis=0), axis=1).max()) / max(track.box_height, 1.0)
    if spread > rules.loiter_radius_heights:
        return None
    return Incident("loitering", track.first_t, track.last_t, [track.track_id],
                    f"stayed {dwell:.0f} s within {spread:.1f} body heights of one spot")


def _crowding(people: list[TrackFacts], rules: IncidentRules) -> Incident | None:
    events = sorted([(t.first_t, 1, t.track_id) for t in people] + [(t.last_t, -1, t.track_id) for t in people])
    present: set[int] = set()
    start, peak, members = None, 0, set()
    for t, change, track_id in events:
        present.add(track_id) if change > 0 else present.discard(track_id)
        if len(present) >= rules.crowd_size:
            start = t if start is None else start
            members |= present
            peak = max(peak, len(present))
        elif start is not None:
            return Incident("crowding", start, t, sorted(members), f"{peak} people on screen at once")
    return None


def _uncovered_seconds(start: float, end: float, people: list[TrackFacts]) -> float:
    """Longest stretch of [start, end] during which no person is on screen."""
    spans = sorted((max(start, p.first_t), min(end, p.last_t)) for p in people if p.last_t > start and p.first_t < end)
    longest, cursor = 0.0, start
    for s, e in spans:
        longest = max(longest, s - cursor)
        cursor = max(cursor, e)
    return max(longest, end - cursor)


def detect_incidents(tracks: list[TrackFacts], restricted_zones: set[str],
                     rules: IncidentRules = IncidentRules()) -> list[Incident]:  # noqa: B008 (frozen)
    people = [t for t in tracks if t.class_name == "person"]
    found: list[Incident] = []
    for track in people:
        if (incident := _loitering(track, rules)) is not None:
            found.append(incident)
        if track.motion == "running":
            found.append(Incident("running", track.first_t, track.last_t, [track.track_id],
                                  f"moved at {track.speed_heights_s:.1f} body heights per second"))
        if intruded := sorted(set(track.zones) & restricted_zones):
            found.append(Incident("zone_intrusion", track.first_t, track.last_t, [track.track_id],
                                  f"entered restricted zone {', '.join(intruded)}"))
    if (crowd := _crowding(people, rules)) is not None:
        found.append(crowd)
    for track in tracks:
        if track.class_name not in rules.unattended_classes or track.motion != "stationary":
            continue
        alone = _uncovered_seconds(track.first_t, track.last_t, people)
        if alone >= rules.unattended_seconds:
            found.append(Incident("unattended_object", track.first_t, track.last_t, [track.track_id],
                                  f"{track.class_name} left with nobody around for {alone:.0f} s"))
    return sorted(found, key=lambda i: (i.start_t, i.type))


def safety_score(incidents: list[Incident], rules: IncidentRules = IncidentRules()) -> int:  # noqa: B008
    return max(0, 100 - sum(rules.severity.get(i.type, 10) for i in incidents))


def incidents_json(incidents: list[Incident]) -> list[dict]:
    return [asdict(i) for i in incidents]


def summary_text(duration_s: float, camera: str | None, tracks: list[TrackFacts], incidents: list[Incident],
                 score: int, colours: Counter | None = None, partial_s: float | None = None) -> str:
    """The templated summary: facts only, every number traceable to a row.

    ``partial_s``: for partial footage, the seconds that decoded (the facts cover only those).
    """
    where = f"camera {camera}" if camera else "the footage"
    counts = Counter(t.class_name for t in tracks)
    seen = [count(n, name) for name, n in sorted(counts.items(), key=lambda item: (item[0] != "person", -item[1],
                                                                                   item[0]))[:6]]
    span = (f"{partial_s:.0f} of {count(round(duration_s), 'second')} of {where} decoded (partial recording)"
            if partial_s is not None else f"{count(round(duration_s), 'second')} of {where}")
    sentences = [f"{span}: {listing(seen)} tracked." if seen else f"{span}: nothing tracked."]
    if colours:
        sentences.append("Most common clothing colours: " + ", ".join(c for c, _ in colours.most_common(3)) + ".")
    if incidents:
        kinds = Counter(i.type.replace("_", " ") for i in incidents)  # "2 zone intrusions"
        listed = "; ".join(f"{i.type.replace('_', ' ')} at {i.start_t:.0f}-{i.end_t:.0f} s ({i.detail})"
                           for i in incidents[:5])
        sentences.append(f"{count(len(incidents), 'incident')} "
                         f"({', '.join(f'{n} {k}' if k.endswith('ing') else count(n, k) for k, n in kinds.items())})"
                         f": {listed}.")
    else:
        sentences.append("No incidents.")
    sentences.append(f"Safety score {score}/100.")
    return " ".join(sentences)
