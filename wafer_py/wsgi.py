"""WSGI middleware: the Wafer protocol in front of any WSGI app (Flask, Django, ...).

It answers the login path itself, validates session headers on every other request and
puts a :class:`~wafer_py.protocol.RequestState` in ``environ["wafer.state"]``. A 401 or 403
from the app for a request without a valid session becomes the protocol's
invalid-session answer, so the client SDK logs in again and retries.
"""

from __future__ import annotations

import itertools
import select
import socket
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from .auth import WaferAuth
from .config import WaferConfig
from .protocol import (
    ANONYMOUS,
    WAFER_HEADERS,
    PathMatcher,
    RequestState,
    WaferProtocol,
    WaferResponse,
    path_matcher,
)

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

__all__ = ["WaferWSGIMiddleware", "ENVIRON_KEY", "get_state"]

#: Where the middleware leaves the :class:`RequestState` in the WSGI environ.
ENVIRON_KEY = "wafer.state"

_WSGI_NAMES = {"HTTP_" + name.upper().replace("-", "_"): name for name in WAFER_HEADERS}


def get_state(environ: WSGIEnvironment) -> RequestState:
    """The request's :class:`RequestState` (anonymous outside the middleware)."""
    state = environ.get(ENVIRON_KEY)
    return state if isinstance(state, RequestState) else ANONYMOUS


def wafer_headers(environ: WSGIEnvironment) -> dict[str, str]:
    """The Wafer headers of a WSGI request, under their lower-case names."""
    headers: dict[str, str] = {}
    for key, name in _WSGI_NAMES.items():
        value = environ.get(key)
        if value is not None:
            # PEP 3333 decodes header bytes as latin-1; undo it to see the real text.
            headers[name] = value.encode("latin-1", "replace").decode("utf-8", "replace")
    return headers


def client_check(environ: WSGIEnvironment) -> Callable[[], bool] | None:
    """A cheap check that the client is still connected, where the server hands out its
    socket (gunicorn's ``gunicorn.socket``, Werkzeug's ``werkzeug.socket``); else ``None``.

    It polls without waiting and peeks at what is readable: an end of stream means the
    client closed (or half-closed) its side. Under TLS it peeks at the raw TCP stream, where
    a client's ``close_notify`` reads as data: it then errs on the side of calling WeChat.
    """
    sock = environ.get("gunicorn.socket") or environ.get("werkzeug.socket")
    if not isinstance(sock, socket.socket) or not hasattr(select, "poll"):
        return None

    def connected() -> bool:
        try:
            poller = select.poll()
            poller.register(sock, select.POLLIN)
            if not poller.poll(0):
                return True  # nothing to read: still there, waiting for the answer
            # socket.socket's recv even on an SSLSocket, whose own refuses flags.
            return bool(socket.socket.recv(sock, 1, socket.MSG_PEEK))
        except (OSError, ValueError):
            return False  # reset, or the socket is closed

    return connected


def send_response(response: WaferResponse, start_response: StartResponse) -> Iterable[bytes]:
    status = f"{response.status} {_REASONS.get(response.status, 'Error')}"
    start_response(status, response.headers)
    return [response.content]


_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    413: "Content Too Large",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    431: "Request Header Fields Too Large",
    499: "Client Closed Request",
    502: "Bad Gateway",
    503: "Service Unavailable",
}


class WaferWSGIMiddleware:
    """Wrap a WSGI app: ``app.wsgi_app = WaferWSGIMiddleware(app.wsgi_app, auth)``.

    ``auth`` is a :class:`~wafer_py.auth.WaferAuth` (or give a ``config`` to build one
    from; with neither, the ``WAFER_*`` environment variables configure it).
    ``protect`` lists path prefixes (or a predicate) that need a valid session; the app
    can also refuse with 401/403 itself (``challenge_statuses``).
    """

    def __init__(
        self,
        app: WSGIApplication,
        auth: WaferAuth | None = None,
        *,
        config: WaferConfig | None = None,
        protect: Iterable[str] | PathMatcher | None = None,
        challenge_statuses: Iterable[int] = (401, 403),
    ) -> None:
        self.app = app
        self.auth = auth or WaferAuth(config or WaferConfig.from_env())
        self.protocol = WaferProtocol(self.auth, path_matcher(protect))
        self.challenge_statuses = frozenset(challenge_statuses)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "") or "/"
        connected = client_check(environ) if path == self.protocol.login_path else None
        outcome = self.protocol.handle(path, wafer_headers(environ), connected=connected)
        if isinstance(outcome, WaferResponse):
            return send_response(outcome, start_response)
        environ[ENVIRON_KEY] = outcome
        if outcome.is_authenticated or not self.challenge_statuses:
            return self.app(environ, start_response)
        return self._call_with_challenge(environ, start_response, outcome)

    def _call_with_challenge(
        self, environ: WSGIEnvironment, start_response: StartResponse, state: RequestState
    ) -> Iterable[bytes]:
        challenged = started = False

        def capture(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Callable[[bytes], object]:
            nonlocal challenged, started
            started = True
            if int(status.split(" ", 1)[0]) in self.challenge_statuses:
                challenged = True
                return lambda data: None
            return start_response(status, headers, exc_info)

        result = self.app(environ, capture)
        if not started:
            # A lazy app calls start_response on its first chunk: pull it to know.
            iterator = iter(result)
            first = list(itertools.islice(iterator, 1))
            if not challenged:
                return _Chained(first, iterator, result)
        if not challenged:
            return result
        close = getattr(result, "close", None)
        if close is not None:
            close()
        return send_response(state.challenge(), start_response)


class _Chained:
    """The rest of a lazy app's body after its first chunk, keeping its ``close``."""

    def __init__(self, first: list[bytes], rest: Iterator[bytes], source: Iterable[bytes]):
        self._chunks = itertools.chain(first, rest)
        self._source = source

    def __iter__(self) -> Iterator[bytes]:
        return self._chunks

    def close(self) -> None:
        close = getattr(self._source, "close", None)
        if close is not None:
            close()
