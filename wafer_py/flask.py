"""Flask integration: ``Wafer(app)``, ``current_user``, ``login_required``.

Configuration comes from ``app.config`` keys named like the environment variables
(``WAFER_APPID``, ``WAFER_APP_SECRET``, ``WAFER_WECHAT_API_BASE``, ``WAFER_STORE_URL``,
``WAFER_SESSION_TTL``, ``WAFER_SECRET_KEY``...), then from those variables for the keys
``app.config`` leaves out (as Django reads its settings), or from a ready ``WaferAuth``::

    app = Flask(__name__)
    wafer = Wafer(app)

    @app.get("/weapp/user")
    @login_required
    def user():
        return {"code": 0, "data": {"userInfo": current_user.userinfo()}}

``current_user`` is a :class:`~wafer_py.users.WaferUser` (or the falsy
:class:`~wafer_py.users.AnonymousUser`), the same object as Starlette's ``request.user``.
The decorators call ``async def`` views through ``current_app.ensure_sync`` (``flask[async]``).

Web pages opened in WeChat log in through official-account OAuth (see
:mod:`wafer_py.web.login`)::

    WaferWeb(app)                 # mounts the OAuth callback; uses Wafer(app)'s auth

    @app.get("/web/profile")
    @web_login_required(scope="snsapi_userinfo")
    def profile():
        return f"Hello {escape(current_web_user.nickname)}"
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import IO, TYPE_CHECKING, Any, ParamSpec, Protocol, cast, overload

from flask import Flask, Response, current_app, g, make_response, request
from flask.typing import ResponseReturnValue
from werkzeug.local import LocalProxy

from .auth import Authenticated, WaferAuth
from .avatars import AVATAR_PATH, AvatarStore, serve_headers
from .body import MAX_AVATAR_BODY, MAX_JSON_BODY, CappedReader, check_length, read_limited
from .config import WaferConfig, config_sources
from .exceptions import BadBody, BodyTooLarge, MissingCredentials, WaferError
from .fillin import default_avatar_store, profile_from_body, save_avatar
from .models import User
from .protocol import PathMatcher, RequestState, WaferResponse
from .protocol import error_response as _protocol_error
from .users import ANONYMOUS_USER, AnonymousUser, WaferUser
from .web.login import CONFIRM_BODY_LIMIT, WebAnswer, WebLogin, WebUser
from .wechat.phone import PhoneNumber, phone_code_from_body
from .wsgi import WaferWSGIMiddleware, get_state

if TYPE_CHECKING:
    from .web.oauth import Scope

__all__ = [
    "Wafer",
    "current_user",
    "current_identity",
    "get_current_user",
    "login_required",
    "wafer_state",
    "fetch_phone_number",
    "set_profile",
    "upload_avatar",
    "avatar_response",
    "revoke_session",
    "error_response",
    "WaferWeb",
    "web_login_required",
    "current_web_user",
    "get_web_user",
]

P = ParamSpec("P")


class _ViewDecorator(Protocol):
    def __call__(self, view: Callable[P, Any], /) -> Callable[P, ResponseReturnValue]: ...


def _auth_from_config(app: Flask) -> WaferAuth:
    """A :class:`WaferAuth` configured by the ``WAFER_*`` keys of ``app.config``, then
    the ``WAFER_*`` environment variables for the keys it leaves out."""
    found = config_sources(app.config, framework_name="app.config")
    return WaferAuth(WaferConfig.from_env({k: v for k, (v, _) in found.items()}))


def _flask_response(answer: WaferResponse) -> Response:
    return Response(answer.content, answer.status, headers=answer.headers)


class Wafer:
    """The Flask extension: wraps ``app.wsgi_app`` in :class:`WaferWSGIMiddleware`."""

    def __init__(
        self,
        app: Flask | None = None,
        auth: WaferAuth | None = None,
        *,
        protect: Iterable[str] | PathMatcher | None = None,
    ) -> None:
        self.auth = auth
        self.protect = protect
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        if self.auth is None:
            web = app.extensions.get("wafer_web")  # WaferWeb(app) came first: share its auth
            self.auth = web.auth if isinstance(web, WaferWeb) else _auth_from_config(app)
        middleware = WaferWSGIMiddleware(app.wsgi_app, self.auth, protect=self.protect)
        app.wsgi_app = middleware  # type: ignore[method-assign]
        if self.protect is not None:
            app.before_request(_route_guard(middleware.protocol.protect))
        app.extensions["wafer"] = self


def _route_guard(protect: PathMatcher) -> Callable[[], Response | None]:
    """A ``before_request`` hook refusing a request without a session whose matched URL
    rule (``/api/<int:id>``) is protected.

    The middleware decides on the path before routing; this decides on the route that
    Werkzeug's router actually chose, whatever it made of the path on the way.
    """

    def guard() -> Response | None:
        state = wafer_state()
        if state.is_authenticated:
            return None
        rule = request.url_rule
        if rule is None or not protect(rule.rule):
            return None
        return _flask_response(state.challenge())

    return guard


def wafer_state() -> RequestState:
    """The current request's :class:`~wafer_py.protocol.RequestState`."""
    return get_state(request.environ)


