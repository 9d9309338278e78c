"""HTTP plumbing of the fake WeChat: Request/Response, a router, and a threaded server.

Standard library only (:class:`http.server.ThreadingHTTPServer`). Handlers are plain
functions ``Request -> Response``; the server knows nothing of WeChat.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
import socket
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from ..logsafe import redact

__all__ = ["FakeWeChatServer", "Handler", "Request", "Response", "Router", "serve"]

logger = logging.getLogger("wafer_py.fakewechat")

_MAX_BODY = 1 << 20


@dataclass(frozen=True)
class Request:
    """One HTTP request: method, path, query (first value of each name), headers, body."""

    method: str
    path: str
    query: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""

    def json(self) -> Any:
        """The body parsed as JSON (an empty body is ``{}``). Raises ``ValueError``."""
        if not self.body.strip():
            return {}
        return json.loads(self.body.decode("utf-8"))


@dataclass(frozen=True)
class Response:
    """One HTTP response. ``content_type=None`` lets the app pick its default."""

    status: int = 200
    body: bytes = b""
    content_type: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def json(
        cls,
        data: Any,
        status: int = 200,
        content_type: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        """A compact UTF-8 JSON response, as WeChat sends them."""
        body = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        return cls(status, body, content_type, dict(headers or {}))


Handler = Callable[[Request], Response]


class Router:
    """Exact ``(method, path) -> handler`` routes."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], Handler] = {}

    def add(self, method: str, path: str, handler: Handler) -> None:
        """Route ``method path`` to ``handler`` (replacing any earlier route)."""
        self.routes[(method.upper(), path)] = handler

    def match(self, method: str, path: str) -> Handler | None:
        """The handler for ``method path``, or None."""
        return self.routes.get((method.upper(), path))

    def methods(self, path: str) -> list[str]:
        """The methods routed for ``path`` (empty if the path is unknown)."""
        return sorted(m for m, p in self.routes if p == path)


def parse_request(method: str, target: str, headers: Mapping[str, str], body: bytes) -> Request:
    """Build a :class:`Request` from a raw request target such as ``/a/b?x=1``."""
    parts = urlsplit(target)
    query = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
    return Request(method.upper(), parts.path or "/", query, headers, body)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; with Nagle's algorithm and the client's
    # delayed ACK each keep-alive answer would stall for ~40 ms.
    disable_nagle_algorithm = True
    timeout = 60  # seconds an idle keep-alive connection may hold its thread
    server_version = "FakeWeChat/1.0"

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks: list[bytes] = []
            total = 0
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                total += size
                if total > _MAX_BODY:
                    raise ValueError("body too large")
                if size == 0:
                    while self.rfile.readline().strip():  # trailers
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        if length < 0 or length > _MAX_BODY:
            raise ValueError("body too large")
        return self.rfile.read(length) if length else b""

    def _handle(self) -> None:
        try:
            body = self._read_body()
        except ValueError:
            self.close_connection = True
            self._send(Response.json({"error": "bad request body"}, 400, "application/json"))
            return
        headers = {k.lower(): v for k, v in self.headers.items()}
        request = parse_request(self.command, self.path, headers, body)
        try:
            response = self.server.app(request)
        except Exception:
            logger.exception("fake WeChat handler failed for %s %s", request.method, request.path)
            response = Response.json({"error": "internal error"}, 500, "application/json")
        self._send(response)

    def _send(self, response: Response) -> None:
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type or "application/json")
        self.send_header("Content-Length", str(len(response.body)))
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = _handle

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s - %s", self.address_string(), redact(format % args))


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # WeChat takes hundreds of connections at once; the standard library's backlog of 5
    # would drop a burst of logins' connections (and clients retry them a second later).
    request_queue_size = 1024

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hung up before its answer (an abandoned login) is no error of
        the fake's: a debug line, not a traceback on stderr; anything else as before."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            logger.debug("fake WeChat: %s hung up before its answer", client_address)
            return
        super().handle_error(request, client_address)

    def __init__(self, address: tuple[str, int], app: Handler) -> None:
        self.app = app
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)

    # Open connections are tracked so that closing the server also ends idle
    # keep-alive connections, instead of leaving them served by orphan threads.
    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        with self._open_lock:
            sockets = list(self._open)
        for sock in sockets:
            with contextlib.suppress(OSError):  # already closed by the client
                sock.shutdown(socket.SHUT_RDWR)


def check_loopback(host: str) -> None:
    """Refuse a ``host`` that is not a loopback address (``ValueError``).

    The fake mints login codes for anyone who asks its control API, and knows the
    AppSecrets it was given: served to the network, it would let others mint sessions
    in the app that trusts it. It serves 127.0.0.1 (or another loopback address) only.
    """
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ValueError(
            f"the fake WeChat serves on a loopback address only (127.0.0.1 or ::1), "
            f"not {host!r}: it would let anyone who reaches it mint sessions"
        )


class FakeWeChatServer:
    """A running server (background thread). Close it, or use it as a context manager.

    ``url`` is its base URL, e.g. ``http://127.0.0.1:53117``. ``host`` must be a
    loopback address (see :func:`check_loopback`).
    """

    def __init__(self, app: Handler, host: str = "127.0.0.1", port: int = 0) -> None:
        check_loopback(host)
        self._server = _Server((host, port), app)
        self.host = host
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"fakewechat-{self.port}",
            daemon=True,
        )
        self._thread.start()
        self._closed = False

    @property
    def url(self) -> str:
        """The base URL, without a trailing slash."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def close(self) -> None:
        """Stop serving and release the port (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self._server.shutdown()
        self._server.server_close()
        self._server.close_connections()
        self._thread.join(timeout=5)

    def __enter__(self) -> FakeWeChatServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "running"
        return f"FakeWeChatServer(url={self.url!r}, {state})"


def serve(app: Handler, host: str = "127.0.0.1", port: int = 0) -> FakeWeChatServer:
    """Serve ``app`` on ``host:port`` (0 picks a free port) in a background thread."""
    return FakeWeChatServer(app, host, port)
