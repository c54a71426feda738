"""The crowding rule: more people at once than a capacity (the rules' ``crowd_size``, a zone's ``capacity``)
or than the camera's normal occupancy, never one fixed count for every scene."""

from __future__ import annotations

import numpy as np

from video_analysis.events.incident_record import Incident, evidence_confidence
from video_analysis.events.incident_rules import IncidentRules
from video_analysis.events.track_facts import PEOPLE, STEP_S, TrackFacts, feet_rows
from video_analysis.vision.attributes import Zone


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


def crowding_incident(people: list[TrackFacts], rules: IncidentRules, normal_people: float | None) -> Incident | None:
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
                            evidence_confidence(0.5 + 0.5 * min(1.0, (peak - limit + 1) / limit)),
                            [round(start, 2), round(t, 2)])
    return None


def zone_crowding_incidents(people: list[TrackFacts], zones: list[Zone], frame_size) -> list[Incident]:
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
                                  evidence_confidence(0.5 + 0.5 * min(1.0, (peak - zone.capacity) / zone.capacity)),
                                  [round(start, 2), round(end, 2)]))
    return found

