"""Glue for the understanding stages: stored tracks -> attributes -> incident facts."""

from __future__ import annotations

from collections import Counter

import cv2
import numpy as np
import psycopg

from video_analysis.attributes import TrackAttributes, Zone, track_attributes
from video_analysis.incidents import TrackFacts
from video_analysis.results import StoredTrack


def decode_jpeg(data: bytes | None) -> np.ndarray | None:
    if not data:
        return None
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)


def attributes_for(tracks: list[StoredTrack], width: int, height: int, zones: list[Zone]) -> list[TrackAttributes]:
    return [track_attributes(t.summary, t.class_name, decode_jpeg(t.thumbnail_jpeg), width, height, zones)
            for t in tracks]


def clothing_colours(conn: psycopg.Connection, partition_key: str) -> Counter:
    return Counter(colour for (colour,) in conn.execute(
        "SELECT unnest(ARRAY[upper_color, lower_color]) FROM track_attributes "
        "WHERE partition_key = %s AND class_name = 'person'", (partition_key,)) if colour)


def track_facts(conn: psycopg.Connection, partition_key: str) -> list[TrackFacts]:
    rows = conn.execute(
        """SELECT t.track_id, t.class_name, t.first_t, t.last_t, t.path, t.best_y2 - t.best_y1,
                  a.motion, a.speed_heights_s, a.zones
           FROM tracks t JOIN track_attributes a USING (partition_key, track_id)
           WHERE t.partition_key = %s ORDER BY t.first_t""",
        (partition_key,),
    ).fetchall()
    return [TrackFacts(track_id=r[0], class_name=r[1], first_t=r[2], last_t=r[3], path=r[4], box_height=r[5],
                       motion=r[6], speed_heights_s=r[7], zones=tuple(r[8])) for r in rows]


def load_descriptions(conn: psycopg.Connection, partition_key: str) -> list[tuple[int, str]]:
    return conn.execute("SELECT track_id, description FROM track_attributes WHERE partition_key = %s "
                        "ORDER BY track_id", (partition_key,)).fetchall()


def embed_track_crops(tracks: list[StoredTrack], embedder) -> tuple[list[tuple[int, None]], np.ndarray]:
    """Image embeddings of each track's best crop (RGB), with the (track_id, content) items they belong to."""
    crops = [(t.summary.track_id, decode_jpeg(t.thumbnail_jpeg)) for t in tracks]
    usable = [(track_id, crop) for track_id, crop in crops if crop is not None]
    vectors = embedder.embed_images([cv2.cvtColor(crop, cv2.COLOR_BGR2RGB) for _, crop in usable])
    return [(track_id, None) for track_id, _ in usable], vectors


def model_attributes(tracks: list[StoredTrack], classifiers: dict, depth=None, video_path=None) -> dict[int, dict]:
    """Per-track extras from full-profile models: {"age": {label, score}, "gender": ..., "relative_depth": x}."""
    from video_analysis.frames import read_frames

    extras: dict[int, dict] = {t.summary.track_id: {} for t in tracks}
    people = [t for t in tracks if t.class_name == "person" and t.thumbnail_jpeg]
    crops = [cv2.cvtColor(decode_jpeg(t.thumbnail_jpeg), cv2.COLOR_BGR2RGB) for t in people]
    for name, classifier in classifiers.items():
        for track, (label, score) in zip(people, classifier.classify(crops), strict=True):
            extras[track.summary.track_id][name] = {"label": label, "score": score}
    if depth is not None and video_path is not None and tracks:
        frames = read_frames(video_path, {t.summary.best_frame for t in tracks})
        by_frame: dict[int, list[StoredTrack]] = {}
        for track in tracks:
            by_frame.setdefault(track.summary.best_frame, []).append(track)
        for index, members in by_frame.items():
            if index in frames:
                values = depth.relative_depth(frames[index], [m.summary.best_box for m in members])
                for member, value in zip(members, values, strict=True):
                    extras[member.summary.track_id]["relative_depth"] = value
    return extras


def with_model_facts(attributes: list[TrackAttributes], extras: dict[int, dict]) -> list[TrackAttributes]:
    """Descriptions mention apparent gender and age when a model provided them (so search can use them)."""
    updated = []
    for attrs in attributes:
        facts = extras.get(attrs.track_id, {})
        words = [facts[k]["label"] for k in ("gender", "age") if k in facts]
        description = f"{attrs.description}, apparently {' '.join(words)}" if words else attrs.description
        updated.append(TrackAttributes(**{**attrs.__dict__, "description": description}))
    return updated


def keyframes(video_path, tracks: list[StoredTrack], count: int = 4) -> list[np.ndarray]:
    """Best frames of the longest tracks: what a vision-language model looks at."""
    from video_analysis.frames import read_frames

    longest = sorted(tracks, key=lambda t: t.summary.last_t - t.summary.first_t, reverse=True)[:count]
    frames = read_frames(video_path, {t.summary.best_frame for t in longest})
    return [frames[i] for i in sorted(frames)]
