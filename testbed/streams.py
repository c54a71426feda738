"""Live cameras for tests: real RTSP servers and HLS playlists over HTTP, fed with sample clips in real time.

RTSP: Debian's rtsp-server-perl (installed through apt when missing and we may), one server per camera so
that one can be killed while the others go on. HLS: FFmpeg's HLS muxer writing a live playlist into a
folder that Python's HTTP server serves.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from testbed.system import REPO, apt_install, free_port


def ensure_rtsp_server() -> str | None:
    """The rtsp-server-perl binary, installed through apt when missing and we may (root); None otherwise."""
    found = shutil.which("rtsp-server-perl")
    if found or os.geteuid() != 0 or not shutil.which("apt-get"):
        return found
    apt_install(["rtsp-server-perl"], lambda: shutil.which("rtsp-server-perl"))
    return shutil.which("rtsp-server-perl")


def _free_udp_pair() -> int:
    """An even UDP port whose successor is free too: where rtsp-server-perl takes RTP from its source."""
    import random
    import socket

    while True:
        port = random.randrange(20000, 60000, 2)
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as a, \
                    socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as b:
                a.bind(("127.0.0.1", port))
                b.bind(("127.0.0.1", port + 1))
            return port
        except OSError:
            continue


def _start(command: list[str], log: Path) -> subprocess.Popen:
    with open(log, "ab") as out:
        return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=REPO, start_new_session=True)


def _kill(process: subprocess.Popen | None, sig=signal.SIGKILL) -> None:
    if process is not None and process.poll() is None:
        os.killpg(process.pid, sig)
        process.wait(10)


def _listening(port: int) -> bool:
    """Whether a socket listens on ``port``, read from the kernel's tables: connecting to find out would be a
    session the RTSP server has to deal with (an empty one on its publishing port leaves it without a stream)."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        if any(row.split()[1].endswith(f":{port:04X}") and row.split()[3] == "0A" for row in rows):
            return True
    return False


def _wait_for_port(port: int, timeout_s: float, process, log: Path) -> None:
    deadline = time.monotonic() + timeout_s
    while not _listening(port):
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"nothing listens on port {port} after {timeout_s:g} s (the server "
                               f"{'exited' if process.poll() is not None else 'is still starting'}): "
                               f"{log.read_text()[-2000:] if log.exists() else ''}")
        time.sleep(0.05)


class RtspCamera:
    """One RTSP server with one stream, at ``url``; `down()` kills server and feed, `up()` brings them back."""

    def __init__(self, binary: str, clip: Path, folder: Path, name: str):
        self.binary, self.clip, self.name = binary, clip, name
        self.folder = folder
        self.client_port, self.source_port = free_port(), free_port()
        self.rtp_port = _free_udp_pair()  # each server its own: they all start at 20000 otherwise
        self.url = f"rtsp://127.0.0.1:{self.client_port}/{name}"
        self.server = self.feed = None

    def up(self) -> RtspCamera:
        self.server = _start([self.binary, "--clientport", str(self.client_port), "--serverport",
                              str(self.source_port), "--rtp_start_port", str(self.rtp_port), "--loglevel", "1"],
                             self.folder / f"{self.name}-server.log")
        # the feed only once both ports answer: a publisher that finds nobody listening dies ("Connection refused")
        # and nothing restarts it (the server took over 0.7 s to listen on a loaded machine)
        for port in (self.source_port, self.client_port):
            _wait_for_port(port, 20, self.server, self.folder / f"{self.name}-server.log")
        self.feed = _start([sys.executable, "-m", "testbed.publisher", str(self.clip),
                            f"rtsp://127.0.0.1:{self.source_port}/{self.name}"], self.folder / f"{self.name}-feed.log")
        return self

    def down(self) -> None:
        _kill(self.feed)
        _kill(self.server)


class HlsCamera:
    """A live HLS playlist at ``url``, served over HTTP from a folder the feed writes."""

    def __init__(self, clip: Path, folder: Path, name: str):
        self.clip, self.name = clip, name
        self.folder = folder / name
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/live.m3u8"
        self.http = self.feed = None

    def up(self) -> HlsCamera:
        self.feed = _start([sys.executable, "-m", "testbed.publisher", str(self.clip), str(self.folder)],
                           self.folder.parent / f"{self.name}-feed.log")
        self.http = _start([sys.executable, "-m", "http.server", str(self.port), "--bind", "127.0.0.1",
                            "--directory", str(self.folder)], self.folder.parent / f"{self.name}-http.log")
        deadline = time.monotonic() + 20
        while not (self.folder / "live.m3u8").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        return self

    def down(self) -> None:
        _kill(self.feed)
        _kill(self.http)
