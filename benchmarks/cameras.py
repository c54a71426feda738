"""How many live cameras one recorder takes on this machine: simulated 1080p RTSP cameras, CPU per camera,
frames lost.

    .venv/bin/python benchmarks/cameras.py [--cameras 1,4,8] [--seconds 40] [--bitrate 4000]

Each simulated camera is an RTSP server (Debian's rtsp-server-perl) fed, in real time, with a 1080p H.264 clip
made once from the sample clip (25 fps, a keyframe every 2 s). `reelgraph record` pulls them all into 10 s
segments. CPU is the recorder process's own (user + system) over the recording; "frames lost" compares the
frames in the published segments with 25 a second over the span they cover. The feeds and servers run on the
same cores, so their CPU is reported too: on a real deployment the cameras are elsewhere.
"""

import argparse
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import av  # noqa: E402

from testbed.streams import RtspCamera, ensure_rtsp_server  # noqa: E402
from testbed.system import process_stat  # noqa: E402

log = logging.getLogger("benchmarks.cameras")
CLIP = ROOT.parent / "shared" / "data" / "videos" / "one-by-one-person-detection.mp4"
RATE = 25
SEGMENT_S = 10


def make_source(target: Path, seconds: float, bitrate_kbps: int) -> Path:
    """The sample clip scaled to 1920x1080 at 25 fps, H.264 at a CCTV-like bitrate, keyframe every 2 s."""
    if target.exists():
        return target
    with av.open(str(CLIP)) as source, av.open(str(target), "w") as out:
        stream = out.add_stream("libx264", rate=RATE)
        stream.width, stream.height, stream.pix_fmt = 1920, 1080, "yuv420p"
        stream.bit_rate = bitrate_kbps * 1000
        stream.options = {"preset": "veryfast", "g": str(2 * RATE), "keyint_min": str(2 * RATE), "bf": "0"}
        stream.codec_context.time_base = Fraction(1, RATE)
        index = 0
        for frame in source.decode(video=0):
            scaled = frame.reformat(width=1920, height=1080, format="yuv420p")
            # the clip is 10 fps: each frame is held for 2-3 output frames
            while index < (frame.time + 0.1) * RATE and index < seconds * RATE:
                scaled.pts = index
                scaled.time_base = Fraction(1, RATE)
                for packet in stream.encode(scaled):
                    out.mux(packet)
                index += 1
            if index >= seconds * RATE:
                break
        for packet in stream.encode():
            out.mux(packet)
    return target


def cpu_seconds(pids: list[int]) -> float:
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        fields = process_stat(pid)
        if fields is not None:
            total += (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    return total


def frames_in(folder: Path) -> tuple[int, float]:
    frames, span = 0, 0.0
    for path in sorted(folder.glob("[0-9]*.mp4")):
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            times = [float(p.pts * stream.time_base) for p in container.demux(stream) if p.size and p.pts is not None]
        if times:
            frames += len(times)
            span += max(times) - min(times) + 1.0 / RATE
    return frames, span


def run(count: int, seconds: float, source: Path, binary: str, work: Path) -> dict:
    folder = work / f"{count}-cameras"
    folder.mkdir()
    cameras = [RtspCamera(binary, source, folder, f"cam{i}").up() for i in range(count)]
    home = folder / "home"
    cameras_file = folder / "cameras.yaml"
    cameras_file.write_text("cameras:\n" + "".join(
        f"  {c.name}:\n    url: {c.url}\n    segment_seconds: {SEGMENT_S}\n" for c in cameras))
    env = {**os.environ, "REELGRAPH_HOME": str(home), "REELGRAPH_CAMERAS": str(cameras_file)}
    for name in ("REELGRAPH_INBOX", "REELGRAPH_S3_BUCKET"):
        env.pop(name, None)
    reelgraph = str(Path(sys.executable).parent / "reelgraph")
    with open(folder / "record.log", "w") as out:
        recorder = subprocess.Popen([reelgraph, "record"], env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        inbox = home / "inbox" / "cameras"
        deadline = time.monotonic() + 90
        while not all(list((inbox / c.name).glob(".recording-*")) for c in cameras):
            if time.monotonic() > deadline or recorder.poll() is not None:
                raise SystemExit(f"the cameras did not start recording:\n{(folder / 'record.log').read_text()[-3000:]}")
            time.sleep(0.5)
        feeds = [c.feed.pid for c in cameras] + [c.server.pid for c in cameras]
        start_cpu, start_feeds, start = cpu_seconds([recorder.pid]), cpu_seconds(feeds), time.monotonic()
        time.sleep(seconds)
        used, feeds_used = cpu_seconds([recorder.pid]) - start_cpu, cpu_seconds(feeds) - start_feeds
        wall = time.monotonic() - start
        recorder.send_signal(signal.SIGTERM)
        recorder.wait(60)
    finally:
        if recorder.poll() is None:
            recorder.kill()
        for camera in cameras:
            camera.down()
    frames, span = 0, 0.0
    for camera in cameras:
        got, covered = frames_in(inbox / camera.name)
        frames, span = frames + got, span + covered
    expected = span * RATE
    return {"cameras": count, "recorder_cpu_pct": 100 * used / wall, "per_camera_pct": 100 * used / wall / count,
            "feeds_cpu_pct": 100 * feeds_used / wall, "frames": frames,
            "lost_pct": max(0.0, 100 * (1 - frames / expected)) if expected else float("nan"), "span_s": span}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cameras", default="1,4,8", help="comma list of camera counts")
    parser.add_argument("--seconds", type=float, default=40.0, help="recording measured per count")
    parser.add_argument("--bitrate", type=int, default=4000, help="kbit/s of the simulated 1080p streams")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    binary = ensure_rtsp_server()
    if binary is None:
        raise SystemExit("rtsp-server-perl is missing (apt-get install rtsp-server-perl)")
    work = Path(tempfile.mkdtemp(prefix="reelgraph-cameras-"))
    try:
        source = make_source(Path(tempfile.gettempdir()) / f"reelgraph-1080p-{args.bitrate}k.mp4", 60,
                             args.bitrate)
        rows = [run(int(n), args.seconds, source, binary, work) for n in args.cameras.split(",")]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\n1080p H.264 at {args.bitrate} kbit/s, {RATE} fps, RTSP (RTP over UDP from rtsp-server-perl), "
          f"{args.seconds:.0f} s measured, {os.cpu_count()} cores\n")
    print("| cameras | recorder CPU (% of a core) | per camera | feeds + servers CPU | frames recorded | frames lost |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['cameras']} | {r['recorder_cpu_pct']:.1f} | {r['per_camera_pct']:.2f} | "
              f"{r['feeds_cpu_pct']:.0f} | {r['frames']} | {r['lost_pct']:.2f}% |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
