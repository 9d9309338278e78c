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
reprs, log lines or error messages.

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
import re
import secrets
import string
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qs, quote, urlencode, urlsplit

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

Scope = Literal["snsapi_base", "snsapi_userinfo"]
Lang = Literal["zh_CN", "zh_TW", "en"]
#: The scopes of official-account web OAuth: silent openid only, or the consent page.
SCOPES: tuple[Scope, ...] = ("snsapi_base", "snsapi_userinfo")
#: The languages ``/sns/userinfo`` localises the region names into.
LANGS: tuple[Lang, ...] = ("zh_CN", "zh_TW", "en")
#: Lifetimes WeChat gives: access token 2 hours, refresh token 30 days.
ACCESS_TOKEN_TTL = 7200
REFRESH_TOKEN_TTL = 30 * 24 * 3600

_STATE = re.compile(r"[A-Za-z0-9]{1,128}")
_STATE_ALPHABET = string.ascii_letters + string.digits


def is_valid_state(state: str) -> bool:
    """Whether WeChat accepts ``state``: 1 to 128 ASCII letters and digits."""
    return _STATE.fullmatch(state) is not None


def _mask(value: str) -> str:
    return "***" if value else "''"


@dataclass(frozen=True)
class AuthorizeURL:
    """Where to send the browser, and the ``state`` WeChat will hand back."""

    url: str
    state: str


@dataclass(frozen=True)
class OAuthCallback:
    """What WeChat appended to the ``redirect_uri``: ``code`` is None if the user declined."""

    code: str | None = field(repr=False)
    state: str | None


def parse_callback(r_url: str) -> OAuthCallback:
    """Read ``code`` and ``state`` from a callback URL, or take ``r_url`` as a bare code.

    A URL is anything with a ``?`` (absolute, or a path with its query string).
    """
    text = r_url.strip()
    if "?" not in text:
        return OAuthCallback(text or None, None)
    query = parse_qs(urlsplit(text).query, keep_blank_values=True)
    code = query.get("code", [""])[0] or None
    state = query.get("state", [""])[0] or None
    return OAuthCallback(code, state)


@dataclass(frozen=True)
class OAuthToken:
    """A user's OAuth tokens. ``scope`` is WeChat's (comma-separated if several)."""

    access_token: str
    refresh_token: str
    openid: str
    scope: str
    expires_in: int = ACCESS_TOKEN_TTL
    unionid: str | None = None
    #: 1 in WeChat's "snapshot page" mode: a virtual account, not a real login.
    is_snapshotuser: bool = False

    def __repr__(self) -> str:
        return (
            f"OAuthToken(openid={self.openid!r}, scope={self.scope!r}, "
            f"expires_in={self.expires_in!r}, unionid={self.unionid!r}, "
            f"access_token={_mask(self.access_token)}, "
            f"refresh_token={_mask(self.refresh_token)})"
        )

    @property
    def scopes(self) -> frozenset[str]:
        return frozenset(s.strip() for s in self.scope.split(",") if s.strip())

    def has_scope(self, scope: str) -> bool:
        """Whether the token grants ``scope`` (``snsapi_userinfo`` includes the base)."""
        granted = self.scopes
        return scope in granted or (scope == "snsapi_base" and "snsapi_userinfo" in granted)


@dataclass(frozen=True)
class OAuthUserInfo:
    """A profile from ``/sns/userinfo``. ``sex`` and the region are 0 and "" since 2021."""

    openid: str
    nickname: str = ""
    headimgurl: str = ""
    sex: int = 0
    province: str = ""
    city: str = ""
    country: str = ""
    privilege: tuple[str, ...] = ()
    unionid: str | None = None

    @classmethod
    def from_wechat(cls, data: dict[str, Any]) -> OAuthUserInfo:
        def text(name: str) -> str:
            value = data.get(name)
            return value if isinstance(value, str) else ""

        sex = data.get("sex")
        privilege = data.get("privilege")
        unionid = data.get("unionid")
        return cls(
            openid=text("openid"),
            nickname=text("nickname"),
            headimgurl=text("headimgurl"),
            sex=sex if isinstance(sex, int) and not isinstance(sex, bool) else 0,
            province=text("province"),
            city=text("city"),
            country=text("country"),
            privilege=tuple(p for p in privilege if isinstance(p, str))
            if isinstance(privilege, list)
            else (),
            unionid=unionid if isinstance(unionid, str) and unionid else None,
        )


def _token(data: dict[str, Any], where: str) -> OAuthToken:
    access, refresh, openid = (
        data.get("access_token"),
        data.get("refresh_token"),
        data.get("openid"),
    )
    if not all(isinstance(v, str) and v for v in (access, refresh, openid)):
        raise WeChatError(f"WeChat's {where} answer lacks access_token, refresh_token or openid")
    assert isinstance(access, str) and isinstance(refresh, str) and isinstance(openid, str)
    expires_in = data.get("expires_in")
    scope, unionid = data.get("scope"), data.get("unionid")
    return OAuthToken(
        access_token=access,
        refresh_token=refresh,
        openid=openid,
        scope=scope if isinstance(scope, str) else "",
        expires_in=int(expires_in)
        if isinstance(expires_in, (int, str)) and str(expires_in).isdigit()
        else ACCESS_TOKEN_TTL,
        unionid=unionid if isinstance(unionid, str) and unionid else None,
        is_snapshotuser=str(data.get("is_snapshotuser", "0")) == "1",
    )


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
        return _token(data, "/sns/oauth2/access_token")

    def refresh_token(self, refresh_token: str) -> OAuthToken:
        """A new access token from ``/sns/oauth2/refresh_token`` (``refreshToken``).

        Raises :class:`~wafer_py.exceptions.InvalidRefreshToken` (40030) or
        :class:`~wafer_py.exceptions.RefreshTokenExpired` (42002): authorize again.
        """
        data = self._get(
            "/sns/oauth2/refresh_token",
            {"appid": self.appid, "grant_type": "refresh_token", "refresh_token": refresh_token},
        )
        return _token(data, "/sns/oauth2/refresh_token")

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
