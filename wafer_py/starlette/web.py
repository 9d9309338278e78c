"""Web login for Starlette (and FastAPI) pages opened in WeChat (official-account OAuth,
网页授权); the same names as :mod:`wafer_py.flask`::

    app = Starlette(routes=[Route("/web/profile", profile)], middleware=[...])
    WaferWeb(app)                 # adds the OAuth callback; uses WaferMiddleware's auth

    @web_login_required(scope="snsapi_userinfo")
    async def profile(request):
        return HTMLResponse(f"Hello {escape(get_web_user(request).nickname)}")

The flow itself is :class:`~wafer_py.web.login.WebLogin`'s, run in worker threads (it
calls WeChat and the store); this module only reads the request and answers.
"""

from __future__ import annotations

import functools
import inspect
from typing import TYPE_CHECKING, Any, ParamSpec, Protocol, cast, overload

from starlette.requests import HTTPConnection, Request
from starlette.responses import Response
from starlette.routing import Route

from ..asgi import WaferMiddleware
from ..auth import WaferAuth
from ..plans import offload
from ..web.login import CALLBACK_PATH, CONFIRM_BODY_LIMIT, WebAnswer, WebLogin, WebUser
from .decorators import AsyncEndpoint, Endpoint
from .views import middleware_auth, origin

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from ..web.oauth import Scope

__all__ = ["WaferWeb", "web_login_required", "get_web_user", "WEB_USER_KEY"]

P = ParamSpec("P")


class _EndpointDecorator(Protocol):
    def __call__(self, endpoint: Endpoint[P], /) -> AsyncEndpoint[P]: ...


#: Where :func:`web_login_required` leaves the :class:`~wafer_py.web.login.WebUser`.
WEB_USER_KEY = "wafer.web_user"


def _answer(answer: WebAnswer) -> Response:
    response = Response(answer.body, answer.status)
    for name, value in answer.headers:
        response.raw_headers.append((name.lower().encode("latin-1"), value.encode("latin-1")))
    return response


def _is_secure(request: Request) -> bool:
    return request.url.scheme == "https"


async def _small_body(request: Request) -> bytes:
    """The body, read only up to one byte past :data:`CONFIRM_BODY_LIMIT` (then refused)."""
    limit = CONFIRM_BODY_LIMIT
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return b"x" * (limit + 1)
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            break
    return body


def _next_path(request: Request) -> str:
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")


class WaferWeb:
    """Web login for Starlette pages: adds the OAuth callback route to the app.

    ``auth`` defaults to the :class:`~wafer_py.asgi.WaferMiddleware`'s, so an app has one:
    the ``auth`` of ``Middleware(WaferMiddleware, auth=...)`` in the app's middleware list,
    else the one the middleware leaves in the scope, taken at the first request (the
    middleware built it from a ``config``, or wraps the app from outside). ``login`` is a
    ready :class:`~wafer_py.web.login.WebLogin`; other keyword arguments go to
    :class:`~wafer_py.web.login.WebLogin` (``callback_path``, ``public_url``...).
    """

    def __init__(
        self,
        app: Starlette | None = None,
        auth: WaferAuth | None = None,
        *,
        login: WebLogin | None = None,
        **options: Any,
    ) -> None:
        if "config" in options:
            raise TypeError("WaferWeb(config=...) is gone: give the config to WaferMiddleware")
        self.auth = auth
        self.options = options
        self._login = login
        if app is not None:
            self.init_app(app)

    @property
    def login(self) -> WebLogin:
        if self._login is None:
            raise RuntimeError(
                "WaferWeb takes WaferMiddleware's auth at the first request (or give auth)"
            )
        return self._login

    def init_app(self, app: Starlette) -> None:
        if self._login is None:
            self.auth = self.auth or _listed_auth(app)
            if self.auth is not None:
                self._login = WebLogin.from_auth(self.auth, **self.options)
        path = self.options.get("callback_path", CALLBACK_PATH)
        app.router.routes.append(
            Route(
                self._login.callback_path if self._login else path,
                self.callback,
                methods=["GET", "POST"],  # POST: the confirmation page's form
                name="wafer_web_callback",
            )
        )
        app.state.wafer_web = self

    def login_for(self, conn: HTTPConnection) -> WebLogin:
        """The :class:`~wafer_py.web.login.WebLogin`, made at the first request from the
        middleware's auth when ``init_app`` could not see it."""
        if self._login is None:
            self.auth = middleware_auth(conn, "WaferWeb")
            self._login = WebLogin.from_auth(self.auth, **self.options)
        return self._login

    async def callback(self, request: Request) -> Response:
        """The endpoint WeChat sends the browser back to (GET), and the confirmation's
        (POST)."""
        login = self.login_for(request)
        cookie = request.cookies.get(login.cookie_name)
        nonce = request.cookies.get(login.nonce_cookie_name)
        if request.method == "POST":
            answer = await offload(
                login.confirm,
                await _small_body(request),
                cookie=cookie,
                nonce=nonce,
                secure=_is_secure(request),
                accept_language=request.headers.get("accept-language"),
            )
        else:
            answer = await offload(
                login.finish,
                dict(request.query_params),
                cookie=cookie,
                nonce=nonce,
                secure=_is_secure(request),
                base_url=origin(request),
                accept_language=request.headers.get("accept-language"),
            )
        return _answer(answer)

    async def logout(self, request: Request, redirect_to: str = "/") -> Response:
        """A response that ends the request's web session and goes to ``redirect_to``."""
        login = self.login_for(request)
        answer = await offload(
            login.logout,
            request.cookies.get(login.cookie_name),
            redirect_to=redirect_to,
            secure=_is_secure(request),
        )
        return _answer(answer)


