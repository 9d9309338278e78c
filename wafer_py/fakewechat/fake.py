""":class:`FakeWeChat`: the state, the endpoint families and the control API, put together.

Each call to a WeChat path is counted, then answered by an injected error if one is
pending, else by its route. Unknown WeChat paths answer 48001 and a wrong method 43002,
always with HTTP 200 as WeChat does. WeChat answers use ``content_type`` (``text/plain``
by default, as the real API is reported to send); control answers are JSON.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

from ..config import DEMO_APP_SECRET, DEMO_APPID
from . import control, miniprogram, oauth, serverapi
from .errors import error_response
from .server import FakeWeChatServer, Request, Response, Router
from .state import WeChatState

__all__ = ["FakeWeChat"]

logger = logging.getLogger("wafer_py.fakewechat")


class FakeWeChat:
    """A WeChat API that runs in-process, for tests, demos and offline development.

    ``apps`` maps AppID to AppSecret (default: the demo app of :mod:`wafer_py.config`).
    ``clock`` returns seconds (default :func:`time.time`); :meth:`advance` moves it on.
    ``latency`` delays every WeChat answer by that many seconds (the :attr:`latency`
    property, or ``POST /_fake/latency``, changes it while serving; :meth:`reset` puts
    it back). ``real_profiles`` makes ``wx.getUserInfo`` give each user a profile of
    their own, as in the Wafer era (nickname from the handle, an avatar of its own);
    by default it answers as WeChat does today, with the anonymous profile ("微信用户",
    the grey avatar, no gender or region). :attr:`real_profiles` or
    ``POST /_fake/profiles`` switch it while serving.

    Example::

        fake = FakeWeChat()
        with fake.serve() as server:
            code = fake.login(DEMO_APPID, user="alice")["code"]
            # point the WeChat client at server.url and exchange ``code``
    """

    def __init__(
        self,
        apps: Mapping[str, str] | None = None,
        clock: Callable[[], float] | None = None,
        content_type: str = "text/plain",
        latency: float = 0.0,
        real_profiles: bool = False,
    ) -> None:
        self.state = WeChatState(
            apps or {DEMO_APPID: DEMO_APP_SECRET}, clock, latency, real_profiles
        )
        self.content_type = content_type
        self.router = Router()
        miniprogram.register(self.router, self.state)
        #: Web OAuth (网页授权): ``fake.oauth.authorize(...)`` mints a code, and so on.
        self.oauth = oauth.register(self.router, self.state)
        #: access_token, phone numbers, session keys: ``fake.server_api.tokens.limits``...
        self.server_api = serverapi.register(self.router, self.state)
        control.register(self.router, self.state)

    @property
    def latency(self) -> float:
        """Seconds every WeChat answer waits, like a real round trip (the control API is
        not delayed). May be changed while serving: answers already waiting follow."""
        return self.state.latency

    @latency.setter
    def latency(self, seconds: float) -> None:
        self.state.set_latency(seconds)

    @property
    def real_profiles(self) -> bool:
        """Whether ``wx.getUserInfo`` gives real profiles (the old behaviour) rather than
        today's anonymous one."""
        return self.state.real_profiles

    @real_profiles.setter
    def real_profiles(self, real: bool) -> None:
        self.state.real_profiles = real

    def __repr__(self) -> str:
        return f"FakeWeChat(appids={list(self.state.apps)!r})"

    # ------------------------------------------------------------------- HTTP

    def __call__(self, request: Request) -> Response:
        """Answer one request (the server calls this from its threads)."""
        if control.is_control_path(request.path):
            handler = self.router.match(request.method, request.path)
            if handler is None:
                return control.not_routed(self.router, request)
            return handler(request)
        return self._wechat(request)

    def _wechat(self, request: Request) -> Response:
        self.state.count(request.path)
        self.state.delay()
        now = self.state.now()
        injected = self.state.take_injected(request.path)
        if injected is not None:
            response = error_response(injected.errcode, injected.errmsg, now)
        else:
            handler = self.router.match(request.method, request.path)
            if handler is not None:
                try:
                    response = handler(request)
                except Exception:
                    logger.exception("fake WeChat failed on %s", request.path)
                    response = error_response(-1, now=now)
            elif methods := self.router.methods(request.path):
                response = error_response(43002, f"require {methods[0]} method", now)
            else:
                response = error_response(48001, now=now)
        if response.content_type is None:
            response = Response(response.status, response.body, self.content_type, response.headers)
        return response

    def serve(self, host: str = "127.0.0.1", port: int = 0) -> FakeWeChatServer:
        """Start serving in a background thread (``port=0`` picks a free port) on
        ``host``, a loopback address (anything else raises ``ValueError``).

        Returns the running server: ``server.url``, ``server.close()``, or use it in a
        ``with`` block.
        """
        return FakeWeChatServer(self, host, port)

    # ------------------------------------------------------------- test API

    def login(
        self, appid: str | None = None, user: str = "alice", rotate: bool = True
    ) -> dict[str, str]:
        """What ``wx.login`` does: ``{"code", "openid"}``. See :func:`miniprogram.login`."""
        return miniprogram.login(self.state, appid or self.state.default_appid, user, rotate)

    def user_info(
        self, appid: str | None = None, user: str = "alice", **profile: Any
    ) -> dict[str, Any]:
        """What ``wx.getUserInfo`` returns, under the user's current session_key."""
        return miniprogram.user_info(self.state, appid or self.state.default_appid, user, **profile)

    def phone_code(
        self,
        appid: str | None = None,
        user: str = "alice",
        phone_number: str | None = None,
        country_code: str = "86",
    ) -> dict[str, str]:
        """What the ``getPhoneNumber`` button yields: ``{"code", "phoneNumber", ...}``."""
        return self.server_api.phone_code(
            appid or self.state.default_appid, user, phone_number, country_code
        )

    def expire_tokens(self, appid: str | None = None) -> int:
        """Expire every access_token handed out so far, at once; return how many."""
        return self.server_api.tokens.expire_all(appid)

    def inject(self, path: str, errcode: int, times: int = 1, errmsg: str | None = None) -> None:
        """Make the next ``times`` calls to WeChat ``path`` answer ``errcode``."""
        self.state.inject(path, errcode, times, errmsg)

    def advance(self, seconds: float) -> float:
        """Move the fake's clock forward; return the new time."""
        return self.state.advance(seconds)

    def now(self) -> float:
        """The fake's current time."""
        return self.state.now()

    @property
    def calls(self) -> Counter[str]:
        """Calls per WeChat path so far (a snapshot; unknown paths read as 0)."""
        return self.state.calls()

    def session_key_of(self, appid: str, openid: str) -> str:
        """The user's current session_key (tests only). Raises ``KeyError`` if unknown."""
        return self.state.user_by_openid(appid, openid).session_key

    def reset(self) -> None:
        """Forget users, codes, counters, injected errors and clock moves; keep the apps."""
        self.state.reset()
