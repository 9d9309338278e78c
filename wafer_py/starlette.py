"""Starlette (and FastAPI) helpers on top of :class:`~wafer_py.asgi.WaferMiddleware`.

The middleware already sets ``request.user`` (a :class:`~wafer_py.asgi.WaferUser`) and
``request.auth``, so Starlette's ``@requires("authenticated")`` works as it is; a 401 or
403 it raises for a request without a valid session is turned into the protocol's
invalid-session answer. :func:`login_required` answers that directly, and
:func:`require_user` is the same as a FastAPI dependency.

Web pages opened in WeChat log in through official-account OAuth (see
:mod:`wafer_py.weblogin`); the same names as in :mod:`wafer_py.flask`::

    app = Starlette(routes=[Route("/web/profile", profile)], middleware=[...])
    WaferWeb(app, auth)           # adds the OAuth callback route

    @web_login_required(scope="snsapi_userinfo")
    async def profile(request):
        return HTMLResponse(f"Hello {escape(get_web_user(request).nickname)}")

Its calls to WeChat and to a blocking store run in worker threads, never on the loop.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast, overload

from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response
from starlette.routing import Route

from .asgi import AUTH_KEY, SCOPE_KEY, WaferMiddleware, WaferUser, get_state
from .auth import WaferAuth
from .body import MAX_JSON_BODY, aread_limited, check_length
from .exceptions import MissingCredentials, WaferError
from .phone import PhoneNumber, phone_code_from_body
from .plans import offload
from .protocol import RequestState
from .protocol import error_response as _protocol_error
from .weblogin import CONFIRM_BODY_LIMIT, WebAnswer, WebLogin, WebUser

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from .oauth import Scope

__all__ = [
    "WaferMiddleware",
    "WaferUser",
    "login_required",
    "require_user",
    "wafer_state",
    "SCOPE_KEY",
    "fetch_phone_number",
    "revoke_session",
    "error_response",
    "WaferWeb",
    "web_login_required",
    "get_web_user",
    "WEB_USER_KEY",
]

F = TypeVar("F", bound=Callable[..., Any])


def wafer_state(conn: HTTPConnection) -> RequestState:
    """The request's :class:`~wafer_py.protocol.RequestState`."""
    return get_state(conn.scope)


def _challenge(state: RequestState) -> Response:
    answer = state.challenge()
    return Response(answer.content, answer.status, headers=dict(answer.headers))


def login_required(endpoint: F) -> F:
    """Decorate a Starlette endpoint (sync or async, taking ``request``) to need login."""
    is_async = inspect.iscoroutinefunction(endpoint)

    @functools.wraps(endpoint)
    async def wrapper(request: Request, *args: Any, **kwargs: Any) -> Any:
        state = wafer_state(request)
        if not state.is_authenticated:
            return _challenge(state)
        if is_async:
            return await endpoint(request, *args, **kwargs)
        return await offload(endpoint, request, *args, **kwargs)

    return cast(F, wrapper)


def require_user(request: Request) -> WaferUser:
    """FastAPI dependency: ``user: WaferUser = Depends(require_user)``.

    Raises a 401 that the middleware turns into the invalid-session answer.
    """
    user = request.scope.get("user")
    if not isinstance(user, WaferUser):
        raise HTTPException(status_code=401)
    return user


def error_response(exc: WaferError) -> Response:
    """The protocol's error answer for ``exc``, as a Starlette response (4xx/5xx)."""
    answer = _protocol_error(exc)
    return Response(answer.content, answer.status, headers=dict(answer.headers))


async def fetch_phone_number(
    request: Request, auth: WaferAuth | None = None, code: str | None = None
) -> PhoneNumber:
    """Exchange a ``getPhoneNumber`` code for the request's user; store it on the user.

    ``auth`` defaults to the one of the :class:`~wafer_py.asgi.WaferMiddleware` in front
    of the app; ``code`` to the ``code`` of the request's JSON body (at most
    :data:`~wafer_py.body.MAX_JSON_BODY` bytes, read here: 413 beyond). WeChat and the store
    are called in a worker thread. Raises a :class:`~wafer_py.exceptions.WaferError`
    (bad body, bad code, no session...): answer it with :func:`error_response`.
    """
    identity = wafer_state(request).identity
    if identity is None:
        raise MissingCredentials()
    auth = auth or _middleware_auth(request, "fetch_phone_number")
    if code is None:
        code = phone_code_from_body(await _read_body(request, MAX_JSON_BODY))
    return await offload(auth.fetch_phone_number, identity, code)


async def _read_body(request: Request, limit: int) -> bytes:
    """The request's body, at most ``limit`` bytes: ``BodyTooLarge`` (413) beyond, with no
    more than one piece of it read (:mod:`wafer_py.body`)."""
    check_length(request.headers.get("content-length"), limit)
    return await aread_limited(request.stream(), limit)


