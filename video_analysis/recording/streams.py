"""One connection to a camera: its video packets, each with the wall-clock time it shows.

Packets are never decoded (the recorder copies them), so a camera costs little more than its network.

Wall-clock times, in this order of trust:
- RTSP: the server's RTCP sender reports (FFmpeg's ``start_time_realtime``) place the stream on the
  camera's clock, to within the report interval;
- otherwise (HLS, RTSP servers that send no reports, or whose first report comes after the first packet):
  the receive time, advanced by the stream's own timestamps, taken at the live edge (the packet that arrived
  soonest after its stream time: a server's burst of buffered packets on connecting does not count).
  A stream clock more than ``CLOCK_TOLERANCE_S`` away from the receive time (a camera with a wrong clock) is
  re-anchored on the receive time, with a warning. A jump of the stream's own timestamps (one packet stamped
  far ahead, an encoder restarted behind a relay) is told from the live edge settling (`ReceiveClock`): the
  clock re-anchors at the packet after it and the packet says how far time jumped, so the recorder keeps
  every packet on one timeline and records the jump as a gap.
- a file camera: the time its loop started, advanced by the file's timestamps (played in real time).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import av

from video_analysis.recording.cameras import Camera
from video_analysis.runtime.redact import redact

log = logging.getLogger(__name__)

CLOCK_TOLERANCE_S = 300.0
SETTLE_S = 15.0  # after the first packet, a connection's burst of buffered packets may still move the anchor
BURST_MAX_S = 15.0  # by at most this much: a server buffers seconds, not minutes
JUMP_S = 3.0  # later, stream time running ahead of arrival by more than this is a jump


class ReceiveClock:
    """Wall times from the receive time, advanced by the stream's timestamps, anchored at the live edge.

    While the connection settles, the anchor moves back to the packet that arrived soonest after its stream
    time (a server's burst of buffered packets is older than its arrival). A packet whose stream time is
    ahead of its arrival by more than ``JUMP_S`` after that, or by more than a burst while settling, jumped
    forward; one that arrives later than its stream time by more than the stall limit allows jumped back (a
    stall that long would have dropped the connection). Either re-anchors at that packet."""

    def __init__(self, stall_s: float):
        self.anchor: float | None = None
        self.started: float | None = None
        self.late_s = stall_s + JUMP_S

    def wall(self, seconds: float, received: float) -> tuple[float, float]:
        """(the packet's wall time, how far its stream time jumped: 0 when it did not)."""
        offset = received - seconds
        if self.anchor is None:
            self.anchor, self.started = offset, received
            return received, 0.0
        ahead = self.anchor - offset  # > 0: stream time ran ahead of arrival
        settling = received - self.started < SETTLE_S
        if ahead > (BURST_MAX_S if settling else JUMP_S) or -ahead > self.late_s + (BURST_MAX_S if settling else 0):
            self.anchor = offset
            return received, ahead
        if ahead > 0:
            self.anchor = offset  # the live edge, settling (or the smallest drift)
        return self.anchor + seconds, 0.0


class StreamLost(RuntimeError):
    """The stream could not be opened, ended, stalled or broke; the recorder reconnects."""


@dataclass
class TimedPacket:
    packet: av.Packet
    wall: float  # seconds since the epoch, UTC
    seconds: float = 0.0  # stream time
    jump: float = 0.0  # seconds the stream's timestamps jumped at this packet (+ ahead, - back); 0: none

    @property
    def keyframe(self) -> bool:
        return bool(self.packet.is_keyframe)


class StreamReader:
    """The camera's first video stream, opened with a read timeout: a stall raises `StreamLost`."""

    def __init__(self, camera: Camera, stop: threading.Event):
        self.camera = camera
        self.stop = stop
        self.clock = "receive"
        self.anchor: float | None = None  # wall time of stream time 0
        self._receive = ReceiveClock(camera.stall_seconds)
        self.container = self._open()
        if not self.container.streams.video:
            self.container.close()
            raise StreamLost("the stream has no video")
        self.stream = self.container.streams.video[0]
        if camera.kind != "file" and not (self.stream.codec_context.width and self.stream.codec_context.height):
            # FFmpeg's probe ran out of time before a picture arrived (a camera that stalls while we connect):
            # the stream's frame size is unknown, and MP4 takes no stream without one; connect again. (A file
            # is probed with no time limit: it has a size once it has a picture.)
            self.container.close()
            raise StreamLost(f"no picture within {camera.stall_seconds:g} s of connecting: the frame size is "
                             "unknown")

    def _open(self):
        """The container; RTSP over TCP (no losses), over UDP where the server refuses TCP."""
        camera = self.camera
        timeout = None if camera.kind == "file" else (camera.stall_seconds, camera.stall_seconds)
        options: dict[str, str] = {}
        if camera.kind == "hls":  # start at the live edge; reconnect inside FFmpeg for one lost fetch
            options.update({"live_start_index": "-1", "reconnect": "1", "reconnect_streamed": "1",
                            "reconnect_delay_max": "2"})
        transports = ["tcp", "udp"] if camera.kind == "rtsp" else [None]
        for transport in transports:
            if transport:
                options["rtsp_transport"] = transport
            try:
                return av.open(camera.url, options=options, timeout=timeout, metadata_errors="ignore")
            except (ConnectionRefusedError, av.ExitError) as exc:  # nobody answers: UDP would not either
                raise StreamLost(f"cannot open the stream: {self._reason(exc)}") from exc
            except (av.FFmpegError, OSError) as exc:
                if transport == "tcp":  # 400, 461 (unsupported transport): some servers take RTP over UDP only
                    log.info("%s: RTSP over TCP refused (%s); trying UDP", camera.name, self._reason(exc))
                    continue
                raise StreamLost(f"cannot open the stream: {self._reason(exc)}") from exc
        raise AssertionError("unreachable")

    def _reason(self, exc: Exception) -> str:
        """FFmpeg's message, which quotes the URL: shown masked."""
        return redact(str(exc).replace(self.camera.url, self.camera.shown_url))

    def wall_of(self, seconds: float) -> float:
        """The wall time of a stream time, by the anchor as it stands now (it settles after a connection's
        first burst)."""
        return (self.anchor or 0.0) + seconds

    def close(self) -> None:
        try:
            self.container.close()
        except Exception:  # noqa: BLE001 - closing a broken connection may fail again; it is gone either way
            pass

    def packets(self) -> Iterator[TimedPacket]:
        if self.camera.kind == "file":
            yield from self._looped_file()
            return
        base = self.stream.time_base
        try:
            for packet in self.container.demux(self.stream):
                if self.stop.is_set():
                    return
                if packet.pts is None or packet.dts is None or packet.size == 0:
                    continue  # before the parser found its footing, or a flush marker
                seconds = float(packet.pts * base)
                received = time.time()
                jump = 0.0
                if self.anchor is None:
                    self.anchor = self._anchor(seconds, received)
                    if self.clock == "receive":
                        self._receive.wall(seconds, received)
                elif self.clock == "receive":
                    _, jump = self._receive.wall(seconds, received)
                    self.anchor = self._receive.anchor
                    if jump:
                        log.warning("%s: the stream's timestamps jumped %+.1f s; following the receive time",
                                    self.camera.name, jump)
                wall = self.anchor + seconds
                if abs(wall - received) > CLOCK_TOLERANCE_S:
                    log.warning("%s: stream time is %.0f s from the receive time; using the receive time",
                                self.camera.name, wall - received)
                    self.clock, self.anchor = "receive", received - seconds
                    self._receive = ReceiveClock(self.camera.stall_seconds)
                    self._receive.wall(seconds, received)
                    wall, jump = received, jump or (wall - received)
                yield TimedPacket(packet, wall, seconds, jump)
        except av.ExitError as exc:  # the read timeout interrupted FFmpeg
            raise StreamLost(f"stalled: no packet for {self.camera.stall_seconds:g} s") from exc
        except (av.FFmpegError, OSError) as exc:
            raise StreamLost(f"the stream broke off: {self._reason(exc)}") from exc
        raise StreamLost("the stream ended")

    def _anchor(self, seconds: float, received: float) -> float:
        """Wall time of stream time 0."""
        realtime = getattr(self.container, "start_time_realtime", None)
        if self.camera.kind == "rtsp" and realtime and abs(realtime / 1e6 - received) < CLOCK_TOLERANCE_S:
            self.clock = "stream"
            return realtime / 1e6
        self.clock = "receive"
        return received - seconds

    def _looped_file(self) -> Iterator[TimedPacket]:
        """A local file played in real time, over and over, as a camera would send it."""
        started = time.time()
        self.anchor = started
        offset = 0.0  # seconds of earlier loops
        while not self.stop.is_set():
            base = self.stream.time_base
            first = None
            last = 0.0
            for packet in self.container.demux(self.stream):
                if packet.pts is None or packet.dts is None or packet.size == 0:
                    continue
                seconds = float(packet.pts * base)
                first = seconds if first is None else first
                position = offset + seconds - first
                last = max(last, seconds - first)
                if self.stop.wait(max(0.0, started + position - time.time())):
                    return
                shift = int(round((offset - first) / base))
                packet.pts += shift
                packet.dts += shift
                yield TimedPacket(packet, started + position, position)
            if first is None:
                raise StreamLost("the file holds no video packets")
            offset += last + 1.0 / float(self.stream.average_rate or 25)
            self.container.close()
            try:
                self.container = av.open(self.camera.url, metadata_errors="ignore")
            except (av.FFmpegError, OSError) as exc:
                raise StreamLost(f"cannot reopen the file: {exc}") from exc
            self.stream = self.container.streams.video[0]

