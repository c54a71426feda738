"""Secrets out of anything shown: passwords in connection URLs, tokens in webhook URLs."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

_URL_CREDENTIALS = re.compile(r"(?P<scheme>\b[a-z][a-z0-9+.-]*://)(?P<user>[^:/@\s]*):(?P<secret>[^@/\s]+)@", re.I)
_PASSWORD_PARAM = re.compile(r"(?P<key>\bpassword\s*=\s*)(?P<secret>'[^']*'|\S+)", re.I)


def redact(text: str) -> str:
    """The text with passwords in URLs (``scheme://user:***@host``) and ``password=...`` masked."""
    text = _URL_CREDENTIALS.sub(r"\g<scheme>\g<user>:***@", text)
    return _PASSWORD_PARAM.sub(r"\g<key>***", text)


def redact_url(url: str) -> str:
    """Where a URL points, without what authorises it (Slack-style webhooks carry their token in the path)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}/***" if parts.path not in ("", "/") or parts.query else \
        f"{parts.scheme}://{host}{port}/"
