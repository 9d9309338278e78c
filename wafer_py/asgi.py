"""Pure ASGI middleware: the Wafer protocol in front of any ASGI app (Starlette, FastAPI...).

Like Starlette's own ``AuthenticationMiddleware`` it sets ``scope["user"]`` and
``scope["auth"]``, so ``request.user`` and ``@requires("authenticated")`` work; the full
:class:`~wafer_py.protocol.RequestState` is in ``scope["wafer"]``. Scopes other than HTTP
pass straight through.

The event loop never waits on WeChat or on a blocking store: those calls run in worker
threads (at most ``max_threads`` at once). A store that does not block (the memory
store) is called inline, and a store with an async driver (``supports_async``: SQLite's
reads, Redis, PostgreSQL) validates sessions on the event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

import anyio.to_thread
from anyio import CapacityLimiter
from starlette.authentication import AuthCredentials
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .auth import WaferAuth
from .config import WaferConfig
from .protocol import (
    ANONYMOUS,
    HEADER_SKEY,
    WAFER_HEADERS,
    PathMatcher,
    RequestState,
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


def _on_asyncio() -> bool:
    """Whether an asyncio loop runs this request (not trio: the async login path and the
    async stores use asyncio)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class WaferMiddleware:
    """Wrap an ASGI app: ``app.add_middleware(WaferMiddleware, auth=auth)``.

    ``auth`` is a :class:`~wafer_py.auth.WaferAuth` (or give a ``config`` to build one
    from). ``protect`` lists path prefixes (or a predicate) that need a valid
    session; the app can also refuse with 401/403 itself (``challenge_statuses``), and an
    unauthenticated request then gets the protocol's invalid-session answer.
    """

    def __init__(
        self,
        app: ASGIApp,
        auth: WaferAuth | None = None,
        *,
        config: WaferConfig | None = None,
        protect: Iterable[str] | PathMatcher | None = None,
        challenge_statuses: Iterable[int] = (401, 403),
        max_threads: int = 64,
    ) -> None:
        self.app = app
        self.auth = auth or WaferAuth(config)
        self.protocol = WaferProtocol(self.auth, path_matcher(protect))
        self.challenge_statuses = frozenset(challenge_statuses)
        self.max_threads = max_threads
        self._limiter: CapacityLimiter | None = None

    def _inline(self, path: str, headers: dict[str, str]) -> bool:
        """Whether this request is answered without awaiting anything: not a login, and
        either no session to check or a store that never blocks (the memory store)."""
        if path == self.protocol.login_path:
            return False
        if HEADER_SKEY not in headers:
            return True
        store = self.auth.store
        return not store.blocking and not store.supports_async

    async def _handle(self, path: str, headers: dict[str, str]) -> WaferResponse | RequestState:
        if self.protocol.handles_async(path, headers) and _on_asyncio():
            return await self.protocol.ahandle(path, headers)
        if not self.protocol.needs_io(path, headers) or (
            path != self.protocol.login_path and not self.auth.store.blocking
        ):
            return self.protocol.handle(path, headers)
        if self._limiter is None:
            self._limiter = CapacityLimiter(self.max_threads)
        return await anyio.to_thread.run_sync(
            self.protocol.handle, path, headers, limiter=self._limiter
        )

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
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "") or "/"
        headers = wafer_headers(scope)
        if path == self.protocol.login_path and _on_asyncio():
            await self._login(headers, receive, send)
            return
        if self._inline(path, headers):
            outcome = self.protocol.handle(path, headers)
        else:
            outcome = await self._handle(path, headers)
        if isinstance(outcome, WaferResponse):
            await send_response(outcome, send)
            return
        scope[SCOPE_KEY] = outcome
        scope[AUTH_KEY] = self.auth
        if outcome.identity is not None:
            scope["user"] = WaferUser(outcome.identity)
            scope["auth"] = AuthCredentials(["authenticated"])
            await self.app(scope, receive, send)
            return
        scope["user"] = ANONYMOUS_USER
        scope["auth"] = AuthCredentials()
        if not self.challenge_statuses:
            await self.app(scope, receive, send)
            return
        await self.app(scope, receive, _ChallengeSend(send, outcome, self.challenge_statuses))


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