def _identity() -> Authenticated | None:
    return wafer_state().identity


def _wafer_user() -> WaferUser | AnonymousUser:
    identity = wafer_state().identity
    return ANONYMOUS_USER if identity is None else WaferUser(identity)


def get_current_user() -> User | None:
    """The current request's stored :class:`~wafer_py.models.User`, or ``None`` without a
    valid session (``current_user.user``, as a plain value)."""
    identity = wafer_state().identity
    return None if identity is None else identity.user


#: The current request's :class:`~wafer_py.users.WaferUser` (``is_authenticated``,
#: ``openid``, ``display_name``, ``user``, ``userinfo()``), the same shape as Starlette's
#: ``request.user``; the falsy :class:`~wafer_py.users.AnonymousUser` without a session.
current_user: WaferUser | AnonymousUser = cast("WaferUser", LocalProxy(_wafer_user))
#: The current request's :class:`~wafer_py.auth.Authenticated` (user and session). Without a
#: valid session it stands for ``None``: falsy, but being a proxy never ``is None``.
current_identity: Authenticated = cast("Authenticated", LocalProxy(_identity))


def login_required(view: Callable[P, Any]) -> Callable[P, ResponseReturnValue]:
    """Answer the protocol's invalid-session error unless the request has a valid session.

    Decorates a sync or an ``async def`` view (run through ``current_app.ensure_sync``).
    """

    @functools.wraps(view)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> ResponseReturnValue:
        state = wafer_state()
        if not state.is_authenticated:
            return _flask_response(state.challenge())
        return cast("ResponseReturnValue", current_app.ensure_sync(view)(*args, **kwargs))

    return wrapper


def error_response(exc: WaferError) -> Response:
    """The protocol's error answer for ``exc``, as a Flask response (4xx/5xx)."""
    return _flask_response(_protocol_error(exc))


def fetch_phone_number(code: str | None = None, *, auth: WaferAuth | None = None) -> PhoneNumber:
    """Exchange a ``getPhoneNumber`` code for the current user's number; store it on the user.

    ``code`` defaults to the ``code`` of the request's JSON body (at most
    :data:`~wafer_py.body.MAX_JSON_BODY` bytes, read here: 413 beyond); ``auth`` to the app's
    :class:`Wafer` extension's. Raises a :class:`~wafer_py.exceptions.WaferError` (bad
    body, bad code, no session...): answer it with :func:`error_response`.
    """
    _check_code(code)
    identity = wafer_state().identity
    if identity is None:
        raise MissingCredentials()
    if code is None:
        code = phone_code_from_body(_read_body(MAX_JSON_BODY))
    return (auth or _app_auth("fetch_phone_number")).fetch_phone_number(identity, code)


def _read_body(limit: int) -> bytes:
    """The request's body, at most ``limit`` bytes: ``BodyTooLarge`` (413) beyond, with no
    more than one piece of it read (:mod:`wafer_py.body`)."""
    check_length(request.headers.get("Content-Length"), limit)
    piece = min(limit + 1, 64 * 1024)
    body = read_limited(iter(functools.partial(request.stream.read, piece), b""), limit)
    if body:
        return body
    # The stream is consumed: empty, or the app read the body first (get_data caches it).
    return read_limited([request.get_data(cache=True)], limit)


def _check_code(code: object) -> None:
    """Refuse a code that is no string (an ``auth`` given in its place): a clear TypeError,
    not a bad code sent to WeChat."""
    if code is not None and not isinstance(code, str):
        raise TypeError("fetch_phone_number(code=None, *, auth=None): give auth by keyword")


def set_profile(*, auth: WaferAuth | None = None) -> User:
    """Store the nickname (and avatar URL) the user filled in; return the updated user.

    Reads the request's JSON body ``{"nickName": ..., "avatarUrl"?: ...}`` (at most
    :data:`~wafer_py.body.MAX_JSON_BODY` bytes) and checks it (:mod:`wafer_py.fillin`).
    Raises a :class:`~wafer_py.exceptions.WaferError` (``InvalidProfile``, no session...):
    answer it with :func:`error_response`.
    """
    identity = wafer_state().identity
    if identity is None:
        raise MissingCredentials()
    nickname, avatar_url = profile_from_body(_read_body(MAX_JSON_BODY))
    auth = auth or _app_auth("set_profile")
    who = auth.set_profile(identity, nickname, avatar_url, own_avatar_prefix=_avatar_prefix())
    return who.user


