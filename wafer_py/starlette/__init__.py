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

Its calls to WeChat and to a blocking store run in worker threads, never on the loop. The
pieces, one shape with :mod:`wafer_py.flask` and :mod:`wafer_py.django`: :mod:`.decorators`
(``login_required``, ``require_user``), :mod:`.views` (the request's user and the helpers)
and :mod:`.web` (web login); the middleware is :mod:`wafer_py.asgi`'s. Import them from here.
"""

from __future__ import annotations

from ..asgi import SCOPE_KEY, WaferMiddleware
from ..users import WaferUser
from .decorators import AsyncEndpoint as AsyncEndpoint  # the endpoint types, kept here
from .decorators import Endpoint as Endpoint
from .decorators import login_required, require_user
from .views import (
    avatar_response,
    error_response,
    fetch_phone_number,
    get_current_user,
    revoke_session,
    set_profile,
    upload_avatar,
    wafer_state,
)
from .web import WEB_USER_KEY, WaferWeb, get_web_user, web_login_required

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