def _listed_auth(app: Starlette) -> WaferAuth | None:
    """The ``auth`` given to ``Middleware(WaferMiddleware, ...)`` in the app's list, if any."""
    for entry in app.user_middleware:
        factory: object = entry.cls
        if factory is WaferMiddleware:
            auth = entry.kwargs.get("auth", entry.args[0] if entry.args else None)
            return auth if isinstance(auth, WaferAuth) else None
    return None


def _web(request: Request) -> WaferWeb:
    web = getattr(request.app.state, "wafer_web", None)
    if not isinstance(web, WaferWeb):
        raise RuntimeError("web_login_required needs WaferWeb(app)")
    return web


def get_web_user(conn: HTTPConnection) -> WebUser | None:
    """The request's :class:`~wafer_py.web.login.WebUser`, or ``None``."""
    user = conn.scope.get(WEB_USER_KEY)
    return user if isinstance(user, WebUser) else None


@overload
def web_login_required(endpoint: Endpoint[P], *, scope: Scope = ...) -> AsyncEndpoint[P]: ...
@overload
def web_login_required(endpoint: None = None, *, scope: Scope = ...) -> _EndpointDecorator: ...
def web_login_required(
    endpoint: Endpoint[P] | None = None, *, scope: Scope = "snsapi_base"
) -> AsyncEndpoint[P] | _EndpointDecorator:
    """Send a browser without a web session of ``scope`` through WeChat's OAuth first.

    ``@web_login_required`` (silent ``snsapi_base``: openid only) or
    ``@web_login_required(scope="snsapi_userinfo")`` (a consent page: nickname, avatar).
    Decorates a Starlette endpoint (sync or async) that takes ``request``.
    """

    def decorate(endpoint: Endpoint[P]) -> AsyncEndpoint[P]:
        is_async = inspect.iscoroutinefunction(endpoint)

        @functools.wraps(endpoint)
        async def wrapper(request: Request, *args: P.args, **kwargs: P.kwargs) -> Any:
            login = _web(request).login_for(request)
            access = await offload(
                login.guard,
                request.cookies.get(login.cookie_name),
                scope=scope,
                next_path=_next_path(request),
                base_url=origin(request),
                secure=_is_secure(request),
                nonce=request.cookies.get(login.nonce_cookie_name),
                accept_language=request.headers.get("accept-language"),
            )
            if access.answer is not None:
                return _answer(access.answer)
            request.scope[WEB_USER_KEY] = access.user
            if is_async:
                response = await endpoint(request, *args, **kwargs)
            else:
                response = await offload(endpoint, request, *args, **kwargs)
            for name, value in access.headers:
                response.raw_headers.append(
                    (name.lower().encode("latin-1"), value.encode("latin-1"))
                )
            return response

        return cast("AsyncEndpoint[P]", wrapper)

    return cast(_EndpointDecorator, decorate) if endpoint is None else decorate(endpoint)
