"""Pure ASGI middleware: the Wafer protocol in front of any ASGI app (Starlette, FastAPI...).

Like Starlette's own ``AuthenticationMiddleware`` it sets ``scope["user"]`` and
``scope["auth"]``, so ``request.user`` and ``@requires("authenticated")`` work; the full
:class:`~wafer_py.protocol.RequestState` is in ``scope["wafer"]``. WebSocket handshakes
are authenticated from the same headers (``wx.connectSocket`` sends them): an invalid
session is closed with 1008 (policy violation) before the app runs. Other scopes pass
straight through.

The event loop never waits on WeChat or on a blocking store: where a request runs is
:meth:`WaferProtocol.route <wafer_py.protocol.WaferProtocol.route>`'s one decision, and
blocking calls go through :func:`wafer_py.plans.offload`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from starlette.authentication import AuthCredentials
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .auth import WaferAuth
from .config import WaferConfig
from .plans import offload, set_max_threads
from .protocol import (
    ANONYMOUS,
    WAFER_HEADERS,
    PathMatcher,
    RequestState,
    Route,
    WaferProtocol,
    WaferResponse,
    path_matcher,
)
from .users import ANONYMOUS_USER, WaferUser

__all__ = ["WaferMiddleware", "WaferUser", "SCOPE_KEY", "AUTH_KEY", "get_state"]

#: Where the middleware leaves the :class:`RequestState` in the ASGI scope.
SCOPE_KEY = "wafer"
#: Where it leaves its :class:`~wafer_py.auth.WaferAuth`, for helpers in the app.
AUTH_KEY = "wafer.auth"

_NAMES = {name.encode("latin-1"): name for name in WAFER_HEADERS}


def get_state(scope: Scope) -> RequestState:
    """The request's :class:`RequestState` (anonymous outside the middleware)."""
    state = scope.get(SCOPE_KEY)
    return state if isinstance(state, RequestState) else ANONYMOUS


def wafer_headers(scope: Scope) -> dict[str, str]:
    """The Wafer headers of an ASGI request, under their lower-case names."""
    headers: dict[str, str] = {}
    for key, value in scope.get("headers", ()):
        # ASGI servers send lower-case names; others are lowered here.
        name = _NAMES.get(key) if key.islower() else _NAMES.get(key.lower())
        if name is not None:
            headers[name] = value.decode("utf-8", "replace")
    return headers


async def send_response(response: WaferResponse, send: Send) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": response.status,
            "headers": [(k.encode(), v.encode()) for k, v in response.headers],
        }
    )
    await send({"type": "http.response.body", "body": response.content})


