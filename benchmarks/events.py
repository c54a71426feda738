"""Incidents against hand-labelled events: recall per type, precision, false alarms per hour of footage.

    .venv/bin/python benchmarks/events.py [FOLDER] [--zones FILE] [--tolerance S] [--clips NAME ...]
                                          [--detector CHECKPOINT]

FOLDER holds video clips and a ``labels.csv`` (columns ``clip``, ``event_type``, ``start_s``, ``end_s``;
``event_type`` one of unattended_object, fall, intrusion, loitering, crowding, running or none); the default is
``../shared/data/events``. Point it at a folder of your own cameras' clips to score them the same way.

Each clip goes through ``reelgraph process`` (the same command, in this process, with a fresh state folder and
the defaults of the environment), as camera ``<clip name without extension>``, so the zones file
(``benchmarks/events_zones.yaml`` by default, the zones a site would draw for these clips) applies per clip.
An incident of the labelled type that overlaps the labelled span, widened by ``--tolerance`` seconds (2) each
side, is a hit; every other incident is a false alarm (``video_analysis/evaluation/events.py``).
``--detector`` runs another checkpoint of ``models/manifest.yaml`` (e.g. ``ssd-mobilenet-v2-coco``) as the
offline profile's detector.

The last lines are ``<type> recall=<%> precision=<%>`` per labelled type and ``false_alarms_per_hour=<n>``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from video_analysis.evaluation.events import (  # noqa: E402
    DEFAULT_TOLERANCE_S,
    FoundIncident,
    match_events,
    read_labels,
)

DEFAULT_FOLDER = REPO.parent / "shared" / "data" / "events"
DEFAULT_ZONES = REPO / "benchmarks" / "events_zones.yaml"
STAMP = "2026-01-01T00-00-00"  # the clips' keys are camera segments' keys: cameras/<clip>/<stamp>_<clip>.mp4

log = logging.getLogger("events")


def camera_name(clip: str) -> str:
    return Path(clip).stem


def use_detector(checkpoint: str, home: Path) -> None:
    """The offline profile with ``checkpoint`` as its detector, through a copy of the manifest."""
    import yaml

    from models.registry import MANIFEST

    spec = yaml.safe_load(MANIFEST.read_text())
    if checkpoint not in spec["checkpoints"] or spec["checkpoints"][checkpoint]["task"] != "detector":
        raise SystemExit(f"{checkpoint} is no detector of {MANIFEST}")
    spec["profiles"]["offline"]["detector"] = checkpoint
    manifest = home / "manifest.yaml"
    manifest.parent.mkdir(parents=True, exist_ok=True)
    manifest.write_text(yaml.safe_dump(spec))
    os.environ["REELGRAPH_MODELS_MANIFEST"] = str(manifest)
    os.environ["REELGRAPH_MODEL_PROFILE"] = "offline"


def process_clips(folder: Path, clips: list[str], zones: Path | None, home: Path) -> dict[str, dict]:
    """Each clip through ``reelgraph process`` in a fresh state folder; {clip: its summary row}."""
    os.environ["REELGRAPH_HOME"] = str(home)
    if zones is not None:
        os.environ["REELGRAPH_ZONES"] = str(zones)
    from orchestration.cli import main as reelgraph

    staged = home / "clips"
    staged.mkdir(parents=True, exist_ok=True)
    rows = {}
    for clip in clips:
        camera = camera_name(clip)
        link = staged / f"{STAMP}_{camera}{Path(clip).suffix}"
        link.unlink(missing_ok=True)
        link.symlink_to((folder / clip).resolve())
        started = time.perf_counter()
        status = reelgraph(["process", "--prefix", f"cameras/{camera}/", str(link)])
        if status != 0:
            raise SystemExit(f"reelgraph process failed on {clip}")
        rows[clip] = {"seconds": time.perf_counter() - started, **_summary_of(camera)}
    return rows


def _summary_of(camera: str) -> dict:
    from resources import PostgresResource

    with PostgresResource().session() as conn:
        row = conn.execute(
            """SELECT s.safety_score, s.incidents, v.duration_s, v.status
                 FROM summaries s JOIN videos v USING (partition_key)
                WHERE v.camera = %s ORDER BY v.registered_at DESC LIMIT 1""", (camera,)).fetchone()
        if row is None:
            raise SystemExit(f"no summary was written for camera {camera}")
        detectors = [r[0] for r in conn.execute(
            """SELECT DISTINCT d.model_name FROM detections d JOIN videos v USING (partition_key)
                WHERE v.camera = %s""", (camera,))]
    return {"safety_score": row[0], "incidents": row[1], "duration_s": row[2], "status": row[3],
            "detectors": detectors}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", nargs="?", type=Path, default=DEFAULT_FOLDER)
    parser.add_argument("--zones", type=Path, default=DEFAULT_ZONES, help="zones file, cameras named by clip")
    parser.add_argument("--tolerance", type=float, default=DEFAULT_TOLERANCE_S, help="seconds each side of a label")
    parser.add_argument("--clips", nargs="*", help="only these clips of the folder")
    parser.add_argument("--home", type=Path, help="state folder to use (default: a fresh temporary one)")
    parser.add_argument("--detector", help="a detector checkpoint of models/manifest.yaml (default: the profile's)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    labels, lengths = read_labels(args.folder)
    clips = [c for c in lengths if not args.clips or c in args.clips]
    missing = [c for c in clips if not (args.folder / c).is_file()]
    if missing:
        raise SystemExit(f"{args.folder} lacks labelled clips: {', '.join(missing)}")
    zones = args.zones if args.zones and args.zones.exists() else None
    with tempfile.TemporaryDirectory(prefix="reelgraph-events-") as scratch:
        home = args.home or Path(scratch)
        if args.detector:
            use_detector(args.detector, home)
        rows = process_clips(args.folder, clips, zones, home)
        detectors = sorted({name for clip in clips for name in rows[clip]["detectors"]})
        print(f"detector: {', '.join(detectors) or 'none recorded'} (the model names of the stored detections)")
        report(labels, clips, rows, args.tolerance, zones)


def report(labels, clips, rows, tolerance: float, zones: Path | None) -> None:
    found = [FoundIncident(clip, i["type"], float(i["start_t"]), float(i["end_t"]), i.get("confidence"))
             for clip in clips for i in rows[clip]["incidents"]]
    footage = sum(rows[c]["duration_s"] or 0.0 for c in clips)
    labels = [e for e in labels if e.clip in clips]
    score = match_events(labels, found, footage, tolerance)
    print(f"zones: {zones or 'none'}; tolerance {tolerance:g} s; {len(clips)} clips, {footage:.0f} s of footage")
    print()
    print("| clip | labelled | incidents | safety score | s to process |")
    print("|---|---|---|---|---|")
    hit_ids = {id(i) for _, i in score.hits}
    for clip in clips:
        wanted = ", ".join(f"{e.event_type} {e.start_s:g}-{e.end_s:g}" for e in labels if e.clip == clip) or "none"
        fired = ", ".join(f"{i.type} {i.start_s:.1f}-{i.end_s:.1f}"
                          + (f" ({i.confidence:.2f})" if i.confidence is not None else "")
                          + (" hit" if id(i) in hit_ids else " FALSE") for i in found if i.clip == clip) or "none"
        print(f"| {clip} | {wanted} | {fired} | {rows[clip]['safety_score']} | {rows[clip]['seconds']:.1f} |")
    print()
    for event in score.missed:
        print(f"missed: {event.clip} {event.event_type} {event.start_s:g}-{event.end_s:g}")
    for line in score.lines():
        print(line)


if __name__ == "__main__":
    main()
