"""Incidents against hand-labelled events (../shared/data/events): what benchmarks/events.py reaches holds.

The regression test runs the benchmark itself, as a user would, over the twelve clips at the defaults: every
labelled event is found (the left backpack, both falls, the garden intrusion) and nothing fires on the eight
clips where nothing happens.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO
from video_analysis.evaluation.events import FoundIncident, LabelledEvent, match_events, read_labels

EVENTS = Path(os.environ.get("REELGRAPH_EVENT_CLIPS", REPO.parent / "shared" / "data" / "events"))


def test_incidents_are_matched_to_labels_one_to_one_within_the_tolerance():
    labels = [LabelledEvent("a.mp4", "fall", 10.0, 20.0), LabelledEvent("b.mp4", "intrusion", 4.0, 9.0)]
    found = [FoundIncident("a.mp4", "fall", 21.5, 25.0),  # 1.5 s after the span: within 2 s
             FoundIncident("a.mp4", "fall", 12.0, 14.0),  # a second fall incident for the same fall
             FoundIncident("b.mp4", "loitering", 4.0, 9.0),  # the wrong type
             FoundIncident("c.mp4", "unattended_object", 0.0, 30.0)]  # where nothing happens
    score = match_events(labels, found, footage_s=1800.0)
    assert score.recall("fall") == 1.0 and score.recall("intrusion") == 0.0
    assert score.precision("fall") == 0.5 and score.precision() == 0.25
    assert [i.type for i in score.false_alarms] == ["fall", "loitering", "unattended_object"]
    assert score.false_alarms_per_hour == 6.0 and [e.clip for e in score.missed] == ["b.mp4"]
    assert score.lines() == ["fall recall=100% precision=50%", "intrusion recall=0% precision=n/a",
                             "false_alarms_per_hour=6.0"]
    late = match_events(labels, [FoundIncident("a.mp4", "fall", 22.5, 25.0)], 60.0)
    assert late.recall("fall") == 0.0 and len(late.false_alarms) == 1


def test_labels_are_read_with_clips_that_hold_nothing(tmp_path):
    (tmp_path / "labels.csv").write_text("clip,event_type,start_s,end_s,notes\n"
                                         "x.mp4,fall,1.5,4,n\ny.mp4,none,0,12.5,\n")
    events, lengths = read_labels(tmp_path)
    assert events == [LabelledEvent("x.mp4", "fall", 1.5, 4.0)] and lengths == {"x.mp4": 4.0, "y.mp4": 12.5}
    (tmp_path / "labels.csv").write_text("clip,event_type,start_s,end_s\nx.mp4,theft,1,2\n")
    with pytest.raises(ValueError, match="unknown event_type 'theft'"):
        read_labels(tmp_path)


@pytest.mark.slow
def test_every_labelled_event_is_found_and_nothing_fires_where_nothing_happens(sample_videos):
    if not (EVENTS / "labels.csv").is_file():
        pytest.fail(f"labelled event clips missing from {EVENTS} (set REELGRAPH_EVENT_CLIPS to the folder that "
                    "holds them)", pytrace=False)
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / "events.py"), str(EVENTS)], cwd=REPO,
                          capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    report = "\n".join(lines[-30:])
    assert lines[-4:] == ["fall recall=100% precision=100%", "intrusion recall=100% precision=100%",
                          "unattended_object recall=100% precision=100%", "false_alarms_per_hour=0.0"], report
    # the stages ran with the offline profile's detector and the benchmark's zones
    assert "detector: picodet-s-416 (the model names of the stored detections)" in report
    assert "benchmarks/events_zones.yaml" in report
    assert "| le2i_home_fall.mp4 | fall 5.8-10.96 | fall" in report
