"""Rule-based incidents over a video's tracks, a 0-100 safety score, and a readable summary.

Every rule works on facts already stored (tracks, their attributes, the detector's sightings and the
static regions of the scene), so results are explainable: each incident names its type, time span, the
tracks involved and the measurement that fired it.

- Loitering is dwell in one area, over the fragments a person's track breaks into (a tracker loses people
  behind a car or in the dark): fragments that follow each other within seconds, start near where the last
  ended and wear the same colours count as one presence.
- An unattended object is found from accumulated evidence, not from one unbroken track: a static region
  (something appeared and stayed, vision/scene.py) or a cluster of the detector's sightings of a bag that
  spans the rule's time, which no person or vehicle explains, with nobody near for long enough.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import numpy as np
import yaml

from video_analysis.vision.detections import box_areas, box_intersections
from video_analysis.wording import count, listing

PEOPLE = "person"
VEHICLES = ("bicycle", "car", "motorcycle", "bus", "truck")


@dataclass(frozen=True)
class IncidentRules:
    loiter_seconds: float = 30.0
    loiter_radius_heights: float = 2.5  # dwell: every sighting within this many body heights of the area's centre
    relink_seconds: float = 10.0  # a person's fragments this far apart in time may be one presence,
    relink_radius_heights: float = 1.0  # when the later one starts within this many body heights of the other's end
    crowd_size: int = 5
    unattended_seconds: float = 30.0
    unattended_classes: tuple[str, ...] = ("backpack", "handbag", "suitcase")
    unattended_radius_heights: float = 1.5  # "near": a person's feet within this many body heights of its base
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
    upper_color: str | None = None
    lower_color: str | None = None


@dataclass(frozen=True)
class SceneEvidence:
    """What the scene rules read besides tracks: the static regions (objects with ``first_t``, ``last_t``,
    ``xyxy``), and the detector's sightings (time, class, confidence, box), tracked or not."""

    static_regions: list
    times: np.ndarray
    classes: np.ndarray
    confidence: np.ndarray
    xyxy: np.ndarray

    @classmethod
    def empty(cls) -> SceneEvidence:
        return cls([], np.zeros(0), np.zeros(0, object), np.zeros(0, np.float32), np.zeros((0, 4), np.float32))

    def sightings(self, classes) -> tuple[np.ndarray, np.ndarray]:
        """(times, boxes) of the sightings of these classes."""
        mask = np.isin(self.classes, list(classes))
        return self.times[mask], self.xyxy[mask]


@dataclass(frozen=True)
class Incident:
    type: str
    start_t: float
    end_t: float
    track_ids: list[int]
    detail: str


def _same_clothes(a: TrackFacts, b: TrackFacts) -> bool:
    """Colours that are known on both sides agree (unknown ones do not rule a match out)."""
    return all(x is None or y is None or x == y for x, y in ((a.upper_color, b.upper_color),
                                                             (a.lower_color, b.lower_color)))


def _left_view(track: TrackFacts, frame_size: tuple[int, int] | None) -> bool:
    """The track ends at the edge of the picture: the person walked out, rather than being lost inside it."""
    if frame_size is None or None in frame_size or not track.path:
        return False
    width, height = frame_size
    x, y = track.path[-1][1:3]
    margin = 0.3 * track.box_height  # a person's box is about 0.4 of its height wide
    return x < margin or x > width - margin or y < margin / 2 or y > height - margin / 2


def presences(people: list[TrackFacts], rules: IncidentRules,
              frame_size: tuple[int, int] | None = None) -> list[list[TrackFacts]]:
    """People's track fragments chained into presences: a fragment joins the presence whose last fragment
    was lost inside the picture (not at its edge) at most ``relink_seconds`` before, within
    ``relink_radius_heights`` of where it begins, in the same colours."""
    chains: list[list[TrackFacts]] = []
    for track in sorted((t for t in people if t.path), key=lambda t: t.first_t):
        best: tuple[float, list[TrackFacts]] | None = None
        for chain in chains:
            last = chain[-1]
            if (not 0.0 <= track.first_t - last.last_t <= rules.relink_seconds or not _same_clothes(last, track)
                    or _left_view(last, frame_size)):
                continue
            height = max(last.box_height, track.box_height, 1.0)
            apart = float(np.hypot(*(np.array(track.path[0][1:3]) - np.array(last.path[-1][1:3])))) / height
            if apart <= rules.relink_radius_heights and (best is None or apart < best[0]):
                best = (apart, chain)
        if best is not None:
            best[1].append(track)
        else:
            chains.append([track])
    return chains


