"""Web login for Flask pages opened in WeChat (official-account OAuth, 网页授权)::

    WaferWeb(app)                 # mounts the OAuth callback; uses Wafer(app)'s auth

    @app.get("/web/profile")
    @web_login_required(scope="snsapi_userinfo")
    def profile():
        return f"Hello {escape(current_web_user.nickname)}"

The flow itself is :class:`~wafer_py.web.login.WebLogin`'s; this module only reads the
Flask request and answers with Flask responses.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ParamSpec, Protocol, cast, overload

from flask import Flask, Response, current_app, g, make_response, request
from flask.typing import ResponseReturnValue
from werkzeug.local import LocalProxy

from ..auth import WaferAuth
from ..web.login import CONFIRM_BODY_LIMIT, WebAnswer, WebLogin, WebUser
from .extension import Wafer, auth_from_config

if TYPE_CHECKING:
    from ..web.oauth import Scope

__all__ = ["WaferWeb", "web_login_required", "current_web_user", "get_web_user"]

P = ParamSpec("P")


class _ViewDecorator(Protocol):
    def __call__(self, view: Callable[P, Any], /) -> Callable[P, ResponseReturnValue]: ...


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
                auth = auth_from_config(app)
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
