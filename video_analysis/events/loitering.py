"""The loitering rule: dwell in one area over the fragments a person's track breaks into.

A tracker loses people behind a car or in the dark: fragments that follow each other within seconds, start near
where the last ended and wear the same colours count as one presence. Zones can set their own threshold or be
exempt (a desk, a till, a queue).
"""

from __future__ import annotations

import numpy as np

from video_analysis.events.incident_record import Incident, evidence_confidence
from video_analysis.events.incident_rules import IncidentRules
from video_analysis.events.track_facts import TrackFacts
from video_analysis.vision.attributes import Zone, feet_points


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


def loitering_incident(chain: list[TrackFacts], rules: IncidentRules, zones: list[Zone] = (),
                       frame_size: tuple[int, int] | None = None) -> Incident | None:
    """One presence's longest dwell in an area, when it lasted past the threshold of the zone it was in (else
    the rules'), leaving out time in zones exempt from loitering."""
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
    confidence = evidence_confidence(0.5 + 0.5 * min(1.0, (end - start - limit) / limit),
                                     1.0 if len(involved) == 1 else 0.7)
    return Incident("loitering", start, end, involved,
                    f"stayed {end - start:.0f} s within {rules.loiter_radius_heights:g} body heights of one "
                    f"place{pieces}", confidence, [round(start, 2), round((start + end) / 2, 2), round(end, 2)])

