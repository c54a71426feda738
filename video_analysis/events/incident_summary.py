"""A video's 0-100 safety score and its templated, readable summary, made from its tracks and incidents."""

from __future__ import annotations

from collections import Counter

from video_analysis.events.incident_record import Incident
from video_analysis.events.incident_rules import IncidentRules
from video_analysis.events.track_facts import TrackFacts
from video_analysis.wording import count, listing


def safety_score(incidents: list[Incident], rules: IncidentRules = IncidentRules()) -> int:  # noqa: B008
    """100 less each incident's severity weighed by its confidence: a clip with no incident stays 100, and an
    uncertain incident costs less than a certain one."""
    return max(0, round(100 - sum(rules.severity.get(i.type, 10) * i.confidence for i in incidents)))


def summary_text(duration_s: float, camera: str | None, tracks: list[TrackFacts], incidents: list[Incident],
                 score: int, colours: Counter | None = None, partial_s: float | None = None,
                 likely_repeats: int = 0) -> str:
    """The templated summary: facts only, every number traceable to a row.

    ``partial_s``: for partial footage, the seconds that decoded (the facts cover only those).
    ``likely_repeats``: person tracks that are likely the track before them seen again (store/counting.py).
    """
    where = f"camera {camera}" if camera else "the footage"
    counts = Counter(t.class_name for t in tracks)
    seen = [count(n, name) for name, n in sorted(counts.items(), key=lambda item: (item[0] != "person", -item[1],
                                                                                   item[0]))[:6]]
    span = (f"{partial_s:.0f} of {count(round(duration_s), 'second')} of {where} decoded (partial recording)"
            if partial_s is not None else f"{count(round(duration_s), 'second')} of {where}")
    sentences = [f"{span}: {listing(seen)} tracked." if seen else f"{span}: nothing tracked."]
    if likely_repeats and counts["person"] > likely_repeats:
        sentences[0] = (f"{sentences[0][:-1]} (about {counts['person'] - likely_repeats} different people: "
                        f"{count(likely_repeats, 'track')} likely the same person seen again).")
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
