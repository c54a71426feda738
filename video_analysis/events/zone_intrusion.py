"""The zone intrusion rule: a person whose feet are inside a restricted zone."""

from __future__ import annotations

import numpy as np

from video_analysis.events.incident_record import Incident, evidence_confidence
from video_analysis.events.track_facts import STEP_S, TrackFacts, feet_rows
from video_analysis.vision.attributes import Zone


def intrusion_incidents(people: list[TrackFacts], restricted: set[str], zones: list[Zone],
                        frame_size) -> list[Incident]:
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
                              evidence_confidence(min(1.0, 0.5 + 0.25 * seen)), [round(start, 2), round(end, 2)]))
    return found