def upload_avatar(*, store: AvatarStore | None = None, auth: WaferAuth | None = None) -> str:
    """Take the image of the request's ``multipart/form-data`` field ``avatar`` (what
    ``wx.uploadFile({name: "avatar"})`` sends), store it cleaned, make it the user's
    ``avatarUrl`` and return that URL.

    The body is parsed as it streams and refused past
    :data:`~wafer_py.body.MAX_AVATAR_BODY` (413); an image that is no PNG/JPEG/WebP/GIF
    is refused (415); its metadata is dropped (:func:`~wafer_py.avatars.clean_image`).
    ``store`` defaults to the session store's entries
    (:class:`~wafer_py.avatars.EntryAvatarStore`).
    """
    identity = wafer_state().identity
    if identity is None:
        raise MissingCredentials()
    auth = auth or _app_auth("upload_avatar")
    data = _uploaded_file("avatar")
    return save_avatar(auth, identity, data, own_prefix=_avatar_prefix(), store=store)


def avatar_response(
    key: str, *, store: AvatarStore | None = None, auth: WaferAuth | None = None
) -> Response:
    """The stored avatar ``key`` as a response (strict type, ``nosniff``, cached for a
    year); raises ``AvatarNotFound`` (404) for a key that is not there."""
    avatars = store or default_avatar_store(auth or _app_auth("avatar_response"))
    data, content_type = avatars.get(key)
    response = Response(data, 200)
    response.headers.clear()
    for name, value in serve_headers(content_type):
        response.headers[name] = value
    return response


def _avatar_prefix() -> str:
    return request.host_url.rstrip("/") + request.script_root + AVATAR_PATH


def _uploaded_file(field: str) -> bytes:
    """The bytes of the multipart file ``field``, read through Werkzeug's streaming
    parser with the body capped at :data:`~wafer_py.body.MAX_AVATAR_BODY`."""
    from werkzeug.exceptions import RequestEntityTooLarge
    from werkzeug.formparser import FormDataParser

    check_length(request.headers.get("Content-Length"), MAX_AVATAR_BODY)
    if request.mimetype != "multipart/form-data":
        raise BadBody(f"expected multipart/form-data with the file in the field {field!r}")
    parser = FormDataParser(max_form_memory_size=MAX_JSON_BODY, max_form_parts=8, silent=False)
    try:
        _, _, files = parser.parse(
            cast("IO[bytes]", CappedReader(request.stream, MAX_AVATAR_BODY)),
            request.mimetype,
            request.content_length,
            request.mimetype_params,
        )
    except RequestEntityTooLarge:
        raise BodyTooLarge(f"the request body is larger than {MAX_AVATAR_BODY} bytes") from None
    except ValueError:
        raise BadBody("the multipart body is malformed") from None
    upload = files.get(field)
    if upload is None:
        raise BadBody(f"no file in the field {field!r}")
    try:
        return upload.stream.read(MAX_AVATAR_BODY + 1)
    finally:
        upload.close()


def revoke_session(*, auth: WaferAuth | None = None) -> bool:
    """Revoke the current request's session (log out); ``True`` if it existed.

    The client's next ``login: true`` request logs in again. Every app process sharing
    the store refuses the session from now on. Raises ``MissingCredentials`` without a
    valid session, ``StoreUnavailable`` if the store cannot be reached.
    """
    identity = wafer_state().identity
    if identity is None:
        raise MissingCredentials()
    return (auth or _app_auth("revoke_session")).revoke(identity.session.id)


def _app_auth(what: str) -> WaferAuth:
    wafer = current_app.extensions.get("wafer")
    if not isinstance(wafer, Wafer) or wafer.auth is None:
        raise RuntimeError(f"{what} needs Wafer(app) or an auth")
    return wafer.auth


# ------------------------------------------------------------- web pages (网页授权)


def _answer(answer: WebAnswer) -> Response:
    response = Response(answer.body, answer.status)
    response.headers.clear()
    for name, value in answer.headers:
        response.headers.add(name, value)
    return response


def _origin() -> str:
    return request.host_url.rstrip("/") + request.script_root


def _next_path() -> str:
    query = request.query_string.decode("latin-1")
    return request.script_root + request.path + (f"?{query}" if query else "")


