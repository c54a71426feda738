"""Archive segments: where a camera's stream is cut, what each segment is called, and how it is written.

A segment starts at a keyframe and ends at the first keyframe at or after the next wall-clock boundary
(10:00, 10:10, ... for 600 s segments), so it plays on its own. It is written as fragmented MP4 under a
hidden name: a recorder killed mid-segment leaves a file that still plays up to its last fragment, which the
next start publishes (`leftovers`) instead of losing it, and that no listing takes for a finished upload.

Each segment carries, in its own metadata, the seconds it was planned to cover (to its boundary): the probe
marks one that ends early (the stream dropped, the recorder stopped) ``partial``.
"""

from __future__ import annotations

import logging
import math
import os
import re
from datetime import datetime, timezone
from pathlib import Path

import av

from video_analysis.vision.probe import TAG_PLANNED_S  # container metadata: the seconds to the segment's boundary

log = logging.getLogger(__name__)

SPOOL_PREFIX = ".recording-"

_STAMP = "%Y-%m-%dT%H-%M-%S"
_SPOOL_NAME = re.compile(rf"^{re.escape(SPOOL_PREFIX)}(?P<stamp>\d{{4}}-\d\d-\d\dT\d\d-\d\d-\d\d)(?P<n>_\d+)?\.mp4$")


def next_boundary(wall: float, segment_seconds: int) -> float:
    """The first wall-clock boundary after ``wall`` (UTC, aligned to multiples of the segment length)."""
    return (math.floor(wall / segment_seconds) + 1) * segment_seconds


def segment_name(start_wall: float, taken: set[str] | None = None) -> str:
    """``<UTC start>.mp4``; a second segment starting within the same second gets ``_2``."""
    stamp = datetime.fromtimestamp(start_wall, tz=timezone.utc).strftime(_STAMP)
    name, n = f"{stamp}.mp4", 1
    while taken and name in taken:
        n += 1
        name = f"{stamp}_{n}.mp4"
    return name


def segment_key(camera: str, name: str) -> str:
    """The object key: ``cameras/<camera>/<UTC start>.mp4``, which the catalogue reads camera and time from."""
    return f"cameras/{camera}/{name}"


def spool_name(name: str) -> str:
    return SPOOL_PREFIX + name


def published_name(spool_file: Path) -> str | None:
    match = _SPOOL_NAME.match(spool_file.name)
    return spool_file.name[len(SPOOL_PREFIX):] if match else None


FRAGMENT_S = 2.0


class SegmentWriter:
    """One segment being written: packets copied as they are (no re-encoding), timestamps from zero."""

    def __init__(self, path: Path, template: av.video.stream.VideoStream, start_wall: float, planned_end: float):
        self.path = path
        self.start_wall = start_wall
        self.planned_end = planned_end
        self.last_wall = start_wall
        self.first_seconds = 0.0  # stream time of the first packet
        self.packets = 0
        self.dropped = 0
        self._origin: int | None = None
        self._last_dts: int | None = None
        self._step: int | None = None  # the usual DTS step between packets, in the stream's time base
        path.parent.mkdir(parents=True, exist_ok=True)
        self.container = av.open(str(path), "w", format="mp4", options={
            # fragments at each keyframe: the file plays up to its last fragment even if we are killed; and at
            # least every FRAGMENT_S, so a stream that sends no keyframes is written out as it comes instead of
            # held in memory until the segment closes (hundreds of MB, then an OOM kill of every camera)
            "movflags": "frag_keyframe+empty_moov+default_base_moof+use_metadata_tags", "flush_packets": "1",
            "frag_duration": str(int(FRAGMENT_S * 1_000_000))})
        self.stream = self.container.add_stream_from_template(template)
        self.container.metadata[TAG_PLANNED_S] = f"{planned_end - start_wall:.3f}"

    @property
    def seconds(self) -> float:
        return self.last_wall - self.start_wall

    def write(self, packet: av.Packet, wall: float) -> None:
        if self._origin is None:
            self._origin = packet.dts
        packet.pts -= self._origin
        packet.dts -= self._origin
        if packet.dts < 0 or packet.pts < 0:
            return  # belongs before this segment's first keyframe (reordered frames)
        if self._last_dts is not None and packet.dts <= self._last_dts:
            self.dropped += 1  # a repeated or backward timestamp (lost packets, a camera's glitch): MP4 refuses it
            return
        if self._last_dts is not None:
            step = packet.dts - self._last_dts
            if self._step is None or step < 10 * self._step:  # a gap in the stream is not a frame's step
                self._step = step
        self._last_dts = packet.dts
        packet.stream = self.stream
        self.container.mux(packet)
        self.packets += 1
        self.last_wall = wall

    def continue_after_jump(self, packet: av.Packet) -> None:
        """The stream's timestamps jumped at ``packet``: it continues this segment's timeline one frame after the
        last packet written, and the packets after it follow from there (none dropped as out of order)."""
        if self._origin is None or self._last_dts is None:
            return
        self._origin = packet.dts - (self._last_dts + (self._step or 1))

    def close(self) -> Path:
        try:
            self.container.close()
        except av.FFmpegError as exc:
            log.warning("closing %s: %s", self.path.name, exc)
        return self.path


def playable_packets(path: Path) -> int:
    """Video packets that can be read from a (possibly unfinished) segment file; 0 when none."""
    count = 0
    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            if not container.streams.video:
                return 0
            for packet in container.demux(container.streams.video[0]):
                count += packet.size > 0
    except (av.FFmpegError, OSError):
        pass
    return count


def leftovers(spool: Path) -> list[Path]:
    """Segment files a killed recorder left in ``spool``, oldest first."""
    if not spool.is_dir():
        return []
    return sorted(p for p in spool.iterdir() if p.is_file() and published_name(p))


def remove_quietly(path: Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