def longest_dwell(points: np.ndarray, radius_px: float) -> tuple[float, float]:
    """(start, end) of the longest span of time whose points ([t, x, y], in time order) all lie within a box
    ``2 * radius_px`` across: how long someone stayed in one area."""
    best, start = (0.0, 0.0), 0
    if len(points):
        best = (float(points[0, 0]), float(points[0, 0]))
    for end in range(len(points)):
        while True:
            window = points[start:end + 1, 1:3]
            if (window.max(axis=0) - window.min(axis=0)).max() <= 2 * radius_px:
                break
            start += 1
        if points[end, 0] - points[start, 0] > best[1] - best[0]:
            best = (float(points[start, 0]), float(points[end, 0]))
    return best


def _loitering(chain: list[TrackFacts], rules: IncidentRules) -> Incident | None:
    points = np.array(sorted(p for track in chain for p in track.path))
    if len(points) < 2 or points[-1, 0] - points[0, 0] < rules.loiter_seconds:
        return None
    height = float(np.median([t.box_height for t in chain]))
    start, end = longest_dwell(points, rules.loiter_radius_heights * max(height, 1.0))
    if end - start < rules.loiter_seconds:
        return None
    involved = [t.track_id for t in chain if t.last_t >= start and t.first_t <= end]
    pieces = f", seen as {len(involved)} track fragments" if len(involved) > 1 else ""
    return Incident("loitering", start, end, involved,
                    f"stayed {end - start:.0f} s within {rules.loiter_radius_heights:g} body heights of one "
                    f"place{pieces}")


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


