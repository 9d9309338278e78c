"""Official-account web OAuth (网页授权): WeChat's ``/sns`` OAuth APIs, and their memory.

* :class:`OAuthBook` keeps codes, access tokens (7200 s), refresh tokens (30 days) and
  per-user profile overrides, on the fake's clock, so ``fake.advance(7201)`` expires a
  token. ``fake.oauth.authorize(...)`` mints a code as if the user had allowed.
* ``GET /sns/oauth2/access_token``, ``/sns/oauth2/refresh_token``, ``/sns/userinfo`` and
  ``/sns/auth`` answer with WeChat's errcodes: 40029 unknown code (or another app's),
  40163 code used, 42003 code expired (5 minutes), 40030 / 42002 refresh token invalid /
  expired, 40014 malformed access token, 40001 unknown one, 42001 expired one, 40003
  openid not the token's, 48001 userinfo without ``snsapi_userinfo``, 40013 / 40125 wrong
  AppID / AppSecret, 41001/41002/41003/41004/41008/41009 missing parameters, 40002 wrong
  grant_type.
* The browser side (the authorize and consent pages) is in :mod:`.oauthpage`.

Refreshing hands back the same refresh token and does not extend its 30 days; earlier
access tokens stay valid until their own expiry. ``/sns/userinfo`` localises region names
by ``lang`` (``zh_CN``, ``zh_TW``, ``en``; anything else reads as ``zh_CN``), though users
have no region unless a test sets one (WeChat stopped sending them in 2021).
"""

from __future__ import annotations

import hmac
import re
import secrets
import string
from dataclasses import dataclass
from typing import Any

from . import miniprogram, oauthpage
from .errors import errmsg_for, error_response
from .server import Request, Response, Router
from .state import WeChatState

__all__ = [
    "ACCESS_TOKEN",
    "REFRESH_TOKEN",
    "USERINFO",
    "AUTH",
    "OAUTH_CODE_TTL",
    "ACCESS_TOKEN_TTL",
    "REFRESH_TOKEN_TTL",
    "SCOPES",
    "OAuthBook",
    "register",
]

ACCESS_TOKEN = "/sns/oauth2/access_token"  # noqa: S105 - a path, not a secret
REFRESH_TOKEN = "/sns/oauth2/refresh_token"  # noqa: S105 - a path
USERINFO = "/sns/userinfo"
AUTH = "/sns/auth"

#: An OAuth code is single-use and expires after 5 minutes unused.
OAUTH_CODE_TTL = 300.0
ACCESS_TOKEN_TTL = 7200
REFRESH_TOKEN_TTL = 30 * 24 * 3600
SCOPES = ("snsapi_base", "snsapi_userinfo")

_ERRMSGS = {
    40003: "invalid openid",
    40014: "invalid access_token",
    40030: "invalid refresh_token",
    41001: "access_token missing",
    41003: "refresh_token missing",
    41009: "missing openid",
    42002: "refresh_token timeout",
    42003: "code timeout",
}
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


def _error(errcode: int, now: float) -> Response:
    return error_response(errcode, _ERRMSGS.get(errcode) or errmsg_for(errcode), now)


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


# ------------------------------------------------------------------------- endpoints


def _app_error(state: WeChatState, appid: str, secret: str | None, now: float) -> int | None:
    app = state.apps.get(appid)
    if app is None:
        return 40013
    if secret is not None and not hmac.compare_digest(secret.encode(), app.secret.encode()):
        return 40125
    return None


def access_token(book: OAuthBook, request: Request) -> Response:
    """``GET /sns/oauth2/access_token?appid&secret&code&grant_type=authorization_code``."""
    query, now = request.query, book.state.now()
    appid, secret, code = query.get("appid", ""), query.get("secret", ""), query.get("code", "")
    for missing, errcode in ((appid, 41002), (secret, 41004), (code, 41008)):
        if not missing:
            return _error(errcode, now)
    if query.get("grant_type") != "authorization_code":
        return _error(40002, now)
    failed = _app_error(book.state, appid, secret, now)
    if failed is not None:
        return _error(failed, now)
    answer = book.exchange(appid, code)
    return _error(answer, now) if isinstance(answer, int) else Response.json(answer)


def refresh_token(book: OAuthBook, request: Request) -> Response:
    """``GET /sns/oauth2/refresh_token?appid&grant_type=refresh_token&refresh_token``."""
    query, now = request.query, book.state.now()
    appid, token = query.get("appid", ""), query.get("refresh_token", "")
    if not appid:
        return _error(41002, now)
    if not token:
        return _error(41003, now)
    if query.get("grant_type") != "refresh_token":
        return _error(40002, now)
    failed = _app_error(book.state, appid, None, now)
    if failed is not None:
        return _error(failed, now)
    answer = book.refresh(appid, token)
    return _error(answer, now) if isinstance(answer, int) else Response.json(answer)


def _checked_grant(book: OAuthBook, request: Request) -> Grant | Response:
    query, now = request.query, book.state.now()
    token, openid = query.get("access_token", ""), query.get("openid", "")
    if not token:
        return _error(41001, now)
    if not openid:
        return _error(41009, now)
    grant = book.access(token, openid)
    return _error(grant, now) if isinstance(grant, int) else grant


def userinfo(book: OAuthBook, request: Request) -> Response:
    """``GET /sns/userinfo?access_token&openid&lang``: needs scope ``snsapi_userinfo``."""
    grant = _checked_grant(book, request)
    if isinstance(grant, Response):
        return grant
    if grant.scope != "snsapi_userinfo":
        return _error(48001, book.state.now())
    profile = book.profile(grant.handle, request.query.get("lang", "zh_CN"))
    return Response.json({"openid": grant.openid, **profile, "unionid": grant.unionid})


def auth(book: OAuthBook, request: Request) -> Response:
    """``GET /sns/auth?access_token&openid``: ``{"errcode": 0, "errmsg": "ok"}`` if valid."""
    grant = _checked_grant(book, request)
    if isinstance(grant, Response):
        return grant
    return Response.json({"errcode": 0, "errmsg": "ok"})


def register(router: Router, state: WeChatState) -> OAuthBook:
    """Add the web OAuth endpoints and pages to ``router``; return their memory."""
    book = OAuthBook(state)
    router.add("GET", ACCESS_TOKEN, lambda request: access_token(book, request))
    router.add("GET", REFRESH_TOKEN, lambda request: refresh_token(book, request))
    router.add("GET", USERINFO, lambda request: userinfo(book, request))
    router.add("GET", AUTH, lambda request: auth(book, request))
    oauthpage.register(router, book)
    return book
