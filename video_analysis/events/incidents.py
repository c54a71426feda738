"""Rule-based incidents over a video's tracks, a 0-100 safety score, and a readable summary.

Every rule works on facts already stored (tracks, their attributes, the detector's sightings and the
static regions of the scene), so results are explainable: each incident names its type, time span, the
tracks involved, the measurement that fired it, how confident the evidence is (0-1) and the moments that
show it. The defaults were chosen on hand-labelled clips (benchmarks/events.py, benchmarks/README.md).

- Loitering is dwell in one area, over the fragments a person's track breaks into (a tracker loses people
  behind a car or in the dark): fragments that follow each other within seconds, start near where the last
  ended and wear the same colours count as one presence. Zones can set their own threshold or be exempt
  (a desk, a till, a queue).
- An unattended object is something bag-like, detected as a bag or found by the static-object cue at bag size
  on the floor, that appeared beside a person who then went away for ``unattended_seconds`` while nobody else
  stayed near. Scenery the cue picks up (counters, shelves, screens, doorways) is too large, too tall or off
  the floor people walk on.
- A fall is a person seen upright and then, at the same place within seconds, lying (a box wider than tall,
  its top well below where the standing person's head was) for ``fall_seconds``: across tracks, since a
  tracker rarely keeps one identity through a fall.
- Zone intrusion starts when a person's feet are inside a restricted zone.
- Crowding is judged against a capacity (the rules' ``crowd_size``, a zone's ``capacity``) or the camera's
  normal occupancy, never one fixed count for every scene.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import numpy as np
import yaml

from video_analysis.vision.attributes import RUNNING_HEIGHTS_PER_S, Zone, feet_points
from video_analysis.vision.detections import box_areas, box_intersections
from video_analysis.wording import count, listing

PEOPLE = "person"
VEHICLES = ("bicycle", "car", "motorcycle", "bus", "truck")


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


@dataclass(frozen=True)
class TrackFacts:
    track_id: int
    class_name: str
    first_t: float
    last_t: float
    path: list[list[float]]  # [t, cx, cy, w, h] (box centre and size; [t, cx, cy] in paths stored before sizes were)
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
    confidence: float = 1.0  # how strong the evidence is, 0-1: weighs the incident in the safety score
    evidence_t: list[float] = field(default_factory=list)  # moments (s) whose frames show it


def _confidence(*parts: float) -> float:
    """The mean of evidence strengths, each in [0, 1], rounded for storage."""
    return round(float(np.clip(np.mean(parts), 0.0, 1.0)), 2)


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


STEP_S = 0.5  # seconds between the positions a track's stored path is filled in at


def feet_rows(track: TrackFacts, step_s: float = STEP_S) -> np.ndarray:
    """Rows of [t, feet x, feet y, box height] every ``step_s`` over the track's life, between its stored path
    points by straight lines. A stored path keeps at most 64 points however long the track, so a person who
    sat by a bag for half an hour has points minutes apart: rules that ask where someone was at a moment
    read this instead."""
    if not track.path:
        return np.zeros((0, 4))
    feet = np.array(feet_points(track.path, track.box_height), np.float64).reshape(-1, 2)
    known = np.array([[p[0], fx, fy, p[4] if len(p) > 4 else track.box_height]
                      for p, (fx, fy) in zip(track.path, feet, strict=True)], np.float64)
    known = known[np.argsort(known[:, 0], kind="stable")]
    times = np.union1d(np.arange(known[0, 0], known[-1, 0], step_s), known[:, 0])
    return np.stack([times] + [np.interp(times, known[:, 0], known[:, i]) for i in (1, 2, 3)], axis=1)


def _dwell_runs(points: np.ndarray, exempt: np.ndarray) -> list[np.ndarray]:
    """The points in runs that are not inside an exempt zone (time in a zone exempt from loitering, such as a
    desk, counts for nothing, and does not join the time before it to the time after)."""
    runs, current = [], []
    for point, skip in zip(points, exempt, strict=True):
        if skip:
            if current:
                runs.append(np.array(current))
            current = []
        else:
            current.append(point)
    if current:
        runs.append(np.array(current))
    return runs


def _loitering(chain: list[TrackFacts], rules: IncidentRules, zones: list[Zone] = (),
               frame_size: tuple[int, int] | None = None) -> Incident | None:
    rows = sorted((p, t.box_height) for t in chain for p in t.path)
    if len(rows) < 2 or rows[-1][0][0] - rows[0][0][0] < min([rules.loiter_seconds, *(
            z.loiter_seconds for z in zones if z.loiter_seconds)]):
        return None
    points = np.array([p[:3] for p, _ in rows], np.float64)
    feet = feet_points([p for p, _ in rows], float(np.median([h for _, h in rows])))
    width, height = frame_size if frame_size and None not in frame_size else (None, None)
    inside = {z.name: z.contains(feet, width, height) for z in zones} if width else {}
    exempt = np.zeros(len(points), bool)
    for zone in zones:
        if zone.loiter_seconds == 0 and zone.name in inside:
            exempt |= inside[zone.name]
    radius = rules.loiter_radius_heights * max(float(np.median([t.box_height for t in chain])), 1.0)
    best = None
    for run in _dwell_runs(points, exempt):
        if len(run) < 2:
            continue
        start, end = longest_dwell(run, radius)
        # the threshold of the zone the dwell happened in (the strictest, where zones overlap), else the rules'
        during = (points[:, 0] >= start) & (points[:, 0] <= end)
        limits = [z.loiter_seconds for z in zones if z.loiter_seconds and z.name in inside
                  and inside[z.name][during].mean() > 0.5]
        limit = min(limits) if limits else rules.loiter_seconds
        if end - start >= limit and (best is None or end - start > best[1] - best[0]):
            best = (start, end, limit)
    if best is None:
        return None
    start, end, limit = best
    involved = [t.track_id for t in chain if t.last_t >= start and t.first_t <= end]
    pieces = f", seen as {len(involved)} track fragments" if len(involved) > 1 else ""
    confidence = _confidence(0.5 + 0.5 * min(1.0, (end - start - limit) / limit), 1.0 if len(involved) == 1 else 0.7)
    return Incident("loitering", start, end, involved,
                    f"stayed {end - start:.0f} s within {rules.loiter_radius_heights:g} body heights of one "
                    f"place{pieces}", confidence, [round(start, 2), round((start + end) / 2, 2), round(end, 2)])


def _on_screen(people: list[TrackFacts]):
    """(time, the tracks on screen from then) at each arrival and departure, in time order (the set is the
    same object throughout: copy what is kept)."""
    events = sorted([(t.first_t, 1, t.track_id) for t in people] + [(t.last_t, -1, t.track_id) for t in people])
    present: set[int] = set()
    for t, change, track_id in events:
        present.add(track_id) if change > 0 else present.discard(track_id)
        yield t, present


def peak_people(tracks: list[TrackFacts]) -> int:
    """The most people on screen at once: what a camera's normal occupancy is made of."""
    return max((len(present) for _, present in _on_screen([t for t in tracks if t.class_name == PEOPLE])),
               default=0)


