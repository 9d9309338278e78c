"""The Wafer protocol's answer to each error: HTTP status, error type, re-login.

The exceptions say what happened (:mod:`wafer_py.exceptions`); this table is the one place
that says how the protocol answers it. :func:`~wafer_py.protocol.error_response` builds the
body from it (``code`` is -1 for a re-login, else the status) and every adapter answers
through that. An error is looked up along its class's MRO, so a subclass of your own gets
its parent's answer; each class of wafer_py has its own row (a test holds that).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import NamedTuple

from .exceptions import (
    AccessTokenExpired,
    AccessTokenUnavailable,
    AvatarNotFound,
    BadBody,
    BadRequest,
    BodyTooLarge,
    CodeAlreadyUsed,
    CodeBlocked,
    CodeExpired,
    ConsentDenied,
    ContentRejected,
    DailyQuotaExceeded,
    DecryptError,
    HeaderTooLarge,
    ImagesUnavailable,
    InvalidAccessToken,
    InvalidAppId,
    InvalidAppSecret,
    InvalidCode,
    InvalidOpenId,
    InvalidProfile,
    InvalidRefreshToken,
    InvalidSession,
    InvalidSignature,
    InvalidState,
    LoginAbandoned,
    LoginFailed,
    LoginQueueTimeout,
    LoginsBusy,
    MalformedEncryptedData,
    MalformedHeader,
    MissingCode,
    MissingCredentials,
    MissingParameter,
    OpenIdMismatch,
    RateLimited,
    RefreshTokenExpired,
    ScopeUnauthorized,
    StaleSessionKey,
    StaleWatermark,
    StateExpired,
    StateReplayed,
    StoreUnavailable,
    UnsupportedImage,
    WaferError,
    WebLoginError,
    WebSessionExpired,
    WeChatAPIError,
    WeChatBusy,
    WeChatError,
    WeChatUnavailable,
    WrongAppId,
)

__all__ = [
    "ERR_LOGIN_FAILED",
    "ERR_INVALID_SESSION",
    "ERR_CHECK_LOGIN_FAILED",
    "Answer",
    "ANSWERS",
    "answer_for",
]

# Protocol error types (the ``error`` field of a Wafer error body).
ERR_LOGIN_FAILED = "ERR_LOGIN_FAILED"
ERR_INVALID_SESSION = "ERR_INVALID_SESSION"
ERR_CHECK_LOGIN_FAILED = "ERR_CHECK_LOGIN_FAILED"


class Answer(NamedTuple):
    """How the protocol answers an error: ``relogin`` makes both clients log in again."""

    status: int
    error: str
    relogin: bool = False


def _check(status: int) -> Answer:
    return Answer(status, ERR_CHECK_LOGIN_FAILED)


def _login(status: int) -> Answer:
    return Answer(status, ERR_LOGIN_FAILED)


_RELOGIN = Answer(401, ERR_INVALID_SESSION, relogin=True)

#: The answer to each error class. Only sessions get the re-login answer: a store outage
#: or data that does not decrypt would send every client into a login loop.
ANSWERS: Mapping[type[WaferError], Answer] = MappingProxyType(
    {
        WaferError: _check(400),
        BadRequest: _check(400),
        MalformedHeader: _check(400),
        HeaderTooLarge: _check(431),
        BadBody: _check(400),
        BodyTooLarge: _check(413),
        InvalidProfile: _check(400),
        ContentRejected: _check(400),
        UnsupportedImage: _check(415),
        ImagesUnavailable: _check(501),  # a missing extra: never a 500 with a traceback
        AvatarNotFound: _check(404),
        LoginFailed: _login(400),
        MissingCode: _login(400),
        LoginsBusy: _login(503),
        LoginQueueTimeout: _login(503),
        LoginAbandoned: _login(499),  # nginx's "client closed request": for the logs
        InvalidSession: _RELOGIN,
        MissingCredentials: _RELOGIN,
        StoreUnavailable: _check(503),
        DecryptError: _check(400),
        MalformedEncryptedData: _check(400),
        StaleSessionKey: _check(422),
        WrongAppId: _check(403),
        OpenIdMismatch: _check(403),
        StaleWatermark: _check(422),
        WeChatError: _login(502),
        WeChatUnavailable: _login(503),
        AccessTokenUnavailable: _login(503),
        WeChatAPIError: _login(502),
        WeChatBusy: _login(503),
        InvalidCode: _login(400),
        CodeAlreadyUsed: _login(400),
        CodeExpired: _login(400),
        CodeBlocked: _login(403),
        RateLimited: _login(429),
        DailyQuotaExceeded: _login(429),
        InvalidAppId: _login(502),
        InvalidAppSecret: _login(502),
        MissingParameter: _login(502),
        InvalidAccessToken: _login(502),
        AccessTokenExpired: _login(502),
        InvalidSignature: _login(502),
        ScopeUnauthorized: _login(403),
        InvalidRefreshToken: _login(401),
        RefreshTokenExpired: _login(401),
        InvalidOpenId: _login(502),
        WebLoginError: _login(400),
        WebSessionExpired: _login(400),
        InvalidState: _login(400),
        StateExpired: _login(400),
        StateReplayed: _login(400),
        ConsentDenied: _login(400),
    }
)


def answer_for(exc: WaferError) -> Answer:
    """The row of ``exc``'s class, or of its nearest ancestor that has one."""
    for cls in type(exc).__mro__:
        if issubclass(cls, WaferError) and cls in ANSWERS:
            return ANSWERS[cls]
    raise AssertionError("unreachable: WaferError has a row")
