"""What asking WeChat can end in: unreachable, or an ``errcode`` named by its own class
(looked up with :func:`wechat_error`, raised only for what WeChat answered). Import from
:mod:`wafer_py.exceptions`.
"""

from __future__ import annotations

from typing import Any, ClassVar

from .core import WaferError, public

__all__ = [
    "WeChatError",
    "WeChatUnavailable",
    "AccessTokenUnavailable",
    "WeChatAPIError",
    "WeChatBusy",
    "InvalidCode",
    "CodeAlreadyUsed",
    "CodeExpired",
    "CodeBlocked",
    "RateLimited",
    "DailyQuotaExceeded",
    "InvalidAppId",
    "InvalidAppSecret",
    "MissingParameter",
    "InvalidAccessToken",
    "AccessTokenExpired",
    "InvalidSignature",
    "ScopeUnauthorized",
    "InvalidRefreshToken",
    "RefreshTokenExpired",
    "InvalidOpenId",
    "wechat_error",
]


class WeChatError(WaferError):
    """Talking to WeChat failed."""

    reason = "wechat_error"
    default_message = "WeChat could not be asked"


class WeChatUnavailable(WeChatError):
    """Network error, timeout, or a body that is not JSON."""

    reason = "wechat_unavailable"
    default_message = "WeChat is unreachable; try again shortly"


class AccessTokenUnavailable(WeChatUnavailable):
    """No ``access_token`` in time: another caller held the refresh lock too long."""

    reason = "access_token_unavailable"
    default_message = "no WeChat access_token could be had in time; try again shortly"


class WeChatAPIError(WeChatError):
    """WeChat answered with a non-zero ``errcode``.

    ``errcode`` and ``errmsg`` are WeChat's (``errmsg`` still carries its ``rid:``
    suffix, useful when asking WeChat support). Branch on the class or ``errcode``,
    never on ``errmsg``.
    """

    errcodes: ClassVar[tuple[int, ...]] = ()
    reason = "wechat_api_error"
    default_message = "WeChat refused the request"

    def __init__(self, errcode: int, errmsg: str = "", message: str | None = None) -> None:
        self.errcode = errcode
        self.errmsg = errmsg
        super().__init__(message or f"{self.default_message} (errcode {errcode})")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(errcode={self.errcode!r}, errmsg={self.errmsg!r})"


class WeChatBusy(WeChatAPIError):
    """-1: WeChat is busy; retry later."""

    errcodes = (-1,)
    reason = "wechat_busy"
    default_message = "WeChat is busy; try again shortly"


class InvalidCode(WeChatAPIError):
    """40029: the code is wrong, expired or was issued for another appid."""

    errcodes = (40029,)
    reason = "invalid_code"
    default_message = "the login code is invalid or expired; call wx.login again"


class CodeAlreadyUsed(InvalidCode):
    """40163: the code was already exchanged (codes are single-use)."""

    errcodes = (40163,)
    reason = "code_used"
    default_message = "the login code was already used; call wx.login again"


class CodeExpired(InvalidCode):
    """42003: an OAuth code expired."""

    errcodes = (42003,)
    reason = "code_expired"
    default_message = "the code has expired"


class CodeBlocked(WeChatAPIError):
    """40226: WeChat blocked the login of a high-risk user."""

    errcodes = (40226,)
    reason = "code_blocked"
    default_message = "WeChat refused this user's login"


class RateLimited(WeChatAPIError):
    """45011: a per-minute quota is used up; retry in the next minute."""

    errcodes = (45011,)
    reason = "rate_limited"
    default_message = "too many logins; try again in a minute"


class DailyQuotaExceeded(RateLimited):
    """45009: the daily quota of this API is used up."""

    errcodes = (45009,)
    reason = "daily_quota"
    default_message = "WeChat's daily quota for this API is used up"


class InvalidAppId(WeChatAPIError):
    """40013: the configured AppID is wrong (an operator error)."""

    errcodes = (40013,)
    reason = "invalid_appid"
    default_message = "the server's AppID is not accepted by WeChat"


class InvalidAppSecret(WeChatAPIError):
    """40125: the configured AppSecret is wrong or was reset (an operator error)."""

    errcodes = (40125,)
    reason = "invalid_appsecret"
    default_message = "the server's AppSecret is not accepted by WeChat"


class MissingParameter(WeChatAPIError):
    """41001/41002/41004/41008/40002/43002/47001: the request to WeChat was malformed."""

    errcodes = (41001, 41002, 41004, 41008, 40002, 43002, 47001)
    reason = "wechat_bad_request"
    default_message = "the request to WeChat was malformed"


class InvalidAccessToken(WeChatAPIError):
    """40001/40014: the access_token is invalid or not the latest."""

    errcodes: ClassVar[tuple[int, ...]] = (40001, 40014)
    reason = "invalid_access_token"
    default_message = "the access_token was rejected"


class AccessTokenExpired(InvalidAccessToken):
    """42001: the access_token has expired."""

    errcodes = (42001,)
    reason = "access_token_expired"
    default_message = "the access_token has expired"


class InvalidSignature(WeChatAPIError):
    """87009: a session_key signature did not check out (the key is stale)."""

    errcodes = (87009, 87008)
    reason = "invalid_signature"
    default_message = "WeChat says the session_key is no longer valid"


class ScopeUnauthorized(WeChatAPIError):
    """48001: the API or OAuth scope is not authorized."""

    errcodes = (48001,)
    reason = "scope_unauthorized"
    default_message = "this API or scope is not authorized"


class InvalidRefreshToken(WeChatAPIError):
    """40030: the OAuth refresh_token is invalid."""

    errcodes = (40030,)
    reason = "invalid_refresh_token"
    default_message = "the refresh_token is invalid; authorize again"


class RefreshTokenExpired(InvalidRefreshToken):
    """42002: the OAuth refresh_token has expired."""

    errcodes = (42002,)
    reason = "refresh_token_expired"
    default_message = "the refresh_token has expired; authorize again"


class InvalidOpenId(WeChatAPIError):
    """40003: the openid is not valid for this token or app."""

    errcodes = (40003,)
    reason = "invalid_openid"
    default_message = "the openid is not valid"


def _errcode_table() -> dict[int, type[WeChatAPIError]]:
    table: dict[int, type[WeChatAPIError]] = {}
    pending: list[type[WeChatAPIError]] = [WeChatAPIError]
    while pending:
        cls = pending.pop()
        for code in cls.errcodes:
            table[code] = cls
        pending.extend(cls.__subclasses__())
    return table


_ERRCODES = _errcode_table()


def wechat_error(errcode: Any, errmsg: Any = "") -> WeChatAPIError:
    """Build the named exception for a WeChat ``errcode`` (an int, or a numeric string).

    Raises :class:`ValueError` for anything else: no errcode is made up (an unreadable one
    is not -1, "busy").
    """
    try:
        code = int(errcode)
    except (TypeError, ValueError):
        raise ValueError("a WeChat errcode is an integer") from None
    cls = _ERRCODES.get(code, WeChatAPIError)
    return cls(code, str(errmsg)[:300])


public(globals(), __all__)