def crowd_threshold(rules: IncidentRules, normal_people: float | None) -> int | None:
    """How many people at once make a crowd here: the configured ``crowd_size``, else ``crowd_factor`` times
    the camera's normal peak and at least ``crowd_min_people``; None where neither is known (no crowding is
    judged against a number that fits no scene)."""
    if rules.crowd_size is not None:
        return int(rules.crowd_size)
    if normal_people is None:
        return None
    return max(rules.crowd_min_people, int(np.ceil(rules.crowd_factor * max(normal_people, 1.0))))


def _crowding(people: list[TrackFacts], rules: IncidentRules, normal_people: float | None) -> Incident | None:
    limit = crowd_threshold(rules, normal_people)
    if limit is None:
        return None
    start, peak, members = None, 0, set()
    for t, present in _on_screen(people):
        if len(present) >= limit:
            start = t if start is None else start
            members |= present
            peak = max(peak, len(present))
        elif start is not None:
            against = (f"crowd size {limit}" if rules.crowd_size is not None
                       else f"{limit} for this camera, whose usual peak is {normal_people:.0f}")
            return Incident("crowding", start, t, sorted(members), f"{peak} people on screen at once ({against})",
                            _confidence(0.5 + 0.5 * min(1.0, (peak - limit + 1) / limit)),
                            [round(start, 2), round(t, 2)])
    return None


