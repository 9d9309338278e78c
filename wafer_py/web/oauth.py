"""A client for WeChat's web OAuth (网页授权): login for official-account pages in WeChat.

The browser is sent to :meth:`WeChatOAuth.authorize_url`; WeChat sends it back to the
``redirect_uri`` with ``code`` and ``state`` (no code if the user declined). The server
then exchanges the code (:meth:`~WeChatOAuth.fetch_token`), refreshes the 2-hour access
token with the 30-day refresh token (:meth:`~WeChatOAuth.refresh_token`), reads the
profile (:meth:`~WeChatOAuth.get_userinfo`, ``snsapi_userinfo`` only) and checks a token
(:meth:`~WeChatOAuth.check_access_token`).

WeChat's errcodes become the named exceptions of :mod:`wafer_py.exceptions`
(``InvalidCode`` 40029, ``CodeAlreadyUsed`` 40163, ``CodeExpired`` 42003,
``InvalidRefreshToken`` 40030, ``RefreshTokenExpired`` 42002, ``InvalidAccessToken``
40001/40014, ``AccessTokenExpired`` 42001, ``InvalidOpenId`` 40003, ``ScopeUnauthorized``
48001, ``InvalidAppId`` 40013, ``InvalidAppSecret`` 40125...). Tokens never appear in
reprs, log lines or error messages. The values it returns are in :mod:`.grants`, free of
HTTP; their names are importable from here too.

Example::

    oauth = WeChatOAuth("wx...", "secret")
    start = oauth.authorize_url("https://example.com/callback", scope="snsapi_userinfo")
    # redirect the browser to start.url; keep start.state in that browser's own session
    # (a cookie): checking the callback against it is what stops login CSRF
    token = oauth.fetch_token(callback_url, expected_state=start.state)
    info = oauth.get_userinfo(token.access_token, token.openid, lang="en")
"""

from __future__ import annotations

import hmac
import logging
import secrets
import string
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import requests

from ..config import DEFAULT_API_BASE, DEFAULT_OPEN_BASE, WaferConfig
from ..exceptions import (
    ConsentDenied,
    InvalidAccessToken,
    InvalidOpenId,
    InvalidState,
    WeChatError,
)
from ..wechat.client import http_session, send
from .grants import (
    ACCESS_TOKEN_TTL,
    LANGS,
    REFRESH_TOKEN_TTL,
    SCOPES,
    AuthorizeURL,
    Lang,
    OAuthCallback,
    OAuthToken,
    OAuthUserInfo,
    Scope,
    is_valid_state,
    parse_callback,
    read_token,
)

__all__ = [
    "ACCESS_TOKEN_TTL",
    "REFRESH_TOKEN_TTL",
    "SCOPES",
    "LANGS",
    "Scope",
    "Lang",
    "AuthorizeURL",
    "OAuthCallback",
    "OAuthToken",
    "OAuthUserInfo",
    "WeChatOAuth",
    "parse_callback",
    "is_valid_state",
]

logger = logging.getLogger("wafer_py")

_STATE_ALPHABET = string.ascii_letters + string.digits


