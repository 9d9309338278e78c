"""The ladder's root, and what a request to this server can run into: a malformed request,
a failed login, an invalid session, a store that cannot be reached, data that does not
decrypt. Import from :mod:`wafer_py.exceptions`.
"""

from __future__ import annotations

from typing import ClassVar

from ..extras import install_hint

__all__ = [
    "WaferError",
    "BadRequest",
    "MalformedHeader",
    "BadBody",
    "BodyTooLarge",
    "InvalidProfile",
    "ContentRejected",
    "UnsupportedImage",
    "ImagesUnavailable",
    "AvatarNotFound",
    "HeaderTooLarge",
    "LoginFailed",
    "MissingCode",
    "LoginsBusy",
    "LoginQueueTimeout",
    "LoginAbandoned",
    "InvalidSession",
    "MissingCredentials",
    "StoreUnavailable",
    "DecryptError",
    "MalformedEncryptedData",
    "StaleSessionKey",
    "WrongAppId",
    "OpenIdMismatch",
    "StaleWatermark",
    "public",
]


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


def public(names: dict[str, object], exported: list[str]) -> None:
    """Name ``exported`` as members of :mod:`wafer_py.exceptions`, the one place users
    import them from: tracebacks and logs read ``wafer_py.exceptions.InvalidCode``, and
    pickles point there, whichever module of the ladder defines the class."""
    for name in exported:
        names[name].__module__ = "wafer_py.exceptions"


public(globals(), __all__[:-1])
