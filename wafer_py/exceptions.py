"""The exception ladder of wafer_py: what went wrong, never how to answer it.

Every error a client can cause, or that a request can run into, is a :class:`WaferError`.
Each class says what happened: a machine-readable ``reason``, a ``message`` that is safe to
show, and its context (``errcode``/``errmsg`` of a WeChat answer, ``retry_after``...). How
each is answered lives with the adapters: the Wafer protocol's status, error type and
re-login in :mod:`wafer_py.answers`, the web-login page's status in :mod:`wafer_py.web.errors`.

Messages never contain secrets: no ``session_key``, no skey, no AppSecret.

WeChat's own errcodes map to :class:`WeChatAPIError` subclasses, looked up with
:func:`wechat_error` and raised only for what WeChat answered.
"""

from __future__ import annotations

from typing import Any, ClassVar

from .extras import install_hint

__all__ = [
    "WaferError",
    "BadRequest",
    "MalformedHeader",
    "HeaderTooLarge",
    "LoginFailed",
    "MissingCode",
    "LoginsBusy",
    "LoginQueueTimeout",
    "LoginAbandoned",
    "InvalidSession",
    "MissingCredentials",
    "StoreUnavailable",
    "BadBody",
    "BodyTooLarge",
    "InvalidProfile",
    "ContentRejected",
    "UnsupportedImage",
    "ImagesUnavailable",
    "AvatarNotFound",
    "DecryptError",
    "MalformedEncryptedData",
    "StaleSessionKey",
    "WrongAppId",
    "OpenIdMismatch",
    "StaleWatermark",
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
    "WebLoginError",
    "WebSessionExpired",
    "InvalidState",
    "StateExpired",
    "StateReplayed",
    "ConsentDenied",
    "wechat_error",
]


