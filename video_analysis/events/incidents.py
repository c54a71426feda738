"""Rule-based incidents over one video: every rule run over its tracks and scene, the pipeline's entry point.

Every rule works on facts already stored (tracks, their attributes, the detector's sightings and the static
regions of the scene; `track_facts`), so results are explainable: each incident (`incident_record`) names its
type, time span, the tracks involved, the measurement that fired it, how confident the evidence is (0-1) and
the moments that show it. The thresholds are in `incident_rules`; each rule has its module: `loitering`,
`running`, `zone_intrusion`, `crowding`, `unattended_objects`, `falls`. The safety score and the readable
summary are in `incident_summary`.
"""

from __future__ import annotations

from video_analysis.events.crowding import crowding_incident, zone_crowding_incidents
from video_analysis.events.falls import fall_incidents
from video_analysis.events.incident_record import Incident
from video_analysis.events.incident_rules import IncidentRules
from video_analysis.events.loitering import loitering_incident, presences
from video_analysis.events.running import running_incidents
from video_analysis.events.track_facts import PEOPLE, SceneEvidence, TrackFacts
from video_analysis.events.unattended_objects import unattended_object_incidents
from video_analysis.events.zone_intrusion import intrusion_incidents
from video_analysis.vision.attributes import Zone


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
        if (incident := loitering_incident(chain, rules, zones, frame_size)) is not None:
            found.append(incident)
    found += running_incidents(people)
    found += intrusion_incidents(people, set(restricted_zones), zones, frame_size)
    if (crowd := crowding_incident(people, rules, normal_people)) is not None:
        found.append(crowd)
    found += zone_crowding_incidents(people, zones, frame_size)
    found += unattended_object_incidents(tracks, scene, rules)
    found += fall_incidents(scene, rules)
    return sorted(found, key=lambda i: (i.start_t, i.type))