class WaferMiddleware:
    """Wrap an ASGI app: ``app.add_middleware(WaferMiddleware, auth=auth)``.

    ``auth`` is a :class:`~wafer_py.auth.WaferAuth` (or give a ``config`` to build one
    from; with neither, the ``WAFER_*`` environment variables configure it).
    ``protect`` lists path prefixes (or a predicate) that need a valid session; the app
    can also refuse with 401/403 itself (``challenge_statuses``), and an unauthenticated
    request then gets the protocol's invalid-session answer.
    """

    def __init__(
        self,
        app: ASGIApp,
        auth: WaferAuth | None = None,
        *,
        config: WaferConfig | None = None,
        protect: Iterable[str] | PathMatcher | None = None,
        challenge_statuses: Iterable[int] = (401, 403),
        max_threads: int | None = None,
    ) -> None:
        self.app = app
        self.auth = auth or WaferAuth(config or WaferConfig.from_env())
        self.protocol = WaferProtocol(self.auth, path_matcher(protect))
        self.challenge_statuses = frozenset(challenge_statuses)
        if max_threads is not None:  # wafer_py's one thread limit (plans.MAX_THREADS)
            set_max_threads(max_threads)

    async def _wait(
        self, route: Route, path: str, headers: dict[str, str]
    ) -> WaferResponse | RequestState:
        """A request other than a login that waits on I/O, where ``route`` says."""
        if route == "loop":
            return await self.protocol.ahandle(path, headers)
        return await offload(self.protocol.check, path, headers)

    async def _login(self, headers: dict[str, str], receive: Receive, send: Send) -> None:
        """The login path under asyncio. The middleware answers it itself, so it reads the
        request's messages meanwhile: ``http.disconnect`` ends a login still waiting for
        a slot, and one that has not called WeChat yet does not."""
        loop = asyncio.get_running_loop()
        gone: asyncio.Future[None] = loop.create_future()
        watcher = loop.create_task(_watch_disconnect(receive, gone))
        try:
            answer = await self.protocol.alogin(headers, gone)
        finally:
            watcher.cancel()
        if not gone.done():  # else nobody is left to read the answer
            await send_response(answer, send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "websocket":
                await self._websocket(scope, receive, send)
            else:
                await self.app(scope, receive, send)
            return
        path = scope.get("path", "") or "/"
        headers = wafer_headers(scope)
        if path == self.protocol.login_path:
            route = self.protocol.route(path, headers)
            if route == "loop":
                await self._login(headers, receive, send)
            else:  # under trio: in a thread, through the thread login gate
                await send_response(await offload(self.protocol.login, headers), send)
            return
        route = self.protocol.route(path, headers)
        if route == "inline":  # the usual case: no coroutine to make
            outcome = self.protocol.check(path, headers)
        else:
            outcome = await self._wait(route, path, headers)
        if isinstance(outcome, WaferResponse):
            await send_response(outcome, send)
            return
        _authenticate(scope, outcome, self.auth)
        if outcome.identity is not None or not self.challenge_statuses:
            await self.app(scope, receive, send)
            return
        await self.app(scope, receive, _ChallengeSend(send, outcome, self.challenge_statuses))

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A WebSocket handshake: its Wafer headers checked like a request's. A session
        that does not check out (or a ``protect``-ed path without one) is closed with
        1008, a store outage with 1011, in answer to ``websocket.connect``; no session
        at all reaches the app as anonymous."""
        path = scope.get("path", "") or "/"
        headers = wafer_headers(scope)
        route = self.protocol.route(None, headers)  # not a login, whatever the path
        if route == "inline":
            outcome = self.protocol.check(path, headers)
        else:
            outcome = await self._wait(route, path, headers)
        if isinstance(outcome, WaferResponse) or outcome.error is not None:
            status = outcome.status if isinstance(outcome, WaferResponse) else 401
            message = await receive()
            if message["type"] == "websocket.connect":
                await send({"type": "websocket.close", "code": 1011 if status >= 500 else 1008})
            return
        _authenticate(scope, outcome, self.auth)
        await self.app(scope, receive, send)


def _authenticate(scope: Scope, state: RequestState, auth: WaferAuth) -> None:
    """Leave what the middleware learned in the scope (the one place that makes the user)."""
    scope[SCOPE_KEY] = state
    scope[AUTH_KEY] = auth
    if state.identity is not None:
        scope["user"] = WaferUser(state.identity)
        scope["auth"] = AuthCredentials(["authenticated"])
    else:
        scope["user"] = ANONYMOUS_USER
        scope["auth"] = AuthCredentials()


async def _watch_disconnect(receive: Receive, gone: asyncio.Future[None]) -> None:
    """Read the request's messages (its body is not used) until ``http.disconnect``."""
    while (await receive())["type"] != "http.disconnect":
        pass
    if not gone.done():
        gone.set_result(None)


class _ChallengeSend:
    """Replaces a 401/403 response with the protocol's invalid-session answer."""

    def __init__(self, send: Send, state: RequestState, statuses: frozenset[int]) -> None:
        self.send = send
        self.state = state
        self.statuses = statuses
        self.replacing = False

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start" and message["status"] in self.statuses:
            self.replacing = True
            return
        if not self.replacing:
            await self.send(message)
        elif message["type"] == "http.response.body" and not message.get("more_body", False):
            await send_response(self.state.challenge(), self.send)
