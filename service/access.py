"""Who may use the review service, and with which Host header.

Footage, thumbnails and presigned S3 URLs are as sensitive as the cameras themselves, so:

- A service bound to loopback only is open, as a desktop tool is, but answers only to loopback host names:
  a page on another site that rebinds its DNS name to 127.0.0.1 gets 400, not the footage.
- A service bound to any other address refuses to start without access tokens. With tokens, the API
  takes ``Authorization: Bearer <token>``; the page signs in once and gets an HttpOnly, SameSite=Strict
  cookie, so other sites cannot ride on it.
- ``/api/health`` answers anyone with its status only (for load balancers and probes); its details (the
  catalogue, the database) need a token like everything else.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl

log = logging.getLogger(__name__)

SESSION_COOKIE = "reelgraph_session"
SESSION_SECONDS = 7 * 24 * 3600
MIN_TOKEN_CHARS = 16
PLACEHOLDER_PREFIXES = ("change-me", "changeme", "replace-me")  # as example files write them
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")
# Reachable without a token: the page and its scripts (they show the sign-in), sign-in itself, and health.
OPEN_PATHS = ("/", "/cameras", "/favicon.ico", "/api/session", "/api/health")
OPEN_PREFIXES = ("/static/",)


class AccessError(ValueError):
    """The service cannot start safely with this configuration."""


def read_tokens(tokens: str | None, tokens_file: str | None) -> frozenset[str]:
    """Tokens from the setting (comma or space separated) and from a file (one a line, ``#`` comments)."""
    found = [t for t in (tokens or "").replace(",", " ").split()]
    if tokens_file:
        path = Path(tokens_file).expanduser()
        try:
            lines = path.read_text().splitlines()
        except OSError as exc:
            raise AccessError(f"REELGRAPH_SERVICE_TOKENS_FILE {path}: {exc.strerror or exc}") from exc
        found += [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    if any(t.lower().startswith(PLACEHOLDER_PREFIXES) for t in found):
        raise AccessError("a service token is still the example's placeholder; replace it with a random one: "
                          "python -c 'import secrets; print(secrets.token_urlsafe(32))'")
    short = [t for t in found if len(t) < MIN_TOKEN_CHARS]
    if short:
        raise AccessError(f"a service token must be at least {MIN_TOKEN_CHARS} characters ({len(short)} shorter); "
                          "make one with: python -c 'import secrets; print(secrets.token_urlsafe(32))'")
    return frozenset(found)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def _primary_addresses() -> list[str]:
    """The addresses this machine reaches other hosts from (IPv4, IPv6): a UDP socket "connected" to a
    documentation address sends nothing, and says which local address the route takes."""
    found = []
    for family, target in ((socket.AF_INET, "192.0.2.1"), (socket.AF_INET6, "2001:db8::1")):
        try:
            with socket.socket(family, socket.SOCK_DGRAM) as probe:
                probe.connect((target, 9))
                found.append(_bracketed(probe.getsockname()[0].split("%")[0]))
        except OSError:
            pass
    return found


def configured_names(extra: str | None) -> list[str]:
    return [n.strip().lower() for n in (extra or "").replace(",", " ").split() if n.strip()]


def host_names(bind: str, extra: str | None) -> list[str]:
    """The Host header values the service answers to: loopback names and the bound address always; for a
    bind to every address, this machine's names and the addresses its routes leave from; and the configured
    names (REELGRAPH_SERVICE_HOSTS), e.g. a reverse proxy's, or a second interface's address."""
    names = list(LOOPBACK_NAMES)
    wildcard = bind in ("0.0.0.0", "::", "")
    if not wildcard:
        names.append(_bracketed(bind))
    else:
        machine = {socket.gethostname(), socket.getfqdn()}
        names += sorted(machine) + _primary_addresses()
        for name in machine:
            try:
                names += sorted({_bracketed(info[4][0].split("%")[0]) for info in socket.getaddrinfo(name, None)})
            except OSError:
                pass
    names += configured_names(extra)
    return list(dict.fromkeys(n.lower() for n in names))


def session_value(token: str, issued: int | None = None) -> str:
    """What the sign-in cookie holds: when it was issued, and a digest keyed by the token over that time. So
    the cookie is never the token, it expires on the server after SESSION_SECONDS whatever the browser does,
    and removing a token from the configuration ends its sessions."""
    issued = int(time.time()) if issued is None else issued
    return f"{issued}.{hmac.new(token.encode(), f'reelgraph session {issued}'.encode(), hashlib.sha256).hexdigest()}"


@dataclass(frozen=True)
class AccessPolicy:
    tokens: frozenset[str]
    hosts: tuple[str, ...]

    @classmethod
    def for_bind(cls, bind: str, tokens: frozenset[str], extra_hosts: str | None = None) -> AccessPolicy:
        if not tokens and not is_loopback(bind):
            raise AccessError(
                f"reelgraph serve on {bind} would show the footage to anyone who can reach it: set "
                "REELGRAPH_SERVICE_TOKENS (or REELGRAPH_SERVICE_TOKENS_FILE), or bind to 127.0.0.1 and put a "
                "reverse proxy with sign-on in front (README, Review service)")
        public = [n for n in configured_names(extra_hosts) if not is_loopback(n.strip("[]"))]
        if not tokens and public:  # a proxy forwards those names to loopback: without a token, so would anyone
            raise AccessError(
                f"reelgraph serve answers to {', '.join(public)} (REELGRAPH_SERVICE_HOSTS), which a reverse proxy "
                "forwards from elsewhere: set REELGRAPH_SERVICE_TOKENS and have the proxy send one")
        return cls(tokens, tuple(host_names(bind, extra_hosts)))

    @property
    def open(self) -> bool:
        return not self.tokens

    def token_matches(self, presented: str) -> bool:
        return any(hmac.compare_digest(presented.encode(), token.encode()) for token in self.tokens)

    def session_matches(self, presented: str, now: float | None = None) -> bool:
        issued, _, _digest = presented.partition(".")
        # ASCII digits only, and no more than a time has: "²" is a digit to str.isdigit, and a number of
        # thousands of digits makes int() refuse it; either would answer 500 before the sign-in is judged
        if not (issued.isascii() and issued.isdigit()) or len(issued) > 12:
            return False
        age = (time.time() if now is None else now) - int(issued)
        if not -60 <= age <= SESSION_SECONDS:  # expired, or issued in the future
            return False
        return any(hmac.compare_digest(presented.encode(), session_value(token, int(issued)).encode())
                   for token in self.tokens)


def _header(scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin-1")
    return None


def _cookie(scope, name: str) -> str | None:
    for part in (_header(scope, b"cookie") or "").split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return None


def signed_in(policy: AccessPolicy, scope) -> bool:
    """A request carrying a valid token (Bearer) or sign-in cookie; every request when the service is open."""
    if policy.open:
        return True
    authorization = _header(scope, b"authorization") or ""
    scheme, _, credential = authorization.partition(" ")
    if scheme.lower() == "bearer" and credential.strip() and policy.token_matches(credential.strip()):
        return True
    cookie = _cookie(scope, SESSION_COOKIE)
    return bool(cookie) and policy.session_matches(cookie)


def _control_character(text: str) -> bool:
    return any(ord(c) < 32 or ord(c) == 127 for c in text)


async def _answer(send, status: int, detail: str, headers: list[tuple[bytes, bytes]] = ()) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *headers]})
    await send({"type": "http.response.body", "body": body})


