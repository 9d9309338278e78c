"""The exception ladder of wafer_py: what went wrong, never how to answer it.

Every error a client can cause, or that a request can run into, is a :class:`WaferError`.
Each class says what happened: a machine-readable ``reason``, a ``message`` that is safe to
show, and its context (``errcode``/``errmsg`` of a WeChat answer, ``retry_after``...). How
each is answered lives with the adapters: the Wafer protocol's status, error type and
re-login in :mod:`wafer_py.answers`, the web-login page's status in :mod:`wafer_py.web.errors`.

Messages never contain secrets: no ``session_key``, no skey, no AppSecret.

WeChat's own errcodes map to :class:`WeChatAPIError` subclasses, looked up with
:func:`wechat_error` and raised only for what WeChat answered.

The classes are written in three wings (``wafer_py._errors``: ``core`` for requests,
logins, sessions, stores and decryption; ``wechat``; ``web``) and all named here: import
them from this module, where their ``__module__`` (and so a pickle or a traceback) points.
"""

from __future__ import annotations

from typing import Any

from ._errors.core import (
    AvatarNotFound,
    BadBody,
    BadRequest,
    BodyTooLarge,
    ContentRejected,
    DecryptError,
    HeaderTooLarge,
    ImagesUnavailable,
    InvalidProfile,
    InvalidSession,
    LoginAbandoned,
    LoginFailed,
    LoginQueueTimeout,
    LoginsBusy,
    MalformedEncryptedData,
    MalformedHeader,
    MissingCode,
    MissingCredentials,
    OpenIdMismatch,
    StaleSessionKey,
    StaleWatermark,
    StoreUnavailable,
    UnsupportedImage,
    WaferError,
    WrongAppId,
)
from ._errors.web import (
    ConsentDenied,
    InvalidState,
    StateExpired,
    StateReplayed,
    WebLoginError,
    WebSessionExpired,
)
from ._errors.wechat import (
    AccessTokenExpired,
    AccessTokenUnavailable,
    CodeAlreadyUsed,
    CodeBlocked,
    CodeExpired,
    DailyQuotaExceeded,
    InvalidAccessToken,
    InvalidAppId,
    InvalidAppSecret,
    InvalidCode,
    InvalidOpenId,
    InvalidRefreshToken,
    InvalidSignature,
    MissingParameter,
    RateLimited,
    RefreshTokenExpired,
    ScopeUnauthorized,
    WeChatAPIError,
    WeChatBusy,
    WeChatError,
    WeChatUnavailable,
    wechat_error,
)

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
