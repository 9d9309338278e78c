"""Starlette (and FastAPI) helpers on top of :class:`~wafer_py.asgi.WaferMiddleware`.

The middleware already sets ``request.user`` (a :class:`~wafer_py.users.WaferUser`, or the
:class:`~wafer_py.users.AnonymousUser`: the same objects as Flask's ``current_user``) and
``request.auth``, so Starlette's ``@requires("authenticated")`` works as it is; a 401 or
403 it raises for a request without a valid session is turned into the protocol's
invalid-session answer. :func:`login_required` answers that directly, and
:func:`require_user` is the same as a FastAPI dependency.

Web pages opened in WeChat log in through official-account OAuth (see
:mod:`wafer_py.web.login`); the same names as in :mod:`wafer_py.flask`::

    app = Starlette(routes=[Route("/web/profile", profile)], middleware=[...])
    WaferWeb(app)                 # adds the OAuth callback; uses WaferMiddleware's auth

    @web_login_required(scope="snsapi_userinfo")
    async def profile(request):
        return HTMLResponse(f"Hello {escape(get_web_user(request).nickname)}")

Its calls to WeChat and to a blocking store run in worker threads, never on the loop.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, Protocol, cast, overload

from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response
from starlette.routing import Route

from .asgi import AUTH_KEY, SCOPE_KEY, WaferMiddleware, get_state
from .auth import WaferAuth
from .avatars import AVATAR_PATH, AvatarStore, serve_headers
from .body import MAX_AVATAR_BODY, MAX_JSON_BODY, acapped, aread_limited, check_length
from .exceptions import BadBody, ImagesUnavailable, MissingCredentials, WaferError
from .extras import install_hint
from .fillin import default_avatar_store, profile_from_body, save_avatar
from .models import User
from .plans import offload
from .protocol import RequestState
from .protocol import error_response as _protocol_error
from .users import WaferUser
from .web.login import CALLBACK_PATH, CONFIRM_BODY_LIMIT, WebAnswer, WebLogin, WebUser
from .wechat.phone import PhoneNumber, phone_code_from_body

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from .web.oauth import Scope

__all__ = [
    "WaferMiddleware",
    "WaferUser",
    "get_current_user",
    "login_required",
    "require_user",
    "wafer_state",
    "SCOPE_KEY",
    "fetch_phone_number",
    "set_profile",
    "upload_avatar",
    "avatar_response",
    "revoke_session",
    "error_response",
    "WaferWeb",
    "web_login_required",
    "get_web_user",
    "WEB_USER_KEY",
]

P = ParamSpec("P")
#: A Starlette endpoint taking the request first; its answer is a response or awaits one.
Endpoint = Callable[Concatenate[Request, P], Any]
#: What the decorators make of it: always a coroutine function.
AsyncEndpoint = Callable[Concatenate[Request, P], Awaitable[Any]]


class _EndpointDecorator(Protocol):
    def __call__(self, endpoint: Endpoint[P], /) -> AsyncEndpoint[P]: ...


def wafer_state(conn: HTTPConnection) -> RequestState:
    """The request's :class:`~wafer_py.protocol.RequestState`."""
    return get_state(conn.scope)


def _challenge(state: RequestState) -> Response:
    answer = state.challenge()
    return Response(answer.content, answer.status, headers=dict(answer.headers))


def get_current_user(conn: HTTPConnection) -> User | None:
    """The request's stored :class:`~wafer_py.models.User`, or ``None`` without a valid
    session (``request.user.user``, as a plain value)."""
    identity = wafer_state(conn).identity
    return None if identity is None else identity.user


def login_required(endpoint: Endpoint[P]) -> AsyncEndpoint[P]:
    """Decorate a Starlette endpoint (sync or async, taking ``request``) to need login."""
    is_async = inspect.iscoroutinefunction(endpoint)

    @functools.wraps(endpoint)
    async def wrapper(request: Request, *args: P.args, **kwargs: P.kwargs) -> Any:
        state = wafer_state(request)
        if not state.is_authenticated:
            return _challenge(state)
        if is_async:
            return await endpoint(request, *args, **kwargs)
        return await offload(endpoint, request, *args, **kwargs)

    # ``request`` stays a keyword too: FastAPI calls an endpoint with keyword arguments.
    return cast("AsyncEndpoint[P]", wrapper)


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
    request: Request, code: str | None = None, *, auth: WaferAuth | None = None
) -> PhoneNumber:
    """Exchange a ``getPhoneNumber`` code for the request's user; store it on the user.

    ``code`` defaults to the ``code`` of the request's JSON body (at most
    :data:`~wafer_py.body.MAX_JSON_BODY` bytes, read here: 413 beyond); ``auth`` to the one
    of the :class:`~wafer_py.asgi.WaferMiddleware` in front of the app. WeChat and the store
    are called in a worker thread. Raises a :class:`~wafer_py.exceptions.WaferError`
    (bad body, bad code, no session...): answer it with :func:`error_response`.
    """
    if code is not None and not isinstance(code, str):
        # the former order (request, auth, code): refuse it rather than send auth to WeChat
        raise TypeError("fetch_phone_number(request, code=None, *, auth=None): auth by keyword")
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