class AccessMiddleware:
    """Requests with a control character anywhere in their path or parameters get 422 naming it (a NUL
    cannot reach PostgreSQL); requests that are not signed in get 401, except to the open paths."""

    def __init__(self, app, policy: AccessPolicy):
        self.app, self.policy = app, policy

    async def __call__(self, scope, receive, send):
        if scope["type"] == "lifespan":
            await self.app(scope, receive, send)
            return
        if scope["type"] != "http":  # the service has no websocket: refuse one outright, signed in or not
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})
            return
        if _control_character(scope.get("path", "")):
            await _answer(send, 422, "path: contains a control character")
            return
        for name, value in parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True):
            if _control_character(name) or _control_character(value):
                await _answer(send, 422, f"{name if not _control_character(name) else 'parameter name'}: "
                                         "contains a control character")
                return
        authorised = signed_in(self.policy, scope)
        scope.setdefault("state", {})["signed_in"] = authorised
        path = scope.get("path", "")
        if authorised or path in OPEN_PATHS or path.startswith(OPEN_PREFIXES):
            await self.app(scope, receive, send)
            return
        await _answer(send, 401, "sign in: this service needs a token (Authorization: Bearer, or the page's sign-in)",
                      [(b"www-authenticate", b'Bearer realm="reelgraph"')])
