"""Incidents scored as events against hand labels: recall per type, precision, false alarms per hour.

A folder of labelled clips holds the videos and a ``labels.csv`` with at least the columns ``clip``,
``event_type``, ``start_s`` and ``end_s`` (one row per event; ``none`` for a clip where nothing happens,
spanning the clip). An incident of a labelled event's type whose span overlaps the labelled span, widened by
``tolerance_s`` on each side, is a hit; each label is found at most once and each incident finds at most one
label. Every incident that finds no label is a false alarm, of whatever type, so loitering or crowding fired
on a clip where nothing happens counts against the rules as much as a wrong unattended object does.
"""

from __future__ import annotations

import csv
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

# Label types and the incident type that finds each.
INCIDENT_FOR_LABEL = {"unattended_object": "unattended_object", "fall": "fall", "intrusion": "zone_intrusion",
                      "loitering": "loitering", "crowding": "crowding", "running": "running"}
NOTHING = "none"
DEFAULT_TOLERANCE_S = 2.0  # labels are drawn from frames 0.1-1 s apart; a rule confirms some seconds later


@dataclass(frozen=True)
class LabelledEvent:
    clip: str
    event_type: str
    start_s: float
    end_s: float


@dataclass(frozen=True)
class FoundIncident:
    clip: str
    type: str
    start_s: float
    end_s: float
    confidence: float | None = None


@dataclass
class EventScore:
    labels: list[LabelledEvent]
    incidents: list[FoundIncident]
    footage_s: float
    tolerance_s: float
    hits: list[tuple[LabelledEvent, FoundIncident]] = field(default_factory=list)
    false_alarms: list[FoundIncident] = field(default_factory=list)

    def recall(self, event_type: str) -> float | None:
        wanted = [e for e in self.labels if e.event_type == event_type]
        if not wanted:
            return None
        return sum(1 for e, _ in self.hits if e.event_type == event_type) / len(wanted)

    def precision(self, incident_type: str | None = None) -> float | None:
        fired = [i for i in self.incidents if incident_type is None or i.type == incident_type]
        if not fired:
            return None
        return sum(1 for _, i in self.hits if incident_type is None or i.type == incident_type) / len(fired)

    @property
    def false_alarms_per_hour(self) -> float:
        return len(self.false_alarms) / max(self.footage_s / 3600.0, 1e-9)

    @property
    def missed(self) -> list[LabelledEvent]:
        found = {id(e) for e, _ in self.hits}
        return [e for e in self.labels if id(e) not in found]

    def event_types(self) -> list[str]:
        return sorted({e.event_type for e in self.labels})

    def lines(self) -> list[str]:
        """The closing lines: ``<type> recall=<%> precision=<%>`` per labelled type, then false alarms an hour."""
        out = []
        for event_type in self.event_types():
            recall = self.recall(event_type)
            precision = self.precision(INCIDENT_FOR_LABEL[event_type])
            out.append(f"{event_type} recall={_percent(recall)} precision={_percent(precision)}")
        out.append(f"false_alarms_per_hour={self.false_alarms_per_hour:.1f}")
        return out


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.0f}%"


def read_labels(folder: Path) -> tuple[list[LabelledEvent], dict[str, float]]:
    """(the events, each clip's labelled length in seconds) from ``folder/labels.csv``. A ``none`` row's span
    is the clip's length."""
    events, lengths = [], {}
    path = Path(folder) / "labels.csv"
    with open(path, newline="") as handle:
        for row in csv.DictReader(handle):
            event_type = row["event_type"].strip()
            if event_type != NOTHING and event_type not in INCIDENT_FOR_LABEL:
                raise ValueError(f"{path}: unknown event_type {event_type!r} for {row['clip']} "
                                 f"(known: {NOTHING}, {', '.join(sorted(INCIDENT_FOR_LABEL))})")
            clip, start, end = row["clip"].strip(), float(row["start_s"]), float(row["end_s"])
            lengths[clip] = max(lengths.get(clip, 0.0), end)
            if event_type != NOTHING:
                events.append(LabelledEvent(clip, event_type, start, end))
    if not lengths:
        raise ValueError(f"{path} labels no clip")
    return events, lengths


def match_events(labels: list[LabelledEvent], incidents: list[FoundIncident], footage_s: float,
                 tolerance_s: float = DEFAULT_TOLERANCE_S) -> EventScore:
    """Pair incidents with labels (greedy by overlap, one to one); the rest are false alarms."""
    result = EventScore(labels, incidents, footage_s, tolerance_s)
    pairs = []
    for li, label in enumerate(labels):
        for ii, incident in enumerate(incidents):
            if incident.clip != label.clip or incident.type != INCIDENT_FOR_LABEL[label.event_type]:
                continue
            overlap = (min(incident.end_s, label.end_s + tolerance_s)
                       - max(incident.start_s, label.start_s - tolerance_s))
            if overlap >= 0:
                pairs.append((-overlap, li, ii))
    used_labels, used_incidents = set(), set()
    for _, li, ii in sorted(pairs):
        if li in used_labels or ii in used_incidents:
            continue
        used_labels.add(li)
        used_incidents.add(ii)
        result.hits.append((labels[li], incidents[ii]))
    result.false_alarms = [i for n, i in enumerate(incidents) if n not in used_incidents]
    return result


def false_alarm_counts(score: EventScore) -> Counter:
    return Counter(i.type for i in score.false_alarms)
