"""Scene frames: the whole picture at an incident's moment, with the box of every track involved and the
camera's zones and counting lines drawn, so a card shows what made it an incident rather than one person's crop.
"""

from __future__ import annotations

import cv2
import numpy as np

SCENE_WIDTH = 640  # scenes are stored and served at most this wide
_INVOLVED = (0, 140, 255)  # BGR: the tracks of the incident
_ZONE = (255, 200, 0)
_RESTRICTED = (60, 60, 230)
_LINE = (80, 220, 80)


def box_at(path: list[list[float]], t: float, slack_s: float = 1.0) -> tuple[float, float, float, float] | None:
    """A track's box (x1, y1, x2, y2, pixels) at ``t``, between its stored path points ([t, cx, cy, w, h]) by
    straight lines; None when the track was not in the picture then (``slack_s`` either side of its span)."""
    points = np.array([p[:5] for p in path if len(p) >= 5], np.float64)
    if not len(points) or not points[0, 0] - slack_s <= t <= points[-1, 0] + slack_s:
        return None
    cx, cy, w, h = (float(np.interp(t, points[:, 0], points[:, i])) for i in (1, 2, 3, 4))
    return cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2


def draw_scene(frame: np.ndarray, boxes: dict[int, tuple[float, float, float, float]], zones=(), lines=(),
               caption: str = "") -> bytes:
    """The frame with ``boxes`` ({track id: box}), zones (polygons, the restricted ones in red) and counting lines
    (normalised coordinates) drawn, scaled to at most ``SCENE_WIDTH`` wide, as a JPEG."""
    image = frame.copy()
    height, width = image.shape[:2]
    thick = max(2, width // 400)
    for zone in zones:
        polygon = np.array([[x * width, y * height] for x, y in zone.polygon], np.int32)
        cv2.polylines(image, [polygon], True, _RESTRICTED if zone.restricted else _ZONE, thick, cv2.LINE_AA)
        cv2.putText(image, zone.name, tuple(int(v) for v in polygon[0] + [thick * 2, thick * 10]),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.5 * thick, _RESTRICTED if zone.restricted else _ZONE, thick)
    for line in lines:
        a = (int(line.a[0] * width), int(line.a[1] * height))
        b = (int(line.b[0] * width), int(line.b[1] * height))
        cv2.arrowedLine(image, a, b, _LINE, thick, cv2.LINE_AA, tipLength=0.03)
        cv2.putText(image, line.name, (a[0] + thick * 3, a[1] + thick * 12), cv2.FONT_HERSHEY_SIMPLEX, 0.5 * thick,
                    _LINE, thick)
    for track_id, (x1, y1, x2, y2) in boxes.items():
        cv2.rectangle(image, (int(x1), int(y1)), (int(x2), int(y2)), _INVOLVED, thick + 1)
        cv2.putText(image, f"#{track_id}", (int(x1), max(int(y1) - thick * 3, thick * 10)), cv2.FONT_HERSHEY_SIMPLEX,
                    0.5 * thick, _INVOLVED, thick)
    if caption:
        cv2.putText(image, caption, (thick * 4, height - thick * 6), cv2.FONT_HERSHEY_SIMPLEX, 0.5 * thick,
                    (255, 255, 255), thick + 1)
    if width > SCENE_WIDTH:
        image = cv2.resize(image, (SCENE_WIDTH, round(height * SCENE_WIDTH / width)), interpolation=cv2.INTER_AREA)
    ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 80])
    if not ok:
        raise ValueError("the scene could not be encoded as JPEG")
    return jpeg.tobytes()
