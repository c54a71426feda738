"""The fall rule: a person seen upright and then, at the same place within seconds, lying for ``fall_seconds``.

Lying is a box wider than tall, its top well below where the standing person's head was; judged across tracks,
since a tracker rarely keeps one identity through a fall.
"""

from __future__ import annotations

import numpy as np

from video_analysis.events.incident_record import Incident, evidence_confidence
from video_analysis.events.incident_rules import IncidentRules
from video_analysis.events.track_facts import PEOPLE, SceneEvidence
from video_analysis.vision.detections import box_areas, box_intersections


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


def fall_incidents(scene: SceneEvidence, rules: IncidentRules) -> list[Incident]:
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
            evidence_confidence(min(1.0, float(confidence[rows].mean()) / 0.5),
                        min(1.0, (end - start) / (2 * rules.fall_seconds)), float(flat.mean())),
            [round(fell_at, 2), round(start, 2), round(end, 2)]))
    return found