async def set_profile(request: Request, *, auth: WaferAuth | None = None) -> User:
    """Store the nickname (and avatar URL) the user filled in; return the updated user.

    Reads the request's JSON body ``{"nickName": ..., "avatarUrl"?: ...}`` (at most
    :data:`~wafer_py.body.MAX_JSON_BODY` bytes) and checks it (:mod:`wafer_py.fillin`);
    the store is called in a worker thread. Raises a
    :class:`~wafer_py.exceptions.WaferError`: answer it with :func:`error_response`.
    """
    identity = wafer_state(request).identity
    if identity is None:
        raise MissingCredentials()
    auth = auth or _middleware_auth(request, "set_profile")
    nickname, avatar_url = profile_from_body(await _read_body(request, MAX_JSON_BODY))
    who = await offload(
        auth.set_profile,
        identity,
        nickname,
        avatar_url,
        own_avatar_prefix=_avatar_prefix(request),
    )
    return who.user


async def upload_avatar(
    request: Request, *, store: AvatarStore | None = None, auth: WaferAuth | None = None
) -> str:
    """Take the image of the request's ``multipart/form-data`` field ``avatar`` (what
    ``wx.uploadFile({name: "avatar"})`` sends), store it cleaned, make it the user's
    ``avatarUrl`` and return that URL.

    The body is parsed as it streams (Starlette's parser, python-multipart) and refused
    past :data:`~wafer_py.body.MAX_AVATAR_BODY` (413); an image that is no
    PNG/JPEG/WebP/GIF is refused (415); Pillow and the store run in a worker thread.
    """
    identity = wafer_state(request).identity
    if identity is None:
        raise MissingCredentials()
    auth = auth or _middleware_auth(request, "upload_avatar")
    data = await _uploaded_file(request, "avatar")
    return await offload(
        save_avatar, auth, identity, data, own_prefix=_avatar_prefix(request), store=store
    )


async def avatar_response(
    request: Request,
    key: str | None = None,
    *,
    store: AvatarStore | None = None,
    auth: WaferAuth | None = None,
) -> Response:
    """The stored avatar ``key`` (default: the route's ``{key}``) as a response (strict
    type, ``nosniff``, cached for a year); raises ``AvatarNotFound`` (404) for a key that
    is not there."""
    key = str(request.path_params.get("key", "")) if key is None else key
    avatars = store or default_avatar_store(auth or _middleware_auth(request, "avatar_response"))
    data, content_type = await offload(avatars.get, key)
    response = Response(data, 200)
    response.raw_headers = [
        (name.lower().encode("latin-1"), value.encode("latin-1"))
        for name, value in [*serve_headers(content_type), ("Content-Length", str(len(data)))]
    ]
    return response


def _avatar_prefix(request: Request) -> str:
    return _origin(request) + AVATAR_PATH


async def _uploaded_file(request: Request, field: str) -> bytes:
    """The bytes of the multipart file ``field``, read through Starlette's streaming
    parser with the body capped at :data:`~wafer_py.body.MAX_AVATAR_BODY`."""
    check_length(request.headers.get("content-length"), MAX_AVATAR_BODY)
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "multipart/form-data":
        raise BadBody(f"expected multipart/form-data with the file in the field {field!r}")
    try:
        import python_multipart  # noqa: F401  (Starlette's multipart parser needs it)
    except ImportError:
        raise ImagesUnavailable(
            "avatar uploads on Starlette need python-multipart: " + install_hint("images")
        ) from None
    from starlette.datastructures import UploadFile
    from starlette.formparsers import MultiPartException, MultiPartParser

    parser = MultiPartParser(
        request.headers,
        acapped(request.stream(), MAX_AVATAR_BODY),
        max_files=1,
        max_fields=4,
        max_part_size=MAX_JSON_BODY,
    )
    try:
        form = await parser.parse()
    except MultiPartException:
        raise BadBody("the multipart body is malformed") from None
    try:
        upload = form.get(field)
        if not isinstance(upload, UploadFile):
            raise BadBody(f"no file in the field {field!r}")
        return await upload.read(MAX_AVATAR_BODY + 1)
    finally:
        await form.close()


async def revoke_session(request: Request, *, auth: WaferAuth | None = None) -> bool:
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


def _middleware_auth(conn: HTTPConnection, what: str) -> WaferAuth:
    auth = conn.scope.get(AUTH_KEY)
    if not isinstance(auth, WaferAuth):
        raise RuntimeError(f"{what} needs WaferMiddleware in front, or an auth")
    return auth


# ------------------------------------------------------------- web pages (网页授权)

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


def _origin(request: Request) -> str:
    return f"{request.url.scheme}://{request.url.netloc}{request.scope.get('root_path', '')}"


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
            self.auth = _middleware_auth(conn, "WaferWeb")
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
                base_url=_origin(request),
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
                base_url=_origin(request),
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
