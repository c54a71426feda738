"""The unattended object rule: something bag-like left beside a person who then went away while nobody else
stayed near.

The object is detected as a bag or found by the static-object cue at bag size on the floor; it appeared beside a
person who then went away for ``unattended_seconds``. Scenery the cue picks up (counters, shelves, screens,
doorways) is too large, too tall or off the floor people walk on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from video_analysis.events.incident_record import Incident, evidence_confidence
from video_analysis.events.incident_rules import IncidentRules
from video_analysis.events.track_facts import PEOPLE, VEHICLES, SceneEvidence, TrackFacts, feet_rows
from video_analysis.vision.detections import box_areas, box_intersections


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


@dataclass(frozen=True)
class _Sightings:
    """The detector's sightings a candidate is weighed against: people (times, boxes, and rows of [t, feet x,
    feet y, height]), vehicles, and objects of the unattended classes."""

    person_t: np.ndarray
    person_box: np.ndarray
    sighted: np.ndarray
    vehicle_t: np.ndarray
    vehicle_box: np.ndarray
    object_t: np.ndarray
    object_box: np.ndarray


def _sightings(scene: SceneEvidence, points: dict[int, np.ndarray], rules: IncidentRules) -> _Sightings:
    """The scene's sightings; where no person sightings were given, the people's tracks stand in for them."""
    person_t, person_box = scene.sightings([PEOPLE])
    if len(person_t):
        heights = person_box[:, 3] - person_box[:, 1]
        sighted = np.stack([person_t, (person_box[:, 0] + person_box[:, 2]) / 2, person_box[:, 3], heights], axis=1)
    else:  # no sightings given: the people's tracks stand in for them
        sighted = np.concatenate(list(points.values())) if points else np.zeros((0, 4))
        person_box = np.array([(x - h / 4, y - h, x + h / 4, y) for _, x, y, h in sighted]).reshape(-1, 4)
        person_t = sighted[:, 0]
    return _Sightings(person_t, person_box, sighted, *scene.sightings(VEHICLES),
                      *scene.sightings(rules.unattended_classes))


def _candidates(tracks: list[TrackFacts], scene: SceneEvidence, seen: _Sightings, rules: IncidentRules) -> list:
    """What might have been left, as (first, last, box, its track when tracked whole, whether the detector
    recognised it): the static cue's regions, places the detector kept seeing an object of the unattended
    classes, and stationary object tracks where no sightings were given."""
    candidates = [(r.first_t, r.last_t, np.asarray(r.xyxy, np.float64), None, False) for r in scene.static_regions]
    candidates += [(first, last, box, None, True)
                   for first, last, box, n in _sighting_clusters(seen.object_t, seen.object_box) if n >= 3]
    for track in tracks:  # an object tracked in one piece, where no sightings were given
        if track.class_name in rules.unattended_classes and track.motion == "stationary" and not len(seen.object_t):
            x, y, h = track.path[0][1], track.path[0][2], track.box_height
            candidates.append((track.first_t, track.last_t, np.array([x - h / 2, y - h / 2, x + h / 2, y + h / 2]),
                               track, True))
    return candidates


def _not_left_object(box: np.ndarray, first: float, last: float, detected: bool, seen: _Sightings,
                     rules: IncidentRules) -> bool:
    """Whether a candidate is something else: a person standing still (a person covers most of it, much of the
    time), a vehicle (under a vehicle's box), or scenery the static cue picked up."""
    during = (seen.person_t >= first) & (seen.person_t <= last)
    covering = during & (_overlap(box, seen.person_box) >= 0.5) if len(seen.person_box) else during
    if covering.any() and covering.sum() > 0.3 * max(1, len(np.unique(seen.person_t[during]))):
        return True
    vehicle_during = (seen.vehicle_t >= first) & (seen.vehicle_t <= last)
    if len(seen.vehicle_box) and (vehicle_during & (_overlap(box, seen.vehicle_box) >= 0.5)).sum() >= 3:
        return True
    return not detected and _scenery(box, seen.sighted, rules) is not None


def _left_object_incident(first: float, last: float, box: np.ndarray, tracked: TrackFacts | None, owner: int,
                          points: dict[int, np.ndarray], scene: SceneEvidence, seen: _Sightings,
                          rules: IncidentRules) -> Incident | None:
    """The incident for an object its owner left, when nobody attended it for ``unattended_seconds``: named by
    its track, else by what the detector most often called it."""
    base = np.array([(box[0] + box[2]) / 2, box[3]])
    attended = _attended(points, base, owner, rules)
    alone = _longest_alone(first, last, attended)
    if alone < rules.unattended_seconds:
        return None
    labels = list(scene.classes[np.isin(scene.classes, list(rules.unattended_classes))][
        _overlap(box, seen.object_box) >= 0.3]) if len(seen.object_box) else []
    if tracked is not None:
        name, noted, involved = tracked.class_name, "", [tracked.track_id]
    else:
        name = max(set(labels), key=labels.count) if labels else "object"
        noted = f", seen by the detector {len(labels)} times" if labels else ", never recognised by the detector"
        involved = []
    alone_from = _alone_from(first, last, attended)
    beyond = (alone - rules.unattended_seconds) / rules.unattended_seconds
    confidence = evidence_confidence(1.0 if labels or tracked is not None else 0.6, 0.5 + 0.5 * min(1.0, beyond))
    evidence = [float(first), alone_from, min(float(last), alone_from + rules.unattended_seconds)]
    return Incident("unattended_object", float(first), float(last), involved + [owner],
                    f"{name} left with nobody near for {alone:.0f} s, away from the person beside it "
                    f"when it appeared (track {owner}){noted}", confidence, [round(t, 2) for t in evidence])


def unattended_object_incidents(tracks: list[TrackFacts], scene: SceneEvidence,
                                rules: IncidentRules) -> list[Incident]:
    """Left objects, as PETS 2006 defines them: something bag-like appeared beside a person (its owner), who
    then stayed further than ``unattended_radius_heights`` for ``unattended_seconds`` while nobody else stayed
    near. Something that appeared with nobody beside it is not judged: nobody left it there, and the static
    cue's regions with no owner are mostly scenery a passer-by uncovered or the light changed."""
    points = _people_points([t for t in tracks if t.class_name == PEOPLE])
    seen = _sightings(scene, points, rules)
    found: list[tuple[Incident, np.ndarray]] = []
    candidates = _candidates(tracks, scene, seen, rules)
    for first, last, box, tracked, detected in sorted(candidates, key=lambda c: c[0] - c[1]):  # longest first
        if last - first < rules.unattended_seconds or _not_left_object(box, first, last, detected, seen, rules):
            continue
        if any(_overlap(box, other[None])[0] >= 0.3 and incident.start_t < last and first < incident.end_t
               for incident, other in found):
            continue  # the same object, by the other cue
        owner = _owner(points, np.array([(box[0] + box[2]) / 2, box[3]]), first, rules)
        if owner is None:
            continue
        incident = _left_object_incident(first, last, box, tracked, owner, points, scene, seen, rules)
        if incident is not None:
            found.append((incident, box))
    return [incident for incident, _ in found]
