"""Probe a video file: what the container claims and, more importantly, what actually decodes.

Headers lie (truncated uploads keep their original frame count), so the probe decodes every
frame once and reports the decodable count; a file that does not decode is rejected with a
message a user can act on, never half-registered.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import cv2

from video_analysis.vision.images import make_thumbnail

# A decode may legitimately come up a frame or two short of the header; more than this is truncation.
MISSING_FRAMES_TOLERANCE = 0.05


class VideoProbeError(ValueError):
    """The file is not a usable video; the message says why in words a user can act on."""


@dataclass(frozen=True)
class VideoProbe:
    container: str
    codec: str
    fps: float
    width: int
    height: int
    frame_count: int  # frames that actually decoded
    header_frame_count: int  # frames the container claims
    duration_s: float
    size_bytes: int
    sha256: str
    thumbnail_jpeg: bytes


def sniff_container(head: bytes) -> str | None:
    """Container format from the file's first bytes, independent of its extension."""
    if len(head) >= 12 and head[4:8] == b"ftyp":
        brand = head[8:12]
        return "mov" if brand == b"qt  " else "mp4"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "matroska"
    if head.startswith(b"RIFF") and head[8:12] == b"AVI ":
        return "avi"
    if head.startswith(b"\x00\x00\x01\xba"):
        return "mpeg-ps"
    if len(head) > 188 and head[0] == 0x47 and head[188] == 0x47:
        return "mpeg-ts"
    if head.startswith(b"FLV"):
        return "flv"
    return None


def _describe_content(head: bytes) -> str:
    signatures = {
        b"\x89PNG": "a PNG image",
        b"\xff\xd8\xff": "a JPEG image",
        b"%PDF": "a PDF document",
        b"PK\x03\x04": "a ZIP archive",
        b"GIF8": "a GIF image",
    }
    for magic, label in signatures.items():
        if head.startswith(magic):
            return label
    try:
        head.decode("utf-8")
        return "text"
    except UnicodeDecodeError:
        return "unrecognised binary data"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(4 * 1024 * 1024), b""):
            digest.update(block)
    return digest.hexdigest()


def _fourcc_name(value: float) -> str:
    code = int(value)
    text = "".join(chr((code >> (8 * i)) & 0xFF) for i in range(4)).strip("\x00 ").lower()
    aliases = {"avc1": "h264", "h264": "h264", "x264": "h264", "hev1": "hevc", "hvc1": "hevc", "mp4v": "mpeg4"}
    return aliases.get(text, text or "unknown")


def probe_video(path: Path) -> VideoProbe:
    """Decode the whole file once and describe it; raise VideoProbeError for anything unusable."""
    path = Path(path)
    try:
        size = path.stat().st_size
        with open(path, "rb") as handle:
            head = handle.read(512)
    except OSError as exc:
        raise VideoProbeError(f"cannot read the file: {exc.strerror or exc}") from exc
    if size == 0:
        raise VideoProbeError("the file is empty (0 bytes)")
    container = sniff_container(head)
    if container is None:
        raise VideoProbeError(f"not a video file: its content is {_describe_content(head)}")

    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            raise VideoProbeError(
                f"the {container} container could not be opened (truncated or corrupt: no readable video stream)"
            )
        fps = float(capture.get(cv2.CAP_PROP_FPS) or 0.0)
        width = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH))
        height = int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
        header_frames = max(0, int(capture.get(cv2.CAP_PROP_FRAME_COUNT)))
        codec = _fourcc_name(capture.get(cv2.CAP_PROP_FOURCC))
        thumbnail_at = header_frames // 2 if header_frames else 0
        decoded = 0
        thumbnail_frame = None
        while capture.grab():
            if decoded == thumbnail_at or thumbnail_frame is None:
                ok, frame = capture.retrieve()
                if ok:
                    thumbnail_frame = frame
            decoded += 1
    finally:
        capture.release()

    if decoded == 0 or thumbnail_frame is None:
        raise VideoProbeError(f"no frame of the {container} file decodes (corrupt or truncated)")
    if header_frames and header_frames - decoded > max(2, MISSING_FRAMES_TOLERANCE * header_frames):
        raise VideoProbeError(
            f"truncated or corrupt: only {decoded} of the {header_frames} frames the header declares decode"
        )
    if fps <= 0 or width <= 0 or height <= 0:
        raise VideoProbeError(f"the video stream has no usable geometry (fps={fps}, {width}x{height})")
    return VideoProbe(
        container=container,
        codec=codec,
        fps=round(fps, 3),
        width=width,
        height=height,
        frame_count=decoded,
        header_frame_count=header_frames,
        duration_s=round(decoded / fps, 3),
        size_bytes=size,
        sha256=file_sha256(path),
        thumbnail_jpeg=make_thumbnail(thumbnail_frame),
    )
