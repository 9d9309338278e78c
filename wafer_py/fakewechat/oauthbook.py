"""The memory of the fake's web OAuth: the codes, grants and profiles behind ``/sns``.

:class:`OAuthBook` keeps codes (single-use, 5 minutes), access tokens (7200 s), refresh
tokens (30 days) and per-user profile overrides, on the fake's clock, so
``fake.advance(7201)`` expires a token; ``fake.oauth`` is one. Tests call
:meth:`~OAuthBook.authorize` (a code, as if the user had allowed),
:meth:`~OAuthBook.set_profile` and :meth:`~OAuthBook.allow_domains`; the endpoints
(:mod:`.oauth`, which re-exports these names) and the authorize page (:mod:`.oauthpage`)
call the rest, which answers with a value or WeChat's errcode.

Refreshing hands back the same refresh token and does not extend its 30 days; earlier
access tokens stay valid until their own expiry. Profiles localise region names by
``lang`` (``zh_CN``, ``zh_TW``, ``en``; anything else reads as ``zh_CN``), though users
have no region unless a test sets one (WeChat stopped sending them in 2021).
"""

from __future__ import annotations

import hmac
import re
import secrets
import string
from dataclasses import dataclass
from typing import Any

from . import miniprogram
from .state import WeChatState

__all__ = [
    "OAUTH_CODE_TTL",
    "ACCESS_TOKEN_TTL",
    "REFRESH_TOKEN_TTL",
    "SCOPES",
    "OAuthBook",
    "OAuthCode",
    "Grant",
]

#: An OAuth code is single-use and expires after 5 minutes unused.
OAUTH_CODE_TTL = 300.0
ACCESS_TOKEN_TTL = 7200
REFRESH_TOKEN_TTL = 30 * 24 * 3600
SCOPES = ("snsapi_base", "snsapi_userinfo")

_TOKEN = re.compile(r"[A-Za-z0-9_-]{32,512}")
_CODE_ALPHABET = string.ascii_letters + string.digits
_PRUNE_ABOVE = 4096
_PROFILE_FIELDS = ("nickname", "headimgurl", "sex", "province", "city", "country", "privilege")
# Region names as /sns/userinfo localises them; other names are sent as they are.
_REGIONS = {
    "China": {"zh_CN": "中国", "zh_TW": "中國", "en": "China"},
    "Guangdong": {"zh_CN": "广东", "zh_TW": "廣東", "en": "Guangdong"},
    "Shenzhen": {"zh_CN": "深圳", "zh_TW": "深圳", "en": "Shenzhen"},
    "Taiwan": {"zh_CN": "台湾", "zh_TW": "臺灣", "en": "Taiwan"},
    "Taipei": {"zh_CN": "台北", "zh_TW": "臺北", "en": "Taipei"},
}


@dataclass
class OAuthCode:
    """A code the authorize page handed to the browser."""

    code: str
    appid: str
    handle: str
    scope: str
    issued_at: float
    used: bool = False


@dataclass(frozen=True)
class Grant:
    """What an access or refresh token stands for, and until when."""

    appid: str
    handle: str
    openid: str
    unionid: str
    scope: str
    expires_at: float


