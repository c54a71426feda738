"""Opening a video file with PyAV and what its container states of the video stream, before any frame decodes."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import av


class DecodeError(ValueError):
    """The file cannot be opened as video at all; the message says why in words a user can act on."""


@dataclass(frozen=True)
class StreamInfo:
    container: str
    codec: str
    width: int  # displayed
    height: int
    rotation: int  # counter-clockwise degrees the stored picture is turned for display (0, 90, 180, 270)
    fps: float  # nominal (average) rate; 0 when the file states none
    duration_s: float | None  # the container's duration
    header_frames: int  # what the container claims; a hint, never trusted
    has_audio: bool


def open_video(path: Path):
    """The opened container and its first video stream; DecodeError for anything that is not video."""
    try:
        container = av.open(str(path), metadata_errors="ignore")
    except (av.FFmpegError, UnicodeDecodeError) as exc:
        raise DecodeError(f"the file cannot be opened as a media container ({ffmpeg_reason(exc)})") from exc
    if not container.streams.video:
        has_audio = bool(container.streams.audio)
        container.close()
        raise DecodeError("no video stream (audio only)" if has_audio else "no video stream")
    stream = container.streams.video[0]
    if stream.codec_context is None or not stream.codec_context.name:
        container.close()
        raise DecodeError("the video stream's codec is unknown")
    stream.thread_type = "AUTO"
    return container, stream


def stream_info(container, stream, rotation: int = 0) -> StreamInfo:
    """What the container says of its video stream; ``rotation`` comes from a decoded frame."""
    width, height = stream.codec_context.width, stream.codec_context.height
    if rotation in (90, 270):
        width, height = height, width
    fps = nominal_fps(stream)
    duration = video_duration_s(container, stream)
    return StreamInfo(container=container.format.name.split(",")[0], codec=stream.codec_context.name, width=width,
                      height=height, rotation=rotation, fps=round(fps, 3), duration_s=duration,
                      header_frames=int(stream.frames or 0), has_audio=bool(container.streams.audio))


def video_duration_s(container, stream) -> float | None:
    """The video stream's own duration where stated (an audio track may run longer), else the container's."""
    if stream.duration is not None and stream.time_base and stream.duration > 0:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / 1_000_000
    return None


def time_origin(stream) -> int:
    """The PTS that every decoded frame's time counts from: the stream's start time (0 when unstated)."""
    return stream.start_time or 0


def nominal_fps(stream) -> float:
    """The stream's stated (average) frame rate; 0 when it states none or a non-finite one."""
    rate = stream.average_rate or stream.guessed_rate
    fps = float(rate) if rate else 0.0
    return fps if math.isfinite(fps) and fps > 0 else 0.0


def ffmpeg_reason(exc: Exception) -> str:
    """FFmpeg's reason for an error, without the file name PyAV appends."""
    text = getattr(exc, "strerror", None) or str(exc)
    return text.split(": '")[0].strip() or type(exc).__name__
