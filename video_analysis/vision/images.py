"""Small image helpers shared by the stages: JPEG thumbnails in and out, boxes drawn for previews."""

from __future__ import annotations

import cv2
import numpy as np

THUMBNAIL_WIDTH = 160


def crop_key(frame_index: int, xyxy) -> tuple:
    """How a sighting's crop is found again from its track's best sighting (frame and box)."""
    return (int(frame_index), *(round(float(v), 1) for v in xyxy))


def make_thumbnail(frame: np.ndarray, width: int = THUMBNAIL_WIDTH) -> bytes:
    """A small JPEG of a BGR frame, scaled to ``width`` pixels."""
    height = max(1, round(frame.shape[0] * width / frame.shape[1]))
    small = cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA)
    ok, encoded = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, 70])
    if not ok:
        raise ValueError("could not encode a thumbnail")
    return encoded.tobytes()


def decode_jpeg(data: bytes | None) -> np.ndarray | None:
    if not data:
        return None
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)


def draw_boxes(image: np.ndarray, xyxy: np.ndarray, labels: list[str]) -> np.ndarray:
    canvas = image.copy()
    for (x1, y1, x2, y2), label in zip(xyxy.astype(int), labels, strict=True):
        cv2.rectangle(canvas, (x1, y1), (x2, y2), (0, 200, 255), 2)
        cv2.putText(canvas, label, (x1, max(12, y1 - 4)), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 200, 255), 1)
    return canvas
