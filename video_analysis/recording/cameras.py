"""The cameras file: which streams `reelgraph record` pulls, and how long its segments are.

```yaml
cameras:
  lobby:
    url: rtsp://viewer:${LOBBY_PASSWORD}@10.0.0.7:554/stream1   # RTSP (TCP), HLS (http...m3u8) or a file
    segment_seconds: 600                                        # optional
```

Credentials stay in the environment: ``${NAME}`` in a URL is replaced by that variable when the file is read,
and only the redacted URL is ever logged or stored.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit

import yaml

from video_analysis.runtime.redact import redact

CAMERAS_ENV = "REELGRAPH_CAMERAS"
DEFAULT_SEGMENT_SECONDS = 600
# A stream that delivers no packet for this long is stalled: the recorder closes it and reconnects.
DEFAULT_STALL_SECONDS = 10.0
# HLS arrives a playlist segment at a time: FFmpeg waits up to a segment's length between reads.
DEFAULT_HLS_STALL_SECONDS = 30.0

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
# Secrets some recorders take in the URL's path (``/user=admin&password=...&channel=1``), and path segments that
# are tokens (an HLS link signed in its path): long runs of letters and digits, both present, with no dot.
_PATH_SECRET = re.compile(r"(?P<key>(?:password|passwd|pwd|pass|token|auth|key|signature|sig)=)(?P<secret>[^&;/]*)",
                          re.I)
_PATH_TOKEN = re.compile(r"^(?=[A-Za-z0-9_-]*\d)(?=[A-Za-z0-9_-]*[A-Za-z])[A-Za-z0-9_-]{20,}$")


def _masked_path(path: str) -> str:
    segments = [_PATH_SECRET.sub(r"\g<key>***", segment) for segment in path.split("/")]
    return "/".join("***" if _PATH_TOKEN.match(segment) else segment for segment in segments)
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class CamerasFileError(ValueError):
    """The cameras file cannot be used as written; the message says where and why."""


@dataclass(frozen=True)
class Camera:
    name: str
    url: str  # credentials filled in: never log it, log `shown_url`
    segment_seconds: int = DEFAULT_SEGMENT_SECONDS
    stall_seconds: float = DEFAULT_STALL_SECONDS

    @property
    def kind(self) -> str:
        """``rtsp``, ``hls`` or ``file`` (a local video looped in real time: a demo camera)."""
        lowered = self.url.lower()
        if lowered.startswith(("rtsp://", "rtsps://")):
            return "rtsp"
        if lowered.startswith(("http://", "https://")):
            return "hls"
        return "file"

    @property
    def shown_url(self) -> str:
        """The URL with its password, its query (tokens) and secrets in its path masked: what logs and the
        database hold."""
        parts = urlsplit(self.url)
        if not parts.scheme or not parts.netloc:
            return redact(self.url)
        try:
            parts.port  # noqa: B018 - a port that does not parse raises here
        except ValueError:
            return f"{parts.scheme}://***"  # unparseable: show nothing that may be part of a secret
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        user = f"{parts.username}:***@" if parts.password is not None else (f"{parts.username}@" if parts.username
                                                                           else "")
        port = f":{parts.port}" if parts.port else ""
        query = "?***" if parts.query else ""
        return f"{parts.scheme}://{user}{host}{port}{_masked_path(parts.path)}{query}"

    def __repr__(self) -> str:  # never the password, whatever prints the object
        return f"Camera(name={self.name!r}, url={self.shown_url!r}, segment_seconds={self.segment_seconds})"


def cameras_path(home_root: Path, configured: str | None) -> Path:
    """``configured`` ($REELGRAPH_CAMERAS), else ``cameras.yaml`` in the state folder."""
    return Path(configured).expanduser() if configured else home_root / "cameras.yaml"


def _expand(url: str, where: str, environ) -> str:
    """``${NAME}`` replaced by the variable; inside the user:password part, percent-encoded (a password may hold
    '@', ':' or '/')."""
    missing = [name for name in _VARIABLE.findall(url) if name not in environ]
    if missing:
        raise CamerasFileError(f"{where}: the URL uses ${{{missing[0]}}}, which is not set in the environment")
    scheme_end = url.find("://")
    authority_end = len(url) if scheme_end < 0 else next(
        (i for i in range(scheme_end + 3, len(url)) if url[i] in "/?#"), len(url))
    userinfo_end = url.rfind("@", 0, authority_end)

    def value(match: re.Match) -> str:
        text = environ[match.group(1)]
        in_userinfo = scheme_end >= 0 and scheme_end + 3 <= match.start() < userinfo_end
        return quote(text, safe="!$&'()*+,;=") if in_userinfo else text  # RFC 3986 userinfo, less ":"

    return _VARIABLE.sub(value, url)


def _check_url(url: str, where: str) -> None:
    """A network camera's URL that parses as the author meant: a '#' or a second '@' written literally in a
    password cuts the URL short (the rest reads as a fragment, or a port that is not a number). Said without
    the URL, which would show part of the password."""
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return  # a file
    try:
        parts.port  # noqa: B018 - a port that does not parse raises here
    except ValueError:
        bad = True
    else:
        bad = bool(parts.fragment) or "@" in (parts.hostname or "")
    if bad:
        raise CamerasFileError(f"{where}: its URL does not parse: write '#', '@', ':' and '/' in a user name or "
                               "password as %23, %40, %3A and %2F, or give the password through ${VARIABLE}")


def load_cameras(path: Path, environ: Mapping[str, str]) -> list[Camera]:
    """The cameras in ``path``, checked: names usable in object keys, a URL each, sane segment lengths;
    ``${NAME}`` in a URL is taken from ``environ`` (the process's environment, which the caller passes)."""
    try:
        document = yaml.safe_load(Path(path).read_text()) or {}
    except FileNotFoundError as exc:
        raise CamerasFileError(f"no cameras file at {path} (write one, or point ${CAMERAS_ENV} at it)") from exc
    except yaml.YAMLError as exc:
        raise CamerasFileError(f"{path} is not valid YAML: {exc}") from exc
    entries = document.get("cameras") if isinstance(document, dict) else None
    if not isinstance(entries, dict) or not entries:
        raise CamerasFileError(f"{path}: expected a `cameras:` mapping of camera names to their settings")
    cameras = []
    for name, entry in entries.items():
        where = f"{path}: camera {name!r}"
        if not isinstance(name, str) or not _NAME.match(name):
            raise CamerasFileError(f"{where}: a name is letters, digits, '.', '_' or '-' (it becomes part of keys)")
        if isinstance(entry, str):
            entry = {"url": entry}
        if not isinstance(entry, dict) or not isinstance(entry.get("url"), str) or not entry["url"].strip():
            raise CamerasFileError(f"{where}: needs a `url`")
        unknown = set(entry) - {"url", "segment_seconds", "stall_seconds"}
        if unknown:
            raise CamerasFileError(f"{where}: unknown setting(s) {', '.join(sorted(unknown))}")
        hls = entry["url"].strip().lower().startswith(("http://", "https://"))
        try:
            segment = int(entry.get("segment_seconds", DEFAULT_SEGMENT_SECONDS))
            stall = float(entry.get("stall_seconds", DEFAULT_HLS_STALL_SECONDS if hls else DEFAULT_STALL_SECONDS))
        except (TypeError, ValueError) as exc:
            raise CamerasFileError(f"{where}: segment_seconds and stall_seconds are numbers") from exc
        if not 10 <= segment <= 24 * 3600:
            raise CamerasFileError(f"{where}: segment_seconds must be between 10 and 86400, not {segment}")
        if not 1 <= stall <= 600:
            raise CamerasFileError(f"{where}: stall_seconds must be between 1 and 600, not {stall}")
        url = _expand(entry["url"].strip(), where, environ)
        _check_url(url, where)
        cameras.append(Camera(name=name, url=url, segment_seconds=segment, stall_seconds=stall))
    return cameras
