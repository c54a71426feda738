"""Real HTTP servers the tests stand up on loopback: webhooks, Dagster's GraphQL, ECS metadata, a weights host,
and proxies in front of moto's S3 that slow or refuse requests. Each serves on a free port from a daemon
thread until it is closed (or its ``with`` block ends)."""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit


class LocalServer:
    """``handler`` (a request handler class, or a factory of one) served on 127.0.0.1 at a free port."""

    def __init__(self, handler):
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class QuietHandler(BaseHTTPRequestHandler):
    """A handler that logs nothing and answers in one call."""

    def log_message(self, *args):
        pass

    def read_json(self) -> dict:
        return json.loads(self.rfile.read(int(self.headers["Content-Length"])))

    def reply(self, status: int, body: bytes = b"", content_type: str = "application/json") -> None:
        self.send_response(status)
        if body:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def json_server(answer: Callable[[dict], dict | None], method: str = "POST") -> LocalServer:
    """A server whose every ``method`` request gets 200 with ``answer(request JSON)`` as JSON (204 for None)."""

    class Handler(QuietHandler):
        def _answer(self):
            found = answer(self.read_json() if self.headers.get("Content-Length") else {})
            self.reply(204) if found is None else self.reply(200, json.dumps(found).encode())

    setattr(Handler, f"do_{method}", Handler._answer)
    return LocalServer(Handler)


def graphql_server(answer: Callable[[dict], dict]) -> LocalServer:
    """Dagster's webserver as its GraphQL clients see it: ``{"data": answer(request)}`` to every POST."""
    return json_server(lambda request: {"data": answer(request)})


def webhook_sink() -> tuple[list[dict], LocalServer]:
    """A Slack-style webhook: (the JSON bodies it received, the server)."""
    received: list[dict] = []

    def keep(body: dict) -> None:
        received.append(body)

    return received, json_server(keep)


class S3Proxy(LocalServer):
    """A proxy in front of moto's S3 that forwards every request, after ``intercept(handler, body)`` has had its
    say: it may answer itself (returning True), hold the request, or count it."""

    def __init__(self, upstream: str):
        target, proxy = urlsplit(upstream), self

        class Handler(QuietHandler):
            def _forward(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if proxy.intercept(self, body):
                    return
                conn = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
                conn.request(self.command, self.path, body=body or None, headers=dict(self.headers))
                response = conn.getresponse()
                proxy.forwarded(self)
                data = response.read()
                self.send_response(response.status)
                for name, value in response.getheaders():
                    if name.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
                conn.close()

            do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _forward

        super().__init__(Handler)

    def intercept(self, handler: QuietHandler, body: bytes) -> bool:
        return False

    def forwarded(self, handler: QuietHandler) -> None:
        """Called once the upstream answered a forwarded request."""