def _zone_crowding(people: list[TrackFacts], zones: list[Zone], frame_size) -> list[Incident]:
    """More people in a zone at once than its ``capacity`` allows: people counted by their feet, every half
    second of each track's life (`feet_rows`)."""
    if not frame_size or None in frame_size:
        return []
    width, height = frame_size
    rows = {t.track_id: feet_rows(t) for t in people if t.path}
    found = []
    for zone in (z for z in zones if z.capacity):
        present: dict[int, set[int]] = {}
        for track_id, track_rows in rows.items():
            inside = zone.contains([(x, y) for _, x, y, _ in track_rows], width, height)
            for slot in np.unique(np.round(track_rows[inside, 0] / STEP_S).astype(int)):
                present.setdefault(int(slot), set()).add(track_id)
        over = sorted((slot, ids) for slot, ids in present.items() if len(ids) > zone.capacity)
        if over:
            members = sorted(set().union(*(ids for _, ids in over)))
            peak = max(len(ids) for _, ids in over)
            start, end = over[0][0] * STEP_S, over[-1][0] * STEP_S
            found.append(Incident("crowding", start, end, members,
                                  f"{peak} people at once in zone {zone.name} (capacity {zone.capacity})",
                                  _confidence(0.5 + 0.5 * min(1.0, (peak - zone.capacity) / zone.capacity)),
                                  [round(start, 2), round(end, 2)]))
    return found


def _intrusions(people: list[TrackFacts], restricted: set[str], zones: list[Zone], frame_size) -> list[Incident]:
    """A person whose feet are inside a restricted zone: from the first moment inside to the last (the track's
    positions every half second, `feet_rows`)."""
    drawn = {z.name: z for z in zones if z.name in restricted}
    found = []
    for track in people:
        names = sorted(set(track.zones) & restricted)
        if not names:
            continue
        start, end, seen = track.first_t, track.last_t, 1.0
        if frame_size and None not in frame_size and all(n in drawn for n in names) and track.path:
            rows = feet_rows(track)
            inside = np.zeros(len(rows), bool)
            for name in names:
                inside |= drawn[name].contains([(x, y) for _, x, y, _ in rows], *frame_size)
            if not inside.any():
                continue  # visited by the centre in older attributes, not by the feet
            start, end = float(rows[inside, 0].min()), float(rows[inside, 0].max())
            seen = inside.sum() * STEP_S
        found.append(Incident("zone_intrusion", start, end, [track.track_id],
                              f"entered restricted zone {', '.join(names)}",
                              _confidence(min(1.0, 0.5 + 0.25 * seen)), [round(start, 2), round(end, 2)]))
    return found


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


def _alone_from(start: float, end: float, near_times: np.ndarray) -> float:
    """When the longest stretch of [start, end] with nobody near began."""
    marks = np.concatenate([[start], np.sort(near_times[(near_times >= start) & (near_times <= end)]), [end]])
    return float(marks[int(np.argmax(np.diff(marks)))]) if len(marks) > 1 else start


def _longest_alone(start: float, end: float, near_times: np.ndarray) -> float:
    """Longest stretch of [start, end] with no sighting of someone near."""
    marks = np.concatenate([[start], np.sort(near_times[(near_times >= start) & (near_times <= end)]), [end]])
    return float(np.diff(marks).max()) if len(marks) > 1 else 0.0


def _feet_distance(points: np.ndarray, base: np.ndarray) -> np.ndarray:
    """Distance in body heights from people's feet to an object's base: rows of [t, x, feet_y, height]."""
    return np.hypot(points[:, 1] - base[0], points[:, 2] - base[1]) / np.maximum(points[:, 3], 1.0)


def _people_points(people: list[TrackFacts]) -> dict[int, np.ndarray]:
    """Each person track as rows of [t, x, feet_y, height], every half second of its life (`feet_rows`)."""
    return {t.track_id: feet_rows(t) for t in people if t.path}


