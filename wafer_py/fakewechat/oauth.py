"""Official-account web OAuth (网页授权): WeChat's ``/sns`` OAuth APIs.

* ``GET /sns/oauth2/access_token``, ``/sns/oauth2/refresh_token``, ``/sns/userinfo`` and
  ``/sns/auth`` answer with WeChat's errcodes: 40029 unknown code (or another app's),
  40163 code used, 42003 code expired (5 minutes), 40030 / 42002 refresh token invalid /
  expired, 40014 malformed access token, 40001 unknown one, 42001 expired one, 40003
  openid not the token's, 48001 userinfo without ``snsapi_userinfo``, 40013 / 40125 wrong
  AppID / AppSecret, 41001/41002/41003/41004/41008/41009 missing parameters, 40002 wrong
  grant_type.
* Their memory, :class:`OAuthBook` (codes, access tokens of 7200 s, refresh tokens of 30
  days, profile overrides, on the fake's clock), is in :mod:`.oauthbook`; its names are
  importable from here too. ``fake.oauth.authorize(...)`` mints a code as if the user had
  allowed.
* The browser side (the authorize and consent pages) is in :mod:`.oauthpage`.

Refreshing hands back the same refresh token and does not extend its 30 days; earlier
access tokens stay valid until their own expiry. ``/sns/userinfo`` localises region names
by ``lang`` (``zh_CN``, ``zh_TW``, ``en``; anything else reads as ``zh_CN``), though users
have no region unless a test sets one (WeChat stopped sending them in 2021).
"""

from __future__ import annotations

import hmac

from . import oauthpage
from .errors import errmsg_for, error_response
from .oauthbook import (
    ACCESS_TOKEN_TTL,
    OAUTH_CODE_TTL,
    REFRESH_TOKEN_TTL,
    SCOPES,
    Grant,
    OAuthBook,
)
from .oauthbook import OAuthCode as OAuthCode
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


def _error(errcode: int, now: float) -> Response:
    return error_response(errcode, _ERRMSGS.get(errcode) or errmsg_for(errcode), now)


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
