"""The web login's answer to each error: the HTTP status of its error page.

The pages' own table, apart from the protocol's (:mod:`wafer_py.answers`): a browser gets
400 for anything on its side, never 401/403, which the mini-program middleware would swap
for its JSON invalid-session answer; WeChat or store trouble gets its 5xx. Looked up along
the error's MRO, like the protocol's; each class of wafer_py has its own row.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from ..exceptions import (
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

__all__ = ["PAGE_STATUS", "page_status"]

#: The status of the error page for each error class.
PAGE_STATUS: Mapping[type[WaferError], int] = MappingProxyType(
    {
        WaferError: 400,
        BadRequest: 400,
        MalformedHeader: 400,
        HeaderTooLarge: 400,
        BadBody: 400,
        BodyTooLarge: 400,
        InvalidProfile: 400,
        ContentRejected: 400,
        UnsupportedImage: 400,
        ImagesUnavailable: 501,
        AvatarNotFound: 400,
        LoginFailed: 400,
        MissingCode: 400,
        LoginsBusy: 503,
        LoginQueueTimeout: 503,
        LoginAbandoned: 400,
        InvalidSession: 400,
        MissingCredentials: 400,
        StoreUnavailable: 503,
        DecryptError: 400,
        MalformedEncryptedData: 400,
        StaleSessionKey: 400,
        WrongAppId: 400,
        OpenIdMismatch: 400,
        StaleWatermark: 400,
        WeChatError: 502,
        WeChatUnavailable: 503,
        AccessTokenUnavailable: 503,
        WeChatAPIError: 502,
        WeChatBusy: 503,
        InvalidCode: 400,
        CodeAlreadyUsed: 400,
        CodeExpired: 400,
        CodeBlocked: 400,
        RateLimited: 400,
        DailyQuotaExceeded: 400,
        InvalidAppId: 502,
        InvalidAppSecret: 502,
        MissingParameter: 502,
        InvalidAccessToken: 502,
        AccessTokenExpired: 502,
        InvalidSignature: 502,
        ScopeUnauthorized: 400,
        InvalidRefreshToken: 400,
        RefreshTokenExpired: 400,
        InvalidOpenId: 502,
        WebLoginError: 400,
        WebSessionExpired: 400,
        InvalidState: 400,
        StateExpired: 400,
        StateReplayed: 400,
        ConsentDenied: 400,
    }
)


def page_status(exc: WaferError) -> int:
    """The status of ``exc``'s class, or of its nearest ancestor that has one."""
    for cls in type(exc).__mro__:
        if issubclass(cls, WaferError) and cls in PAGE_STATUS:
            return PAGE_STATUS[cls]
    raise AssertionError("unreachable: WaferError has a row")
