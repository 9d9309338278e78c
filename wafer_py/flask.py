"""Flask integration: ``Wafer(app)``, ``current_user``, ``login_required``.

Configuration comes from ``app.config`` keys named like the environment variables
(``WAFER_APPID``, ``WAFER_APP_SECRET``, ``WAFER_WECHAT_API_BASE``, ``WAFER_STORE_URL``,
``WAFER_SESSION_TTL``, ``WAFER_SECRET_KEY``...), or from a ready ``WaferAuth``::

    app = Flask(__name__)
    wafer = Wafer(app)

    @app.get("/weapp/user")
    @login_required
    def user():
        return {"code": 0, "data": {"userInfo": current_user.userinfo()}}
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import Any, TypeVar, cast

from flask import Flask, Response, request
from werkzeug.local import LocalProxy

from .auth import Authenticated, WaferAuth
from .config import WaferConfig
from .models import User
from .protocol import PathMatcher, RequestState
from .wsgi import WaferWSGIMiddleware, get_state

__all__ = ["Wafer", "current_user", "current_identity", "get_current_user", "login_required",
           "wafer_state"]

F = TypeVar("F", bound=Callable[..., Any])


class Wafer:
    """The Flask extension: wraps ``app.wsgi_app`` in :class:`WaferWSGIMiddleware`."""

    def __init__(self, app: Flask | None = None, auth: WaferAuth | None = None, *,
                 protect: Iterable[str] | PathMatcher | None = None) -> None:
        self.auth = auth
        self.protect = protect
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        if self.auth is None:
            env = {k: str(v) for k, v in app.config.items()
                   if k.startswith("WAFER_") and v is not None}
            self.auth = WaferAuth(WaferConfig.from_env(env))
        app.wsgi_app = WaferWSGIMiddleware(  # type: ignore[method-assign]
            app.wsgi_app, self.auth, protect=self.protect)
        app.extensions["wafer"] = self


def wafer_state() -> RequestState:
    """The current request's :class:`~wafer_py.protocol.RequestState`."""
    return get_state(request.environ)


def _identity() -> Authenticated | None:
    return wafer_state().identity


def _user() -> User | None:
    identity = wafer_state().identity
    return None if identity is None else identity.user


def get_current_user() -> User | None:
    """The current request's :class:`~wafer_py.models.User`, or ``None``."""
    return _user()


#: The current request's :class:`~wafer_py.models.User`, for views behind
#: :func:`login_required`. Without a valid session it stands for ``None``: it is falsy,
#: but being a proxy it is never ``is None``; use :func:`get_current_user` to test.
current_user: User = cast("User", LocalProxy(_user))
#: The current request's :class:`~wafer_py.auth.Authenticated` (user and session); the same
#: caveat as ``current_user``.
current_identity: Authenticated = cast("Authenticated", LocalProxy(_identity))


def login_required(view: F) -> F:
    """Answer the protocol's invalid-session error unless the request has a valid session."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        state = wafer_state()
        if not state.is_authenticated:
            answer = state.challenge()
            return Response(answer.content, answer.status, headers=answer.headers)
        return view(*args, **kwargs)

    return cast(F, wrapper)