class WeChatOAuth:
    """WeChat web OAuth for one official account (``appid`` + ``app_secret``).

    ``api_base`` and ``open_base`` point it at another WeChat, such as the fake one in
    :mod:`wafer_py.fakewechat` (which serves both). Thread-safe; keeps connections alive.
    Nothing is retried: a code is single-use, and WeChat's errors name what to do.
    """

    def __init__(
        self,
        appid: str,
        app_secret: str,
        *,
        api_base: str = DEFAULT_API_BASE,
        open_base: str = DEFAULT_OPEN_BASE,
        timeout: float = 5.0,
        session: requests.Session | None = None,
        pool_size: int = 16,
    ) -> None:
        if not appid:
            raise ValueError("appid is required")
        self.appid = appid
        self._secret = app_secret
        self.api_base = api_base.rstrip("/")
        self.open_base = open_base.rstrip("/")
        self.timeout = timeout
        self.http = session if session is not None else http_session(pool_size)

    @classmethod
    def from_config(cls, config: WaferConfig) -> WeChatOAuth:
        """A client for ``config``'s official account (``oauth_appid``, else ``appid``)."""
        appid, secret = config.oauth_app()
        return cls(
            appid,
            secret,
            api_base=config.api_base,
            open_base=config.open_base,
            timeout=config.wechat_timeout,
        )

    def __repr__(self) -> str:
        return f"WeChatOAuth(appid={self.appid!r}, api_base={self.api_base!r})"

    def close(self) -> None:
        self.http.close()

    def _get(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        return send(self.http, "GET", self.api_base + path, path, params, timeout=self.timeout)

    # -- the browser's trip ------------------------------------------------------
    def authorize_url(
        self, redirect_uri: str, state: str | None = None, scope: Scope = "snsapi_base"
    ) -> AuthorizeURL:
        """The URL of WeChat's authorize page (``getAuthUrl``).

        ``state`` defaults to a fresh random value; WeChat accepts only ``[A-Za-z0-9]``,
        at most 128 characters. ``scope`` is ``snsapi_base`` (silent: openid only) or
        ``snsapi_userinfo`` (a consent page: the profile too).
        """
        if scope not in SCOPES:
            raise ValueError(f"scope must be one of {SCOPES}, not {scope!r}")
        parts = urlsplit(redirect_uri)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("redirect_uri must be an absolute http(s) URL")
        if state is None:
            state = "".join(secrets.choice(_STATE_ALPHABET) for _ in range(32))
        elif not is_valid_state(state):
            raise ValueError("state must be 1 to 128 ASCII letters and digits")
        query = urlencode(
            [
                ("appid", self.appid),
                ("redirect_uri", redirect_uri),
                ("response_type", "code"),
                ("scope", scope),
                ("state", state),
            ],
            quote_via=quote,
            safe="",
        )
        return AuthorizeURL(
            f"{self.open_base}/connect/oauth2/authorize?{query}#wechat_redirect", state
        )

    # -- server calls --------------------------------------------------------------
    def fetch_token(self, r_url: str, *, expected_state: str | None = None) -> OAuthToken:
        """Exchange the code at ``/sns/oauth2/access_token`` (``getToken``).

        ``r_url`` is the whole callback URL (code and state are read from it) or the code
        alone. With ``expected_state`` the callback's state must equal it, else
        :class:`~wafer_py.exceptions.InvalidState`. A callback without a code (the user
        declined) raises :class:`~wafer_py.exceptions.ConsentDenied`.
        """
        callback = parse_callback(r_url)
        if expected_state is not None and not (
            callback.state is not None
            and hmac.compare_digest(callback.state.encode(), expected_state.encode())
        ):
            raise InvalidState("the callback's state is not the one this login started with")
        if callback.code is None:
            raise ConsentDenied()
        data = self._get(
            "/sns/oauth2/access_token",
            {
                "appid": self.appid,
                "secret": self._secret,
                "code": callback.code,
                "grant_type": "authorization_code",
            },
        )
        return read_token(data, "/sns/oauth2/access_token")

    def refresh_token(self, refresh_token: str) -> OAuthToken:
        """A new access token from ``/sns/oauth2/refresh_token`` (``refreshToken``).

        Raises :class:`~wafer_py.exceptions.InvalidRefreshToken` (40030) or
        :class:`~wafer_py.exceptions.RefreshTokenExpired` (42002): authorize again.
        """
        data = self._get(
            "/sns/oauth2/refresh_token",
            {"appid": self.appid, "grant_type": "refresh_token", "refresh_token": refresh_token},
        )
        return read_token(data, "/sns/oauth2/refresh_token")

    def get_userinfo(self, access_token: str, openid: str, lang: Lang = "zh_CN") -> OAuthUserInfo:
        """The user's profile from ``/sns/userinfo`` (``getUserinfo``).

        Needs a token of scope ``snsapi_userinfo``, else
        :class:`~wafer_py.exceptions.ScopeUnauthorized` (48001).
        """
        if lang not in LANGS:
            raise ValueError(f"lang must be one of {LANGS}, not {lang!r}")
        data = self._get(
            "/sns/userinfo", {"access_token": access_token, "openid": openid, "lang": lang}
        )
        info = OAuthUserInfo.from_wechat(data)
        if not info.openid:
            raise WeChatError("WeChat's /sns/userinfo answer has no openid")
        return info

    def check_access_token(self, access_token: str, openid: str) -> bool:
        """Whether WeChat still accepts ``access_token`` for ``openid`` (``/sns/auth``).

        ``False`` for an invalid or expired token or a wrong openid; other failures (WeChat
        busy or unreachable, a wrong AppID) raise, since they say nothing of the token.
        """
        try:
            self._get("/sns/auth", {"access_token": access_token, "openid": openid})
        except (InvalidAccessToken, InvalidOpenId):
            return False
        return True
