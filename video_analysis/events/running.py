"""The running rule: a person the attributes stage found moving at a running pace."""

from __future__ import annotations

from video_analysis.events.incident_record import Incident, evidence_confidence
from video_analysis.events.track_facts import TrackFacts
from video_analysis.vision.attributes import RUNNING_HEIGHTS_PER_S


def running_incidents(people: list[TrackFacts]) -> list[Incident]:
    """Each person track whose motion is ``running``, as confident as its speed is above a run's."""
    return [Incident("running", track.first_t, track.last_t, [track.track_id],
                     f"moved at {track.speed_heights_s:.1f} body heights per second",
                     evidence_confidence(min(1.0, track.speed_heights_s / (1.5 * RUNNING_HEIGHTS_PER_S))),
                     [round(track.first_t, 2), round(track.last_t, 2)])
            for track in people if track.motion == "running"]