def _overlap(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Share of ``box``'s area that each of ``boxes`` covers."""
    if not len(boxes):
        return np.zeros(0)
    return box_intersections(box, boxes)[0] / max(float(box_areas(np.asarray(box))), 1e-6)


def _sighting_clusters(times: np.ndarray, boxes: np.ndarray) -> list[tuple[float, float, np.ndarray, int]]:
    """Sightings of one place grouped over time (first, last, mean box, count): a bag the detector sees
    now and then, whose sightings never make one track. Each sighting is compared with every cluster's mean
    box at once; a sighting and a mean that each cover half of the other are one place."""
    first: list[float] = []
    last: list[float] = []
    sums = np.zeros((0, 4))
    counts = np.zeros(0)
    for t, box in zip(times, boxes.astype(np.float64), strict=True):
        if len(counts):
            means = sums / counts[:, None]
            inter = box_intersections(box, means)[0]
            same = (inter >= 0.5 * max(float(box_areas(box)), 1e-6)) & (inter >= 0.5 * box_areas(means))
            if same.any():
                i = int(np.argmax(same))
                sums[i] += box
                counts[i] += 1
                last[i] = t
                continue
        sums = np.vstack([sums, box])
        counts = np.append(counts, 1)
        first.append(t)
        last.append(t)
    return [(first[i], last[i], sums[i] / counts[i], int(counts[i])) for i in range(len(counts))]


def _longest_alone(start: float, end: float, near_times: np.ndarray) -> float:
    """Longest stretch of [start, end] with no sighting of someone near."""
    marks = np.concatenate([[start], np.sort(near_times[(near_times >= start) & (near_times <= end)]), [end]])
    return float(np.diff(marks).max()) if len(marks) > 1 else 0.0


def _feet_distance(points: np.ndarray, base: np.ndarray) -> np.ndarray:
    """Distance in body heights from people's feet to an object's base: rows of [t, x, feet_y, height]."""
    return np.hypot(points[:, 1] - base[0], points[:, 2] - base[1]) / np.maximum(points[:, 3], 1.0)


def _people_points(people: list[TrackFacts]) -> dict[int, np.ndarray]:
    """Each person track's path as rows of [t, x, feet_y, height]."""
    return {t.track_id: np.array([[p[0], p[1], p[2] + t.box_height / 2, t.box_height] for p in t.path])
            for t in people if t.path}


def _owner(points: dict[int, np.ndarray], base: np.ndarray, appeared: float, rules: IncidentRules) -> int | None:
    """The person nearest the object when it appeared (within a few seconds and the rule's reach): who left it."""
    best: tuple[float, int] | None = None
    for track_id, rows in points.items():
        around = rows[np.abs(rows[:, 0] - appeared) <= 3.0]
        if len(around):
            distance = float(_feet_distance(around, base).min())
            if distance <= rules.unattended_radius_heights and (best is None or distance < best[0]):
                best = (distance, track_id)
    return best[1] if best else None


def _unattended(tracks: list[TrackFacts], scene: SceneEvidence, rules: IncidentRules) -> list[Incident]:
    """Left objects, as PETS 2006 defines them: the owner (the person beside it when it appeared) has been
    further than ``unattended_radius_heights`` for ``unattended_seconds``; strangers passing by do not attend
    it. An object that appeared with nobody beside it is unattended while nobody at all is near."""
    people = [t for t in tracks if t.class_name == PEOPLE]
    points = _people_points(people)
    person_t, person_box = scene.sightings([PEOPLE])
    if len(person_t):
        heights = person_box[:, 3] - person_box[:, 1]
        sighted = np.stack([person_t, (person_box[:, 0] + person_box[:, 2]) / 2, person_box[:, 3], heights], axis=1)
    else:  # no sightings given: the people's tracks stand in for them
        sighted = np.concatenate(list(points.values())) if points else np.zeros((0, 4))
        person_box = np.array([(x - h / 4, y - h, x + h / 4, y) for _, x, y, h in sighted]).reshape(-1, 4)
        person_t = sighted[:, 0]
    vehicle_t, vehicle_box = scene.sightings(VEHICLES)
    object_t, object_box = scene.sightings(rules.unattended_classes)
    person_height = float(np.median(sighted[:, 3])) if len(sighted) else 0.0

    candidates = [(r.first_t, r.last_t, np.asarray(r.xyxy, np.float64), None) for r in scene.static_regions]
    candidates += [(first, last, box, None) for first, last, box, n in _sighting_clusters(object_t, object_box)
                   if n >= 3]
    for track in tracks:  # an object tracked in one piece, where no sightings were given
        if track.class_name in rules.unattended_classes and track.motion == "stationary" and not len(object_t):
            x, y, h = track.path[0][1], track.path[0][2], track.box_height
            candidates.append((track.first_t, track.last_t, np.array([x - h / 2, y - h / 2, x + h / 2, y + h / 2]),
                               track))

    found: list[tuple[Incident, np.ndarray]] = []
    for first, last, box, tracked in sorted(candidates, key=lambda c: c[0] - c[1]):  # longest first
        if last - first < rules.unattended_seconds:
            continue
        during = (person_t >= first) & (person_t <= last)
        # Something a person covers most of, much of the time, is a person standing still; something as tall
        # as a person, or under a vehicle's box, is not a left object either.
        covering = during & (_overlap(box, person_box) >= 0.5) if len(person_box) else during
        if covering.any() and covering.sum() > 0.3 * max(1, len(np.unique(person_t[during]))):
            continue
        if person_height and box[3] - box[1] > 0.8 * person_height:
            continue
        vehicle_during = (vehicle_t >= first) & (vehicle_t <= last)
        if len(vehicle_box) and (vehicle_during & (_overlap(box, vehicle_box) >= 0.5)).sum() >= 3:
            continue
        if any(_overlap(box, other[None])[0] >= 0.3 and incident.start_t < last and first < incident.end_t
               for incident, other in found):
            continue  # the same object, by the other cue
        base = np.array([(box[0] + box[2]) / 2, box[3]])
        owner = _owner(points, base, first, rules)
        if owner is not None:
            rows = points[owner]
            alone = _longest_alone(first, last, rows[_feet_distance(rows, base) <= rules.unattended_radius_heights, 0])
            whose = f", away from the person beside it when it appeared (track {owner})"
        else:
            near = _feet_distance(sighted, base) <= rules.unattended_radius_heights if len(sighted) else []
            alone = _longest_alone(first, last, sighted[near, 0] if len(sighted) else np.zeros(0))
            whose = ""
        if alone < rules.unattended_seconds:
            continue
        if tracked is not None:
            name, seen, involved = tracked.class_name, "", [tracked.track_id]
        else:
            labels = list(scene.classes[np.isin(scene.classes, list(rules.unattended_classes))][
                _overlap(box, object_box) >= 0.3]) if len(object_box) else []
            name = max(set(labels), key=labels.count) if labels else "object"
            seen = f", seen by the detector {len(labels)} times" if labels else ", never recognised by the detector"
            involved = []
        found.append((Incident("unattended_object", float(first), float(last), involved + ([owner] if owner else []),
                               f"{name} left with nobody near for {alone:.0f} s{whose}{seen}"), box))
    return [incident for incident, _ in found]


def detect_incidents(tracks: list[TrackFacts], restricted_zones: set[str],
                     rules: IncidentRules = IncidentRules(),  # noqa: B008 (frozen)
                     scene: SceneEvidence | None = None, frame_size: tuple[int, int] | None = None) -> list[Incident]:
    """Every rule's incidents over one video; ``frame_size`` (width, height) tells a person who walked out of
    the picture from one the tracker lost inside it."""
    people = [t for t in tracks if t.class_name == PEOPLE]
    found: list[Incident] = []
    for chain in presences(people, rules, frame_size):
        if (incident := _loitering(chain, rules)) is not None:
            found.append(incident)
    for track in people:
        if track.motion == "running":
            found.append(Incident("running", track.first_t, track.last_t, [track.track_id],
                                  f"moved at {track.speed_heights_s:.1f} body heights per second"))
        if intruded := sorted(set(track.zones) & restricted_zones):
            found.append(Incident("zone_intrusion", track.first_t, track.last_t, [track.track_id],
                                  f"entered restricted zone {', '.join(intruded)}"))
    if (crowd := _crowding(people, rules)) is not None:
        found.append(crowd)
    found += _unattended(tracks, scene or SceneEvidence.empty(), rules)
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
