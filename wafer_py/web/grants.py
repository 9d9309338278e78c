"""What WeChat's web OAuth hands over, as plain values: the callback's code and state, the
tokens it grants, the profile it reads. Free of HTTP, so the web login's flow and sessions
use them without importing the client (:mod:`.oauth`, which needs ``requests``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

from ..exceptions import WeChatError

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
    "parse_callback",
    "is_valid_state",
    "read_token",
]

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


def read_token(data: dict[str, Any], where: str) -> OAuthToken:
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