class OAuthBook:
    """The OAuth memory of one fake WeChat (guarded by the state's lock)."""

    def __init__(self, state: WeChatState) -> None:
        self.state = state
        self._codes: dict[str, OAuthCode] = {}
        self._access: dict[str, Grant] = {}
        self._refresh: dict[str, Grant] = {}
        self._profiles: dict[str, dict[str, Any]] = {}
        self._domains: dict[str, tuple[str, ...]] = {}
        state.on_reset(self._forget)

    def __repr__(self) -> str:
        return f"OAuthBook(codes={len(self._codes)}, access_tokens={len(self._access)})"

    def _forget(self) -> None:
        self._codes.clear()
        self._access.clear()
        self._refresh.clear()
        self._profiles.clear()

    # -- what tests call ---------------------------------------------------------
    def authorize(
        self, appid: str | None = None, user: str = "alice", scope: str = "snsapi_base"
    ) -> str:
        """A code for ``user``, as the authorize page gives after "allow"."""
        if scope not in SCOPES:
            raise ValueError(f"scope must be one of {SCOPES}")
        appid = appid or self.state.default_appid
        with self.state.lock:
            self.state.user(appid, user)  # checks the app and the handle
            now = self.state.now()
            if len(self._codes) > _PRUNE_ABOVE:
                self._codes = {
                    c: v for c, v in self._codes.items() if now - v.issued_at <= 2 * OAUTH_CODE_TTL
                }
            code = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(32))
            self._codes[code] = OAuthCode(code, appid, user, scope, now)
            return code

    def set_profile(self, user: str, **fields: Any) -> None:
        """Override ``user``'s OAuth profile: nickname, headimgurl, sex, province, city,
        country (region names in English; known ones are localised by ``lang``), privilege."""
        for name in fields:
            if name not in _PROFILE_FIELDS:
                raise ValueError(f"unknown profile field {name!r}; use {_PROFILE_FIELDS}")
        with self.state.lock:
            self._profiles.setdefault(user, {}).update(fields)

    def allow_domains(self, appid: str, *domains: str) -> None:
        """Only accept ``redirect_uri`` hosts in ``domains`` for ``appid`` (else page error
        10003). With no domains every host is accepted (the default)."""
        self.state.app(appid)
        with self.state.lock:
            self._domains[appid] = tuple(d.lower() for d in domains)

    def tokens_of(self, appid: str, user: str) -> list[str]:
        """Every access and refresh token handed out to ``user`` of ``appid`` (tests only:
        to check that they are kept nowhere they should not be)."""
        with self.state.lock:
            grants = [*self._access.items(), *self._refresh.items()]
        return [t for t, g in grants if g.appid == appid and g.handle == user]

    def domain_allowed(self, appid: str, host: str) -> bool:
        with self.state.lock:
            allowed = self._domains.get(appid)
        return not allowed or host.lower() in allowed

    def profile(self, handle: str, lang: str) -> dict[str, Any]:
        """``handle``'s profile as ``/sns/userinfo`` sends it (without ids)."""
        base = miniprogram.default_profile(handle)
        profile: dict[str, Any] = {
            "nickname": base["nickName"],
            "sex": 0,
            "province": "",
            "city": "",
            "country": "",
            "headimgurl": base["avatarUrl"],
            "privilege": [],
        }
        with self.state.lock:
            profile.update(self._profiles.get(handle, {}))
        lang = lang if lang in ("zh_CN", "zh_TW", "en") else "zh_CN"
        for name in ("province", "city", "country"):
            value = profile[name]
            profile[name] = _REGIONS.get(value, {}).get(lang, value)
        return profile

    # -- what the endpoints call ---------------------------------------------------
    def _new_token(self) -> str:
        return secrets.token_urlsafe(66)

    def _grant_tokens(self, code: OAuthCode, now: float) -> dict[str, Any]:
        account = self.state.user(code.appid, code.handle)
        access, refresh = self._new_token(), self._new_token()
        self._access[access] = Grant(
            code.appid,
            code.handle,
            account.openid,
            account.unionid,
            code.scope,
            now + ACCESS_TOKEN_TTL,
        )
        self._refresh[refresh] = Grant(
            code.appid,
            code.handle,
            account.openid,
            account.unionid,
            code.scope,
            now + REFRESH_TOKEN_TTL,
        )
        body: dict[str, Any] = {
            "access_token": access,
            "expires_in": ACCESS_TOKEN_TTL,
            "refresh_token": refresh,
            "openid": account.openid,
            "scope": code.scope,
        }
        if code.scope == "snsapi_userinfo":
            body["unionid"] = account.unionid
        return body

    def exchange(self, appid: str, code: str) -> dict[str, Any] | int:
        """Use ``code``: the token answer, or WeChat's errcode."""
        with self.state.lock:
            now = self.state.now()
            found = self._codes.get(code)
            if found is None or found.appid != appid:
                return 40029
            if now - found.issued_at > OAUTH_CODE_TTL:
                return 42003
            if found.used:
                return 40163
            found.used = True
            self._prune(now)
            return self._grant_tokens(found, now)

    def refresh(self, appid: str, refresh_token: str) -> dict[str, Any] | int:
        """A new access token for ``refresh_token``, or WeChat's errcode."""
        with self.state.lock:
            now = self.state.now()
            grant = self._refresh.get(refresh_token)
            if grant is None or grant.appid != appid:
                return 40030
            if grant.expires_at <= now:
                return 42002
            access = self._new_token()
            self._access[access] = Grant(
                grant.appid,
                grant.handle,
                grant.openid,
                grant.unionid,
                grant.scope,
                now + ACCESS_TOKEN_TTL,
            )
            return {
                "access_token": access,
                "expires_in": ACCESS_TOKEN_TTL,
                "refresh_token": refresh_token,
                "openid": grant.openid,
                "scope": grant.scope,
            }

    def access(self, access_token: str, openid: str) -> Grant | int:
        """The grant of ``access_token`` if it is valid for ``openid``, or WeChat's errcode."""
        if not _TOKEN.fullmatch(access_token):
            return 40014
        with self.state.lock:
            grant = self._access.get(access_token)
            if grant is None:
                return 40001
            if grant.expires_at <= self.state.now():
                return 42001
        if not hmac.compare_digest(grant.openid.encode(), openid.encode()):
            return 40003
        return grant

    def _prune(self, now: float) -> None:
        if len(self._access) > _PRUNE_ABOVE:
            self._access = {t: g for t, g in self._access.items() if g.expires_at > now}
        if len(self._refresh) > _PRUNE_ABOVE:
            self._refresh = {t: g for t, g in self._refresh.items() if g.expires_at > now}