def __getattr__(name: str) -> Any:
    # The wire's error types (ERR_LOGIN_FAILED...) moved to wafer_py.answers with the
    # rest of the protocol's answers; importable here still, for code written before.
    if name.startswith("ERR_"):
        from . import answers

        return getattr(answers, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class WaferError(Exception):
    """Base class of every wafer_py error.

    ``reason`` names what happened, for machines (each class has its own); ``message`` is
    safe to show to a client: it never holds a secret.
    """

    reason: ClassVar[str] = "error"
    #: Seconds after which a retry may get past this error, where that is known.
    retry_after: ClassVar[int | None] = None
    default_message: ClassVar[str] = "request failed"

    def __init__(self, message: str | None = None) -> None:
        self.message = message or self.default_message
        super().__init__(self.message)


class BadRequest(WaferError):
    """The request is malformed: a header or a body no legitimate client sends.

    The parent of :class:`MalformedHeader` and :class:`BadBody`; wafer_py raises those.
    """

    reason = "bad_request"
    default_message = "the request is malformed"


class MalformedHeader(BadRequest):
    """A Wafer header is malformed: not ASCII, or not of the expected form."""

    reason = "bad_header"
    default_message = "malformed Wafer header"


class BadBody(BadRequest):
    """A route's request body is not what it expects (not JSON, a field missing...)."""

    reason = "bad_body"
    default_message = "the request body is malformed"


class BodyTooLarge(BadBody):
    """A request body that wafer_py reads itself is larger than its limit.

    Refused before it is read whole (:mod:`wafer_py.body`).
    """

    reason = "body_too_large"
    default_message = "the request body is too large"


class InvalidProfile(BadBody):
    """A profile the user filled in breaks a rule: an empty, too long or control-character
    nickname, an avatar URL that is neither https nor one of this server's avatars."""

    reason = "invalid_profile"
    default_message = "the profile is invalid"


class ContentRejected(InvalidProfile):
    """WeChat's content check (``msg_sec_check``) judged a nickname risky."""

    reason = "content_rejected"
    default_message = "the nickname did not pass WeChat's content check"


class UnsupportedImage(BadBody):
    """An uploaded avatar is no PNG, JPEG, WebP or GIF (judged by its bytes, not its name or
    declared type), does not decode, or has more pixels than an avatar may."""

    reason = "unsupported_image"
    default_message = "the avatar is not a PNG, JPEG, WebP or GIF image"


class ImagesUnavailable(WaferError):
    """Avatar uploads need Pillow (and on Starlette python-multipart), which is not
    installed: the ``images`` extra."""

    reason = "images_unavailable"
    default_message = "avatar uploads need Pillow: " + install_hint("images")


class AvatarNotFound(WaferError):
    """No avatar is stored under the key asked for."""

    reason = "avatar_not_found"
    default_message = "no such avatar"


class HeaderTooLarge(MalformedHeader):
    """A Wafer header is larger than any legitimate value."""

    reason = "header_too_large"
    default_message = "a Wafer header is too large"


class LoginFailed(WaferError):
    """A login request could not be completed."""

    reason = "login_failed"
    default_message = "login failed"


class MissingCode(LoginFailed):
    """A login request without ``X-WX-Code``."""

    reason = "missing_code"
    default_message = "the X-WX-Code header is required to log in"


class LoginsBusy(LoginFailed):
    """Every login slot is taken and the queue of waiting logins is full: answered at
    once (``max_queued_logins``), so a burst cannot make later logins wait behind it."""

    reason = "logins_busy"
    retry_after = 1
    default_message = "too many logins are in progress; try again shortly"


class LoginQueueTimeout(LoginsBusy):
    """A login waited for a slot until its deadline (``login_timeout``, counted from its
    arrival): it never reached WeChat."""

    reason = "login_queue_timeout"
    default_message = "the login waited too long for its turn; try again shortly"


class LoginAbandoned(LoginFailed):
    """The client hung up before its login reached WeChat, so WeChat is not called."""

    reason = "client_disconnected"
    default_message = "the client disconnected before the login reached WeChat"


class InvalidSession(WaferError):
    """The session is unknown, expired or revoked: the client must log in again."""

    reason = "invalid_session"
    default_message = "the session is unknown, expired or revoked; log in again"


class MissingCredentials(InvalidSession):
    """A route that needs login was called without session headers."""

    reason = "missing_session"
    default_message = "this request needs a session; log in first"


class StoreUnavailable(WaferError):
    """The session store cannot be reached: not a session problem, the session may be good.

    ``detail`` says what the driver reported, for the operator's log; it is never part of
    the answer to the client.
    """

    reason = "store_unavailable"
    default_message = "the session store is unavailable; try again shortly"

    def __init__(self, message: str | None = None, *, detail: str = "") -> None:
        super().__init__(message)
        self.detail = detail


class DecryptError(WaferError):
    """``encryptedData`` could not be decrypted or did not check out.

    The parent of every decrypt failure, told apart by class: malformed input, a stale
    ``session_key``, and the payload's checks (watermark appid and age, openId).
    """

    reason = "decrypt_failed"
    default_message = "encryptedData could not be decrypted"


class MalformedEncryptedData(DecryptError):
    """Bad base64, a wrong IV or key length, or a ciphertext that is not whole blocks."""

    reason = "malformed_encrypted_data"
    default_message = "encryptedData or iv is malformed"


class StaleSessionKey(DecryptError):
    """The ciphertext does not decrypt under the stored ``session_key``.

    Almost always the data was encrypted under a newer ``session_key``: WeChat may
    rotate it on every ``wx.login``. Send data that came from the same login.
    """

    reason = "stale_session_key"
    default_message = (
        "encryptedData does not decrypt with this session's key; the session_key was "
        "probably rotated by a later wx.login: log in again and send fresh data"
    )


class WrongAppId(DecryptError):
    """The watermark's ``appid`` is not this mini-program's."""

    reason = "wrong_appid"
    default_message = "encryptedData was issued for another appid"


class OpenIdMismatch(DecryptError):
    """The decrypted ``openId`` is not the session's user."""

    reason = "openid_mismatch"
    default_message = "encryptedData belongs to another user"


class StaleWatermark(DecryptError):
    """The watermark's timestamp is older than the configured maximum age."""

    reason = "stale_watermark"
    default_message = "encryptedData is too old"


# --------------------------------------------------------------------------- WeChat


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


# ---------------------------------------------------------------- web OAuth (网页授权)


class WebLoginError(WaferError):
    """A web login (official-account OAuth) cannot be completed or kept: the browser's
    return from WeChat's authorize page cannot be accepted, or the web session is over."""

    reason = "web_login_failed"
    default_message = "the WeChat login could not be completed; please try again"


class WebSessionExpired(WebLoginError):
    """The web session is over: its tokens are gone from the store, or no longer open
    under the configured keys. The browser logs in through WeChat again.

    A local finding, not WeChat's answer: a refresh token WeChat refuses is
    :class:`InvalidRefreshToken` (40030) or :class:`RefreshTokenExpired` (42002).
    """

    reason = "web_session_expired"
    default_message = "the web session is over; log in again"


class InvalidState(WebLoginError):
    """The OAuth ``state`` is missing, garbled, tampered with, or not for this callback."""

    reason = "invalid_state"
    default_message = "this login link is invalid; please start again"


class StateExpired(InvalidState):
    """The OAuth ``state`` is older than its maximum age."""

    reason = "state_expired"
    default_message = "this login link has expired; please start again"


class StateReplayed(InvalidState):
    """The OAuth ``state`` was already used: each authorize round trip is single-use."""

    reason = "state_replayed"
    default_message = "this login link was already used; please start again"


class ConsentDenied(WebLoginError):
    """WeChat sent the browser back without a code: the user declined, or the URL lost it."""

    reason = "consent_denied"
    default_message = "WeChat did not authorize this login (the request was declined)"


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