def _owner(points: dict[int, np.ndarray], base: np.ndarray, appeared: float, rules: IncidentRules) -> int | None:
    """The person nearest the object when it appeared (from a few seconds before to just after, within the
    rule's reach): who left it."""
    best: tuple[float, int] | None = None
    for track_id, rows in points.items():
        around = rows[(rows[:, 0] >= appeared - 5.0) & (rows[:, 0] <= appeared + 2.0)]
        if len(around):
            distance = float(_feet_distance(around, base).min())
            if distance <= rules.unattended_radius_heights and (best is None or distance < best[0]):
                best = (distance, track_id)
    return best[1] if best else None


def _local_height(sighted: np.ndarray, base: np.ndarray) -> float:
    """A person's height in pixels standing where ``base`` is: the median of sightings whose feet were at a
    similar depth (height in the picture), else of all."""
    if not len(sighted):
        return 0.0
    near = sighted[np.abs(sighted[:, 2] - base[1]) <= 0.5 * np.median(sighted[:, 3])]
    return float(np.median((near if len(near) >= 3 else sighted)[:, 3]))


def _scenery(box: np.ndarray, sighted: np.ndarray, rules: IncidentRules) -> str | None:
    """Why a static region is scenery rather than something left (None when it could be a bag): taller or
    wider than a bag beside a person there, or off the floor people walk on (no one's feet were ever level
    with its base nearby: a shelf, a screen, a counter top)."""
    base = np.array([(box[0] + box[2]) / 2, box[3]])
    height = _local_height(sighted, base)
    if not height:
        return "no person seen to judge its size by"
    if box[3] - box[1] > rules.bag_max_heights * height or box[2] - box[0] > 1.2 * height:
        return "larger than a bag"
    level = (np.abs(sighted[:, 2] - base[1]) <= 0.25 * sighted[:, 3]) & (
        np.abs(sighted[:, 1] - base[0]) <= 2.0 * sighted[:, 3])
    if not level.any():
        return "off the floor"
    return None


def _attended(rows_by_track: dict[int, np.ndarray], base: np.ndarray, owner: int | None,
              rules: IncidentRules) -> np.ndarray:
    """Times someone attended the object: the owner within ``unattended_radius_heights`` of it, or anyone else
    within ``unattended_attending_heights`` for ``unattended_attending_seconds`` without a break of more than
    a couple of seconds, whoever's track it was (a friend the tracker splits into fragments still attends; a
    passer-by, or someone busy a few steps away, does not)."""
    times, others = [np.zeros(0)], []
    for track_id, rows in rows_by_track.items():
        distance = _feet_distance(rows, base)
        if track_id == owner:
            times.append(rows[distance <= rules.unattended_radius_heights, 0])
        else:
            others.append(rows[distance <= rules.unattended_attending_heights, 0])
    near = np.unique(np.concatenate(others)) if others else np.zeros(0)
    if len(near):
        for run in np.split(near, np.flatnonzero(np.diff(near) > 2.0) + 1):
            if run[-1] - run[0] >= rules.unattended_attending_seconds:
                times.append(run)
    return np.concatenate(times)


