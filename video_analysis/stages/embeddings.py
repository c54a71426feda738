"""embeddings: vectors for search: each track's description (text) and, in `full`, its crop (image)."""

from __future__ import annotations

import cv2
import numpy as np

from video_analysis.stages import StageResult
from video_analysis.store import catalog, quality, vector_index
from video_analysis.store.db import Database
from video_analysis.store.outputs import ModelStamp, StoredTrack, load_descriptions, load_tracks, replace_embeddings
from video_analysis.vision.images import decode_jpeg

STAGE = "embeddings"


def run(db: Database, partition_key: str, text_embedder, text_model: ModelStamp, *, image_embedder=None,
        image_model: ModelStamp | None = None, run_id: str | None = None) -> StageResult:
    """Embed each track's description and (with an image-text model) its best crop; replace the vectors."""
    with db.session() as conn:
        catalog.ready_video(conn, partition_key)
        described = load_descriptions(conn, partition_key)
        stored_tracks = load_tracks(conn, partition_key)
    text_vectors = text_embedder.embed([description for _, description in described])
    image_items, image_vectors = embed_track_crops(stored_tracks, image_embedder) if image_model else ([], None)
    with db.session() as conn:
        rows = replace_embeddings(conn, partition_key, "track_text", text_model, list(described), text_vectors)
        rows += replace_embeddings(conn, partition_key, "track_image", image_model, image_items, image_vectors)
        # The index commits with the rows: a crash never leaves vectors without their index.
        vector_index.ensure_index(conn, text_model.name, text_embedder.dim)
        if image_model is not None:
            vector_index.ensure_index(conn, image_model.name, image_embedder.dim)
        catalog.record_stage(conn, partition_key, STAGE, "done", row_count=rows, model_version=text_model.version,
                             run_id=run_id)
        findings = quality.embedding_findings(conn, partition_key)
    return StageResult(rows, {"examples": [{"track": t, "text": d} for t, d in described[:3]]}, findings)


def embed_track_crops(tracks: list[StoredTrack], embedder) -> tuple[list[tuple[int, None]], np.ndarray]:
    """Image embeddings of each track's best crop (RGB), with the (track_id, content) items they belong to."""
    crops = [(t.summary.track_id, decode_jpeg(t.thumbnail_jpeg)) for t in tracks]
    usable = [(track_id, crop) for track_id, crop in crops if crop is not None]
    vectors = embedder.embed_images([cv2.cvtColor(crop, cv2.COLOR_BGR2RGB) for _, crop in usable])
    return [(track_id, None) for track_id, _ in usable], vectors
