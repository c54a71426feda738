"""A simulated camera: a clip looped in real time, copied (never re-encoded) to an RTSP server or into a live
HLS playlist. Run as ``python -m testbed.publisher CLIP TARGET``; TARGET is ``rtsp://...`` or a folder."""

import argparse
import sys
import time
from pathlib import Path

import av


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("clip")
    parser.add_argument("target")
    args = parser.parse_args()
    if args.target.startswith("rtsp://"):
        # rtsp-server-perl takes RTP from publishers over UDP only
        out = av.open(args.target, "w", format="rtsp", options={"rtsp_transport": "udp"})
    else:
        folder = Path(args.target)
        folder.mkdir(parents=True, exist_ok=True)
        out = av.open(str(folder / "live.m3u8"), "w", format="hls", options={
            "hls_time": "2", "hls_list_size": "6", "hls_flags": "delete_segments+program_date_time+omit_endlist"})
    with av.open(args.clip) as first:
        stream = out.add_stream_from_template(first.streams.video[0])
    started, offset = time.monotonic(), 0.0
    while True:
        source = av.open(args.clip)
        video = source.streams.video[0]
        base, last, first = video.time_base, 0.0, None
        for packet in source.demux(video):
            if packet.dts is None or packet.pts is None:
                continue
            seconds = float(packet.pts * base)
            first = seconds if first is None else first
            position = offset + seconds - first
            last = max(last, seconds - first)
            delay = started + position - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            shift = int(round((offset - first) / base))
            packet.pts += shift
            packet.dts += shift
            packet.stream = stream
            out.mux(packet)
        offset += last + 1.0 / float(video.average_rate or 25)
        source.close()


if __name__ == "__main__":
    sys.exit(main())