def _unattended(tracks: list[TrackFacts], scene: SceneEvidence, rules: IncidentRules) -> list[Incident]:
    """Left objects, as PETS 2006 defines them: something bag-like appeared beside a person (its owner), who
    then stayed further than ``unattended_radius_heights`` for ``unattended_seconds`` while nobody else stayed
    near. Something that appeared with nobody beside it is not judged: nobody left it there, and the static
    cue's regions with no owner are mostly scenery a passer-by uncovered or the light changed."""
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

    candidates = [(r.first_t, r.last_t, np.asarray(r.xyxy, np.float64), None, False) for r in scene.static_regions]
    candidates += [(first, last, box, None, True) for first, last, box, n in _sighting_clusters(object_t, object_box)
                   if n >= 3]
    for track in tracks:  # an object tracked in one piece, where no sightings were given
        if track.class_name in rules.unattended_classes and track.motion == "stationary" and not len(object_t):
            x, y, h = track.path[0][1], track.path[0][2], track.box_height
            candidates.append((track.first_t, track.last_t, np.array([x - h / 2, y - h / 2, x + h / 2, y + h / 2]),
                               track, True))

    found: list[tuple[Incident, np.ndarray]] = []
    for first, last, box, tracked, detected in sorted(candidates, key=lambda c: c[0] - c[1]):  # longest first
        if last - first < rules.unattended_seconds:
            continue
        during = (person_t >= first) & (person_t <= last)
        # Something a person covers most of, much of the time, is a person standing still; something under a
        # vehicle's box is a vehicle.
        covering = during & (_overlap(box, person_box) >= 0.5) if len(person_box) else during
        if covering.any() and covering.sum() > 0.3 * max(1, len(np.unique(person_t[during]))):
            continue
        vehicle_during = (vehicle_t >= first) & (vehicle_t <= last)
        if len(vehicle_box) and (vehicle_during & (_overlap(box, vehicle_box) >= 0.5)).sum() >= 3:
            continue
        if not detected and _scenery(box, sighted, rules) is not None:
            continue
        if any(_overlap(box, other[None])[0] >= 0.3 and incident.start_t < last and first < incident.end_t
               for incident, other in found):
            continue  # the same object, by the other cue
        base = np.array([(box[0] + box[2]) / 2, box[3]])
        owner = _owner(points, base, first, rules)
        if owner is None:
            continue
        alone = _longest_alone(first, last, _attended(points, base, owner, rules))
        if alone < rules.unattended_seconds:
            continue
        labels = list(scene.classes[np.isin(scene.classes, list(rules.unattended_classes))][
            _overlap(box, object_box) >= 0.3]) if len(object_box) else []
        if tracked is not None:
            name, seen, involved = tracked.class_name, "", [tracked.track_id]
        else:
            name = max(set(labels), key=labels.count) if labels else "object"
            seen = f", seen by the detector {len(labels)} times" if labels else ", never recognised by the detector"
            involved = []
        alone_from = _alone_from(first, last, _attended(points, base, owner, rules))
        confidence = _confidence(1.0 if labels or tracked is not None else 0.6,
                                 0.5 + 0.5 * min(1.0, (alone - rules.unattended_seconds) / rules.unattended_seconds))
        evidence = [float(first), alone_from, min(float(last), alone_from + rules.unattended_seconds)]
        found.append((Incident("unattended_object", float(first), float(last), involved + [owner],
                               f"{name} left with nobody near for {alone:.0f} s, away from the person beside it "
                               f"when it appeared (track {owner}){seen}", confidence,
                               [round(t, 2) for t in evidence]),
                      box))
    return [incident for incident, _ in found]


def _lying_spells(times: np.ndarray, boxes: np.ndarray) -> list[list[int]]:
    """Sightings of someone lying grouped into spells at one place: each joins the spell whose last box it
    overlaps by 30% of the smaller box, within 2 s (a detector boxes a body on the floor now whole, now in
    part)."""
    spells: list[list[int]] = []
    open_spells: list[list[int]] = []  # those seen within the last 2 s: the only ones a sighting can join
    for i in np.argsort(times, kind="stable"):
        open_spells = [spell for spell in open_spells if times[i] - times[spell[-1]] <= 2.0]
        for spell in open_spells:
            last = spell[-1]
            inter = box_intersections(boxes[i], boxes[last][None])[0][0]
            if inter >= 0.3 * min(float(box_areas(boxes[i])), float(box_areas(boxes[last]))):
                spell.append(int(i))
                break
        else:
            spells.append([int(i)])
            open_spells.append(spells[-1])
    return spells


