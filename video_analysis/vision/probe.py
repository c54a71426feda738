"""Probe a video file from its stream metadata and packet index, and prove it decodes with a few frames.

No full decode here (that is the detection pass's job, which counts the frames that decode): the probe
reads what the container says, walks the packet index (count, keyframes, first and last timestamps),
and decodes a few frames at the start, middle and end. Header frame counts are hints, never a verdict:
an AVI whose index declares twice the frames that decode is complete when its frames cover its duration.

Status:
- ``ready``: the packets cover the video's duration (to within `allowed_shortfall_s`: 1 s or two frame
  intervals, whichever is larger);
- ``partial``: the recording stops early (power loss, a cut-off upload); what exists is processed and the
  missing span is reported. The detection pass may also find corrupt stretches and mark a video partial;
- failure (`VideoProbeError`): nothing usable: not a container, no video stream ("no video stream (audio
  only)" when there is audio), an unknown codec, no frame that decodes, no usable frame rate or timestamps,
  or dimensions beyond ``max_pixels`` (REELGRAPH_MAX_VIDEO_PIXELS).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from pathlib import Path

import av

from video_analysis.vision.decode_report import allowed_shortfall_s
from video_analysis.vision.frames import displayed_image, readable_packets
from video_analysis.vision.images import make_thumbnail
from video_analysis.vision.seeking import FrameCursor
from video_analysis.vision.video_streams import (
    DecodeError,
    nominal_fps,
    open_video,
    stream_info,
    time_origin,
    video_duration_s,
)

# 8K UHD; larger frames are refused (REELGRAPH_MAX_VIDEO_PIXELS overrides).
DEFAULT_MAX_PIXELS = 7680 * 4320

# The recorder writes a segment's planned length into its container under this tag: a segment that ends sooner
# (a stream lost, a stop) is partial.
TAG_PLANNED_S = "reelgraph_planned_seconds"


class VideoProbeError(ValueError):
    """The file is not a usable video; the message says why in words a user can act on."""


@dataclass(frozen=True)
class VideoProbe:
    container: str
    codec: str
    fps: float
    width: int  # displayed orientation
    height: int
    rotation: int
    frame_count: int  # video packets in the index: frames the stream holds
    header_frame_count: int  # frames the container's header claims (a hint)
    duration_s: float  # the container's duration
    indexed_s: float  # seconds the packets cover
    size_bytes: int
    sha256: str
    thumbnail_jpeg: bytes
    status: str = "ready"  # ready | partial
    notes: list[str] = field(default_factory=list)
    planned_s: float | None = None  # a camera segment's span to its boundary, as the recorder planned it


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
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()



def probe_video(path: Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> VideoProbe:
    """Describe the file from its metadata and packet index; raise VideoProbeError for anything unusable
    (frames larger than ``max_pixels`` too)."""
    path = Path(path)
    try:
        size = path.stat().st_size
        with open(path, "rb") as handle:
            head = handle.read(512)
    except OSError as exc:
        raise VideoProbeError(f"cannot read the file: {exc.strerror or exc}") from exc
    if size == 0:
        raise VideoProbeError("the file is empty (0 bytes)")
    if sniff_container(head) is None:
        content = _describe_content(head)
        if content != "unrecognised binary data":  # images, documents, text: FFmpeg would read some of them
            raise VideoProbeError(f"not a video file: its content is {content}")
    try:
        container, stream = open_video(path)
    except DecodeError as exc:
        raise VideoProbeError(str(exc)) from exc
    try:
        index = _packet_index(container, stream)
        if index.packets == 0:
            raise VideoProbeError("the video stream holds no frames (truncated or corrupt)")
        fps = _frame_rate(stream, index)
        duration = video_duration_s(container, stream) or index.span_s + 1.0 / fps
    finally:
        container.close()
    container, stream = open_video(path)  # from the start again: the index walk read to the end
    try:
        samples = _sample_frames(container, stream, [index.first_t, index.first_t + index.span_s / 2, index.last_t])
    finally:
        container.close()
    if not samples:
        raise VideoProbeError(f"no frame of the {index.container} file decodes (corrupt, or an unsupported codec)")
    rotation = samples[0][1]
    with av.open(str(path), metadata_errors="ignore") as again:
        info = stream_info(again, again.streams.video[0], rotation)
        planned = _planned_seconds(again.metadata)
    if info.width <= 0 or info.height <= 0:
        raise VideoProbeError(f"the video stream has no usable geometry ({info.width}x{info.height})")
    if info.width * info.height > max_pixels:
        raise VideoProbeError(f"frames of {info.width}x{info.height} exceed the configured bound of "
                              f"{max_pixels} pixels (REELGRAPH_MAX_VIDEO_PIXELS)")
    indexed = index.span_s + 1.0 / fps
    missing = duration - indexed
    status, notes = "ready", []
    if missing > allowed_shortfall_s(fps):
        status = "partial"
        notes.append(f"the recording stops at {indexed:.1f} s of its {duration:.1f} s")
    if planned is not None and planned - indexed > allowed_shortfall_s(fps):
        status = "partial"
        notes.append(f"the recorded segment stops at {indexed:.1f} s of the {planned:.0f} s to its boundary "
                     "(the stream dropped or the recorder stopped)")
    if index.stopped_early:
        status = "partial"
        notes.append(f"the container cannot be read past {indexed:.1f} s ({index.stopped_early})")
    thumbnail = samples[len(samples) // 2][0]
    return VideoProbe(
        container=sniff_container(head) or info.container, codec=info.codec, fps=round(fps, 3), width=info.width,
        height=info.height, rotation=rotation, frame_count=index.packets, header_frame_count=info.header_frames,
        duration_s=round(duration, 3), indexed_s=round(min(indexed, duration), 3), size_bytes=size,
        sha256=file_sha256(path), thumbnail_jpeg=make_thumbnail(thumbnail), status=status, notes=notes,
        planned_s=planned)


def _planned_seconds(metadata: dict) -> float | None:
    """The span a camera segment was planned to cover (`reelgraph record` writes it); None for other files."""
    try:
        planned = float(metadata.get(TAG_PLANNED_S, ""))
    except ValueError:
        return None
    return planned if math.isfinite(planned) and planned > 0 else None


@dataclass
class _PacketIndex:
    container: str
    packets: int = 0
    keyframes: int = 0
    first_t: float = 0.0
    last_t: float = 0.0
    stopped_early: str | None = None

    @property
    def span_s(self) -> float:
        return max(0.0, self.last_t - self.first_t)


def _packet_index(container, stream) -> _PacketIndex:
    """Walk the video packets without decoding them: how many, and which times they cover."""
    index = _PacketIndex(container.format.name.split(",")[0])
    start = time_origin(stream)
    first = last = None

    def stopped(reason: str) -> None:
        index.stopped_early = reason

    for packet in readable_packets(container, stream, stopped):
        if packet.size == 0:
            continue  # a flush marker, or a dropped frame in an AVI index
        index.packets += 1
        index.keyframes += bool(packet.is_keyframe)
        stamp = packet.pts if packet.pts is not None else packet.dts
        if stamp is not None and stream.time_base:
            t = float((stamp - start) * stream.time_base)
            first = t if first is None else min(first, t)
            last = t if last is None else max(last, t)
    index.first_t, index.last_t = first or 0.0, last or 0.0
    return index


def _frame_rate(stream, index: _PacketIndex) -> float:
    fps = nominal_fps(stream)
    if fps > 0:
        return fps
    if index.packets > 1 and index.span_s > 0:  # no stated rate: the timestamps give one
        return (index.packets - 1) / index.span_s
    raise VideoProbeError("the video has no frame rate and no usable timestamps")


def _sample_frames(container, stream, times: list[float]):
    """(image, rotation) of the first frame that decodes, and of frames near the other times (by seeking,
    best effort: a stream without an index may not seek). Damaged spots are skipped."""
    found = []
    try:
        for frame in container.decode(stream):
            found.append(_sampled(frame))
            break
    except av.FFmpegError:
        pass
    cursor = FrameCursor(container, stream)
    for target in times[1:]:
        # Any frame near the target proves that part decodes: take the keyframe the seek lands on.
        cursor.seek(target)
        image = cursor.first_at_or_after(-math.inf)
        if image is not None:
            found.append((image, found[0][1] if found else 0))
    return found


def _sampled(frame):
    turns = int(round((getattr(frame, "rotation", 0) or 0) / 90.0)) % 4 * 90
    return displayed_image(frame.to_ndarray(format="bgr24"), frame), turns
