"""What ends a web login (official-account OAuth, 网页授权) or a web session, found on
this side: a bad ``state``, a declined consent, a session whose tokens are gone. Import
from :mod:`wafer_py.exceptions`.
"""

from __future__ import annotations

from .core import WaferError, public

__all__ = [
    "WebLoginError",
    "WebSessionExpired",
    "InvalidState",
    "StateExpired",
    "StateReplayed",
    "ConsentDenied",
]


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


public(globals(), __all__)