def _falls(scene: SceneEvidence, rules: IncidentRules) -> list[Incident]:
    """People seen upright, then lying at the same place within ``fall_window_seconds``, and still lying
    ``fall_seconds`` later. Read from every person sighting rather than from tracks: a tracker seldom keeps one
    identity from a standing box to a lying one. Lying means flat: besides a box wider than tall, at least
    twice the body stretched out (``fall_stretch_heights`` of the standing height across) and low (at most
    ``fall_flat_heights`` of it tall); someone crouching is too narrow, someone sitting on the ground too tall.
    A place where someone already lay before the standing person came (seen past them) is not a new fall."""
    times, boxes = scene.sightings([PEOPLE])
    if not len(times):
        return []
    confidence = scene.confidence[np.isin(scene.classes, [PEOPLE])]
    width = np.maximum(boxes[:, 2] - boxes[:, 0], 1.0)
    height = np.maximum(boxes[:, 3] - boxes[:, 1], 1.0)
    lying = np.flatnonzero(width / height >= rules.fall_lying_ratio)
    upright = np.flatnonzero(height / width >= rules.fall_upright_ratio)
    found = []
    for spell in _lying_spells(times[lying], boxes[lying]):
        rows = lying[spell]
        start, end = float(times[rows[0]]), float(times[rows[-1]])
        if end - start < rules.fall_seconds or len(rows) < 3:
            continue
        first = boxes[rows[0]]
        before = upright[(times[upright] >= start - rules.fall_window_seconds) & (times[upright] < start)]
        standing = [i for i in before
                    if abs(boxes[i, 3] - first[3]) <= 0.6 * height[i]  # feet where the body now lies
                    and first[2] >= boxes[i, 0] - 0.5 * height[i] and first[0] <= boxes[i, 2] + 0.5 * height[i]
                    and first[1] - boxes[i, 1] >= rules.fall_drop_heights * height[i]]  # the head came down
        if not standing:
            continue
        stood = float(max(height[i] for i in standing))
        flat = (width[rows] >= rules.fall_stretch_heights * stood) & (height[rows] <= rules.fall_flat_heights * stood)
        if flat.sum() < 2:
            continue
        earlier = lying[(times[lying] < start) & (times[lying] >= start - 10.0)]
        if any(box_intersections(first, boxes[i][None])[0][0] >= 0.3 * min(float(box_areas(first)),
                                                                          float(width[i] * height[i]))
               for i in earlier):
            continue  # lying there before: someone passing in front of them looked like the one who fell
        fell_at = float(times[max(standing, key=lambda i: times[i])])
        ratio = float(np.median(width[rows] / height[rows]))
        found.append(Incident(
            "fall", fell_at, end, [],
            f"went from upright to lying (box {ratio:.1f}x as wide as tall) and stayed down {end - start:.0f} s",
            _confidence(min(1.0, float(confidence[rows].mean()) / 0.5),
                        min(1.0, (end - start) / (2 * rules.fall_seconds)), float(flat.mean())),
            [round(fell_at, 2), round(start, 2), round(end, 2)]))
    return found


def detect_incidents(tracks: list[TrackFacts], restricted_zones: set[str],
                     rules: IncidentRules = IncidentRules(),  # noqa: B008 (frozen)
                     scene: SceneEvidence | None = None, frame_size: tuple[int, int] | None = None,
                     zones: list[Zone] = (), normal_people: float | None = None) -> list[Incident]:
    """Every rule's incidents over one video. ``frame_size`` (width, height) tells a person who walked out of
    the picture from one the tracker lost inside it, and places feet in ``zones`` (the camera's, drawn:
    intrusion times, loitering thresholds and exemptions, capacities); ``normal_people`` is the camera's
    usual peak occupancy, which crowding is judged against where no capacity is set."""
    people = [t for t in tracks if t.class_name == PEOPLE]
    scene = scene or SceneEvidence.empty()
    zones = list(zones)
    found: list[Incident] = []
    for chain in presences(people, rules, frame_size):
        if (incident := _loitering(chain, rules, zones, frame_size)) is not None:
            found.append(incident)
    for track in people:
        if track.motion == "running":
            found.append(Incident("running", track.first_t, track.last_t, [track.track_id],
                                  f"moved at {track.speed_heights_s:.1f} body heights per second",
                                  _confidence(min(1.0, track.speed_heights_s / (1.5 * RUNNING_HEIGHTS_PER_S))),
                                  [round(track.first_t, 2), round(track.last_t, 2)]))
    found += _intrusions(people, set(restricted_zones), zones, frame_size)
    if (crowd := _crowding(people, rules, normal_people)) is not None:
        found.append(crowd)
    found += _zone_crowding(people, zones, frame_size)
    found += _unattended(tracks, scene, rules)
    found += _falls(scene, rules)
    return sorted(found, key=lambda i: (i.start_t, i.type))


def safety_score(incidents: list[Incident], rules: IncidentRules = IncidentRules()) -> int:  # noqa: B008
    """100 less each incident's severity weighed by its confidence: a clip with no incident stays 100, and an
    uncertain incident costs less than a certain one."""
    return max(0, round(100 - sum(rules.severity.get(i.type, 10) * i.confidence for i in incidents)))


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