class WaferWeb:
    """Web login for Flask pages: mounts the OAuth callback route on the app.

    ``auth`` defaults to the one of the app's :class:`Wafer` extension (one per app, in
    whichever order the two are made), or one built from ``app.config``; ``login`` is a
    ready :class:`~wafer_py.web.login.WebLogin`; other keyword arguments go to
    :class:`~wafer_py.web.login.WebLogin` (``callback_path``, ``public_url``,
    ``cookie_secure``...).
    """

    def __init__(
        self,
        app: Flask | None = None,
        auth: WaferAuth | None = None,
        *,
        login: WebLogin | None = None,
        **options: Any,
    ) -> None:
        self.auth = auth
        self.options = options
        self._login = login
        if app is not None:
            self.init_app(app)

    @property
    def login(self) -> WebLogin:
        if self._login is None:
            raise RuntimeError("WaferWeb is not bound to an app yet: call init_app(app)")
        return self._login

    def init_app(self, app: Flask) -> None:
        if self._login is None:
            auth = self.auth
            if auth is None:
                wafer = app.extensions.get("wafer")
                auth = wafer.auth if isinstance(wafer, Wafer) else None
            if auth is None:
                auth = _auth_from_config(app)
            self.auth = auth
            self._login = WebLogin.from_auth(auth, **self.options)
        app.add_url_rule(
            self.login.callback_path,
            endpoint="wafer_web_callback",
            view_func=self.callback,
            methods=["GET", "POST"],  # POST: the confirmation page's form
        )
        app.extensions["wafer_web"] = self

    def callback(self) -> Response:
        """The view WeChat sends the browser back to (GET), and the confirmation's (POST)."""
        login = self.login
        cookie = request.cookies.get(login.cookie_name)
        nonce = request.cookies.get(login.nonce_cookie_name)
        lang = request.headers.get("Accept-Language")
        if request.method == "POST":
            # Read at most one byte past the limit: a bigger body is refused unread.
            limit = CONFIRM_BODY_LIMIT
            too_big = (request.content_length or 0) > limit
            body = b"x" * (limit + 1) if too_big else request.stream.read(limit + 1)
            answer = login.confirm(
                body, cookie=cookie, nonce=nonce, secure=request.is_secure, accept_language=lang
            )
        else:
            answer = login.finish(
                request.args.to_dict(),
                cookie=cookie,
                nonce=nonce,
                secure=request.is_secure,
                base_url=_origin(),
                accept_language=lang,
            )
        return _answer(answer)

    def logout(self, redirect_to: str = "/") -> Response:
        """A response that ends the current web session and goes to ``redirect_to``."""
        return _answer(
            self.login.logout(
                request.cookies.get(self.login.cookie_name),
                redirect_to=redirect_to,
                secure=request.is_secure,
            )
        )


def _web() -> WaferWeb:
    web = current_app.extensions.get("wafer_web")
    if not isinstance(web, WaferWeb):
        raise RuntimeError("web_login_required needs WaferWeb(app)")
    return web


def get_web_user() -> WebUser | None:
    """The current request's :class:`~wafer_py.web.login.WebUser`, or ``None``."""
    user = g.get("wafer_web_user")
    return user if isinstance(user, WebUser) else None


#: The current request's :class:`~wafer_py.web.login.WebUser`, for views behind
#: :func:`web_login_required` (the same caveat as ``current_identity``).
current_web_user: WebUser = cast("WebUser", LocalProxy(get_web_user))


@overload
def web_login_required(
    view: Callable[P, Any], *, scope: Scope = ...
) -> Callable[P, ResponseReturnValue]: ...
@overload
def web_login_required(view: None = None, *, scope: Scope = ...) -> _ViewDecorator: ...
def web_login_required(
    view: Callable[P, Any] | None = None, *, scope: Scope = "snsapi_base"
) -> Callable[P, ResponseReturnValue] | _ViewDecorator:
    """Send a browser without a web session of ``scope`` through WeChat's OAuth first.

    ``@web_login_required`` (silent ``snsapi_base``: openid only) or
    ``@web_login_required(scope="snsapi_userinfo")`` (a consent page: nickname, avatar).
    """

    def decorate(view: Callable[P, Any]) -> Callable[P, ResponseReturnValue]:
        @functools.wraps(view)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> ResponseReturnValue:
            login = _web().login
            access = login.guard(
                request.cookies.get(login.cookie_name),
                scope=scope,
                next_path=_next_path(),
                base_url=_origin(),
                secure=request.is_secure,
                nonce=request.cookies.get(login.nonce_cookie_name),
                accept_language=request.headers.get("Accept-Language"),
            )
            if access.answer is not None:
                return _answer(access.answer)
            g.wafer_web_user = access.user
            response = make_response(current_app.ensure_sync(view)(*args, **kwargs))
            for name, value in access.headers:
                response.headers.add(name, value)
            return response

        return wrapper

    return cast(_ViewDecorator, decorate) if view is None else decorate(view)