async def revoke_session(request: Request, auth: WaferAuth | None = None) -> bool:
    """Revoke the session the request came with (log out); ``True`` if it existed.

    The client's next ``login: true`` request logs in again. Every app process sharing
    the store refuses the session from now on. Raises ``MissingCredentials`` without a
    valid session, ``StoreUnavailable`` if the store cannot be reached.
    """
    identity = wafer_state(request).identity
    if identity is None:
        raise MissingCredentials()
    auth = auth or _middleware_auth(request, "revoke_session")
    return await auth.arevoke(identity.session.id)


def _middleware_auth(request: Request, what: str) -> WaferAuth:
    auth = request.scope.get(AUTH_KEY)
    if not isinstance(auth, WaferAuth):
        raise RuntimeError(f"{what} needs WaferMiddleware in front, or an auth")
    return auth


# ------------------------------------------------------------- web pages (网页授权)

#: Where :func:`web_login_required` leaves the :class:`~wafer_py.weblogin.WebUser`.
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


def _origin(request: Request) -> str:
    return f"{request.url.scheme}://{request.url.netloc}{request.scope.get('root_path', '')}"


def _next_path(request: Request) -> str:
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")


class WaferWeb:
    """Web login for Starlette pages: adds the OAuth callback route to the app.

    ``auth`` gives the configuration, store and keys (a ``config`` keyword builds one);
    ``login`` is a ready :class:`~wafer_py.weblogin.WebLogin`; other keyword arguments
    go to :class:`~wafer_py.weblogin.WebLogin` (``callback_path``, ``public_url``...).
    """

    def __init__(
        self,
        app: Starlette | None = None,
        auth: WaferAuth | None = None,
        *,
        login: WebLogin | None = None,
        **options: Any,
    ) -> None:
        if login is None:
            auth = auth or WaferAuth(options.pop("config", None))
            login = WebLogin.from_auth(auth, **options)
        self.login = login
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Starlette) -> None:
        app.router.routes.append(
            Route(
                self.login.callback_path,
                self.callback,
                methods=["GET", "POST"],  # POST: the confirmation page's form
                name="wafer_web_callback",
            )
        )
        app.state.wafer_web = self

    async def callback(self, request: Request) -> Response:
        """The endpoint WeChat sends the browser back to (GET), and the confirmation's
        (POST)."""
        login = self.login
        cookie = request.cookies.get(login.cookie_name)
        nonce = request.cookies.get(login.nonce_cookie_name)
        if request.method == "POST":
            answer = await offload(
                login.confirm,
                await _small_body(request),
                cookie=cookie,
                nonce=nonce,
                secure=_is_secure(request),
            )
        else:
            answer = await offload(
                login.finish,
                dict(request.query_params),
                cookie=cookie,
                nonce=nonce,
                secure=_is_secure(request),
                base_url=_origin(request),
            )
        return _answer(answer)

    async def logout(self, request: Request, redirect_to: str = "/") -> Response:
        """A response that ends the request's web session and goes to ``redirect_to``."""
        answer = await offload(
            self.login.logout,
            request.cookies.get(self.login.cookie_name),
            redirect_to=redirect_to,
            secure=_is_secure(request),
        )
        return _answer(answer)


def _web(request: Request) -> WaferWeb:
    web = getattr(request.app.state, "wafer_web", None)
    if not isinstance(web, WaferWeb):
        raise RuntimeError("web_login_required needs WaferWeb(app)")
    return web


def get_web_user(conn: HTTPConnection) -> WebUser | None:
    """The request's :class:`~wafer_py.weblogin.WebUser`, or ``None``."""
    user = conn.scope.get(WEB_USER_KEY)
    return user if isinstance(user, WebUser) else None


@overload
def web_login_required(endpoint: F, *, scope: Scope = ...) -> F: ...
@overload
def web_login_required(endpoint: None = None, *, scope: Scope = ...) -> Callable[[F], F]: ...
def web_login_required(
    endpoint: F | None = None, *, scope: Scope = "snsapi_base"
) -> F | Callable[[F], F]:
    """Send a browser without a web session of ``scope`` through WeChat's OAuth first.

    ``@web_login_required`` (silent ``snsapi_base``: openid only) or
    ``@web_login_required(scope="snsapi_userinfo")`` (a consent page: nickname, avatar).
    Decorates a Starlette endpoint (sync or async) that takes ``request``.
    """

    def decorate(endpoint: F) -> F:
        is_async = inspect.iscoroutinefunction(endpoint)

        @functools.wraps(endpoint)
        async def wrapper(request: Request, *args: Any, **kwargs: Any) -> Any:
            login = _web(request).login
            access = await offload(
                login.guard,
                request.cookies.get(login.cookie_name),
                scope=scope,
                next_path=_next_path(request),
                base_url=_origin(request),
                secure=_is_secure(request),
                nonce=request.cookies.get(login.nonce_cookie_name),
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

        return cast(F, wrapper)

    return decorate if endpoint is None else decorate(endpoint)
