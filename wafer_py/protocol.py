"""The Wafer wire protocol, free of I/O: headers in, decisions and response bodies out.

Both client generations are served by one set of answers (see ``wafer-protocol.md``):

* a login answer that carries the v1 ``session`` and the v2 ``data`` side by side;
* an invalid-session answer with the v1 magic key, ``ERR_INVALID_SESSION``, the v2
  ``code: -1`` and HTTP 401, so that both clients log in again and retry;
* a failed login with ``ERR_LOGIN_FAILED`` and ``code: -1``, as the original servers;
* other errors with the magic key, another ``error`` type, a ``reason``, and a ``code``
  equal to the HTTP status, never ``-1`` (which would send a v2 client into a pointless
  re-login). The status and type of each error are in :mod:`wafer_py.answers`.

:class:`WaferProtocol` runs one request through a :class:`~wafer_py.auth.WaferAuth` and
decides how an async server runs it; the WSGI and ASGI middlewares are thin shells around
it. It reads the headers with :mod:`wafer_py.headers`, matches protected paths with
:mod:`wafer_py.paths` and answers with :mod:`wafer_py.outcomes`; the names of all three
are importable from here too.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from .auth import WaferAuth
from .exceptions import InvalidSession, WaferError
from .headers import (
    HEADER_CODE,
    HEADER_ENCRYPTED_DATA,
    HEADER_ID,
    HEADER_IV,
    HEADER_LEGACY_ENCRYPTED_DATA,
    HEADER_SKEY,
    WAFER_HEADERS,
    client_generation,
    has_encrypted_data,
    read_credentials,
    read_encrypted,
    read_login,
)
from .outcomes import ANONYMOUS, MAGIC_ID, RequestState, WaferResponse, error_response, login_body
from .paths import PathMatcher, path_forms, path_matcher
from .plans import Plan, arun, on_asyncio, run

__all__ = [
    "MAGIC_ID",
    "HEADER_CODE",
    "HEADER_ENCRYPTED_DATA",
    "HEADER_LEGACY_ENCRYPTED_DATA",
    "HEADER_IV",
    "HEADER_ID",
    "HEADER_SKEY",
    "WAFER_HEADERS",
    "WaferResponse",
    "RequestState",
    "ANONYMOUS",
    "WaferProtocol",
    "Route",
    "login_body",
    "error_response",
    "read_credentials",
    "read_encrypted",
    "PathMatcher",
    "path_forms",
    "path_matcher",
]

logger = logging.getLogger("wafer_py")

#: How the ASGI side runs a request (:meth:`WaferProtocol.route`).
Route = Literal["inline", "loop", "thread"]


def _loggable(path: str) -> str:
    """A request path for a log line: a path never holds a secret of wafer_py (those
    travel in headers), but it is the client's text: cut short, control characters
    escaped."""
    path = path[:200]
    return path if path.isprintable() else path.encode("unicode_escape").decode("ascii")


@dataclass
class WaferProtocol:
    """Runs one request through the Wafer protocol.

    :meth:`handle` answers the login path itself and returns a :class:`WaferResponse`;
    for any other request it validates the session headers, runs the seed flow (a
    validated request that also carries encrypted data updates the stored profile) and
    returns a :class:`RequestState` for the app, or a response for a request that must
    not reach the app (a failed seed flow, a ``protect``-ed path without login).
    """

    auth: WaferAuth
    protect: PathMatcher = field(default_factory=lambda: path_matcher(None))
    #: The auth's login path (its config is frozen), read on every request.
    login_path: str = field(init=False)

    def __post_init__(self) -> None:
        self.login_path = self.auth.config.login_path

    def route(self, path: str | None, headers: Mapping[str, str]) -> Route:
        """How an async server runs this request (``path=None``: not a login).

        ``"inline"``: nothing to wait on (no session to check, or a store that never
        blocks): call :meth:`check`. ``"loop"``: await :meth:`ahandle` (or, for the login
        path, :meth:`alogin`) on the asyncio loop: logins, and sessions in a store with an
        async driver. ``"thread"``: call :meth:`check` (or :meth:`login`) in a worker
        thread (a blocking store; under trio, everything that waits: the async drivers and
        the async login gate are asyncio's).
        """
        login = path == self.login_path
        if not login and HEADER_SKEY not in headers:
            return "inline"
        store = self.auth.store
        if (login or store.supports_async) and on_asyncio():
            return "loop"
        if not login and not store.blocking:
            return "inline"
        return "thread"

    def handle(
        self,
        path: str,
        headers: Mapping[str, str],
        *,
        connected: Callable[[], bool] | None = None,
    ) -> WaferResponse | RequestState:
        """``connected`` says whether the client is still there (a login whose client
        hung up does not call WeChat)."""
        if path == self.login_path:
            return self.login(headers, connected)
        return self.check(path, headers)

    def check(self, path: str, headers: Mapping[str, str]) -> WaferResponse | RequestState:
        """:meth:`handle` for a request that is not a login (blocking)."""
        if HEADER_SKEY not in headers and HEADER_ID not in headers:  # nothing to check
            return ANONYMOUS.challenge() if self.protect(path) else ANONYMOUS
        return run(self.request(path, headers))

    async def ahandle(self, path: str, headers: Mapping[str, str]) -> WaferResponse | RequestState:
        """:meth:`handle` for async callers, other than the login path (:meth:`alogin`)."""
        return await arun(self.request(path, headers))

    def request(self, path: str, headers: Mapping[str, str]) -> Plan[WaferResponse | RequestState]:
        """A request other than a login, as a plan (:mod:`wafer_py.plans`): check the
        session, run the seed flow, refuse a ``protect``-ed path without login. The
        check's outcome goes to the auth's observer (``validation``)."""
        observer = self.auth.observer
        try:
            try:
                credentials = read_credentials(headers)
                identity = None
                if credentials is not None:
                    identity = yield from self.auth.validation(credentials)
                    observer.validation("valid", "none")
            except InvalidSession as exc:
                observer.validation("invalid", exc.reason)
                logger.debug("wafer_py: session refused on %s: %s", _loggable(path), exc.reason)
                state = RequestState(error=exc, generation=client_generation(headers))
            except WaferError as exc:
                observer.validation("error", exc.reason)
                raise
            else:
                if identity is not None and has_encrypted_data(headers):  # the seed flow
                    data, iv, legacy = read_encrypted(headers)
                    if data is not None and iv is not None and not legacy:
                        identity = yield from self.auth.profile_update(identity, data, iv)
                state = (
                    ANONYMOUS
                    if identity is None
                    else RequestState(identity, None, identity.generation)
                )
        except WaferError as exc:
            return error_response(exc)
        if state.identity is None and self.protect(path):
            return state.challenge()
        return state

    def login(
        self, headers: Mapping[str, str], connected: Callable[[], bool] | None = None
    ) -> WaferResponse:
        """The login path's answer (blocking; :meth:`alogin` under asyncio)."""
        started = time.perf_counter()
        try:
            code, data, iv, legacy = read_login(headers)
            result = self.auth.login(code, data, iv, legacy=legacy, connected=connected)
        except WaferError as exc:
            return self._login_failed(exc, started)
        self.auth.observer.login("ok", "none", time.perf_counter() - started)
        return WaferResponse(200, login_body(result, self.auth.clock()))

    async def alogin(
        self, headers: Mapping[str, str], gone: asyncio.Future[None] | None = None
    ) -> WaferResponse:
        """The login path's answer, under asyncio: WeChat is awaited on the event loop
        (:meth:`WaferAuth.alogin <wafer_py.auth.WaferAuth.alogin>`). ``gone`` is done
        when the client hangs up."""
        started = time.perf_counter()
        try:
            code, data, iv, legacy = read_login(headers)
            result = await self.auth.alogin(code, data, iv, legacy=legacy, gone=gone)
        except WaferError as exc:
            return self._login_failed(exc, started)
        self.auth.observer.login("ok", "none", time.perf_counter() - started)
        return WaferResponse(200, login_body(result, self.auth.clock()))

    def _login_failed(self, exc: WaferError, started: float) -> WaferResponse:
        """The answer to a login that failed, logged (its reason and path, nothing the
        client sent) and reported to the observer: ``refused`` (4xx) or ``failed`` (5xx)."""
        answer = error_response(exc, login=True)
        if answer.status >= 500:
            outcome, level = "failed", logging.WARNING
        else:
            outcome, level = "refused", logging.INFO
        logger.log(level, "wafer_py: login %s on %s: %s", outcome, self.login_path, exc.reason)
        self.auth.observer.login(outcome, exc.reason, time.perf_counter() - started)
        return answer
