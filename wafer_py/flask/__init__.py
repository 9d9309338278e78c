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

The pieces, one shape with :mod:`wafer_py.starlette` and :mod:`wafer_py.django`:
:mod:`.extension` (``Wafer``), :mod:`.decorators` (``login_required``), :mod:`.views` (the
request's user and the helpers) and :mod:`.web` (web login); import them from here.
"""

from __future__ import annotations

from .decorators import login_required
from .extension import Wafer
from .views import (
    avatar_response,
    current_identity,
    current_user,
    error_response,
    fetch_phone_number,
    get_current_user,
    revoke_session,
    set_profile,
    upload_avatar,
    wafer_state,
)
from .web import WaferWeb, current_web_user, get_web_user, web_login_required

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
