"""Video files made by the tests themselves (PyAV writes them): no media is committed."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np


def write_video(path: Path, frames: int | None = None, *, rate: int = 25, codec: str = "libx264",
                fmt: str | None = None, size: tuple[int, int] = (160, 96), times: list[float] | None = None,
                pts_step: int = 1, rotate: int | None = None, faststart: bool = False,
                source: Path | None = None) -> Path:
    """Numbered synthetic frames (or the first frames of ``source``), encoded as asked.

    ``times`` gives each frame's presentation time in seconds (variable frame rate); ``pts_step`` > 1
    leaves holes in the time line (AVI writes them as dropped-frame index entries).
    """
    count = len(times) if times is not None else frames
    options = {"movflags": "+faststart"} if faststart else {}
    reader = cv2.VideoCapture(str(source)) if source else None
    with av.open(str(path), "w", format=fmt, options=options) as out:
        stream = out.add_stream(codec, rate=rate)
        if reader is not None:
            width, height = reader.get(cv2.CAP_PROP_FRAME_WIDTH), reader.get(cv2.CAP_PROP_FRAME_HEIGHT)
            size = (int(width) // 2 * 2, int(height) // 2 * 2)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        if times is not None:
            stream.codec_context.time_base = Fraction(1, 1000)
        if rotate:
            stream.set_display_rotation(rotate)
        rng = np.random.default_rng(0)
        for i in range(count):
            if reader is not None:
                ok, image = reader.read()
                assert ok, f"{source} has fewer than {count} frames"
                image = np.ascontiguousarray(image[: size[1], : size[0]])
            else:
                image = (rng.integers(0, 64, (size[1], size[0], 3))).astype(np.uint8)
                image[:, : size[0] // 4] = 255  # a white band on the left, to see orientation
                cv2.putText(image, str(i), (size[0] // 3, size[1] // 2), cv2.FONT_HERSHEY_SIMPLEX, 1, (0, 0, 255), 2)
            frame = av.VideoFrame.from_ndarray(image, format="bgr24")
            if times is not None:
                frame.pts, frame.time_base = int(round(times[i] * 1000)), Fraction(1, 1000)
            else:
                frame.pts = i * pts_step
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    if reader is not None:
        reader.release()
    return path


def write_audio_only(path: Path, seconds: float = 1.0) -> Path:
    with av.open(str(path), "w") as out:
        stream = out.add_stream("aac", rate=16000)
        for i in range(int(seconds * 16000 / 1024)):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 16000, i * 1024
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def corrupt_middle(source: Path, target: Path, length: int = 4000, seed: int = 1) -> Path:
    """A copy with ``length`` random bytes (fixed seed) written over the middle of the file."""
    data = bytearray(source.read_bytes())
    middle = len(data) // 2
    data[middle:middle + length] = np.random.default_rng(seed).integers(0, 256, length, dtype=np.uint8).tobytes()
    target.write_bytes(bytes(data))
    return target


def object_cutout(source: Path, time_s: float, box: tuple[int, int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """A real object photographed in ``source``: its pixels inside ``box`` (x1, y1, x2, y2) at ``time_s`` and a
    mask of the object alone (GrabCut from the box), to paste into another scene."""
    capture = cv2.VideoCapture(str(source))
    capture.set(cv2.CAP_PROP_POS_MSEC, time_s * 1000)
    ok, image = capture.read()
    capture.release()
    assert ok, f"{source} has no frame at {time_s} s"
    x1, y1, x2, y2 = box
    mask = np.zeros(image.shape[:2], np.uint8)
    cv2.grabCut(image, mask, (x1, y1, x2 - x1, y2 - y1), np.zeros((1, 65)), np.zeros((1, 65)), 5,
                cv2.GC_INIT_WITH_RECT)
    alpha = np.isin(mask, (cv2.GC_FGD, cv2.GC_PR_FGD)).astype(np.float32)[y1:y2, x1:x2]
    return image[y1:y2, x1:x2].copy(), cv2.GaussianBlur(alpha, (3, 3), 0)


def composite_left_object(scene: Path, target: Path, cutout: tuple[np.ndarray, np.ndarray], *, at: tuple[int, int],
                          height: int, from_s: float) -> Path:
    """``scene`` re-encoded with the cut-out object standing at ``at`` (its bottom centre, in pixels), ``height``
    pixels tall, from ``from_s`` seconds to the end: an object left in a real scene."""
    pixels, alpha = cutout
    width = max(1, round(pixels.shape[1] * height / pixels.shape[0]))
    pixels = cv2.resize(pixels, (width, height), interpolation=cv2.INTER_AREA).astype(np.float32)
    alpha = cv2.resize(alpha, (width, height), interpolation=cv2.INTER_AREA)[..., None]
    x1, y1 = at[0] - width // 2, at[1] - height
    reader = cv2.VideoCapture(str(scene))
    rate = reader.get(cv2.CAP_PROP_FPS)
    with av.open(str(target), "w") as out:
        stream = out.add_stream("libx264", rate=Fraction(rate).limit_denominator(1000),
                                options={"preset": "veryfast", "crf": "20"})
        stream.width = int(reader.get(cv2.CAP_PROP_FRAME_WIDTH)) // 2 * 2
        stream.height = int(reader.get(cv2.CAP_PROP_FRAME_HEIGHT)) // 2 * 2
        stream.pix_fmt = "yuv420p"
        index = 0
        while True:
            ok, image = reader.read()
            if not ok:
                break
            image = np.ascontiguousarray(image[: stream.height, : stream.width])
            if index / rate >= from_s:
                region = image[y1:y1 + height, x1:x1 + width].astype(np.float32)
                image[y1:y1 + height, x1:x1 + width] = (alpha * pixels + (1 - alpha) * region).astype(np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")):
                out.mux(packet)
            index += 1
        for packet in stream.encode():
            out.mux(packet)
    reader.release()
    return target
