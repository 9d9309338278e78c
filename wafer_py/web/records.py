"""What the web login keeps in the store's entries, and under which keys.

The store sees hashes of the random ids the browser holds (a web-session id, a
confirmation token), never the ids themselves; the OAuth tokens in a record are sealed
by the caller with the record's key as context, so a record copied under another key
does not open.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass
from typing import Any, ClassVar, TypeVar

__all__ = [
    "SessionRecord",
    "PendingLogin",
    "session_key",
    "pending_key",
    "is_random",
    "usable_nonce",
    "REFRESH_TTL",
]

#: WeChat's refresh_token lifetime: a web session lasts at most this long.
REFRESH_TTL = 30 * 24 * 3600
_SESSION_PREFIX = "wafer-web:"
_PENDING_PREFIX = "wafer-web-pending:"
_RANDOM = re.compile(r"[A-Za-z0-9_-]{22,86}")  # token_urlsafe(16..64)

_R = TypeVar("_R", bound="_Record")


class _Record:
    """JSON in and out; a record that does not parse is no record."""

    __dataclass_fields__: ClassVar[dict[str, Any]]  # each subclass is a dataclass

    def dumps(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def loads(cls: type[_R], text: str) -> _R | None:
        try:
            return cls(**json.loads(text))
        except (ValueError, TypeError):
            return None


@dataclass(frozen=True)
class SessionRecord(_Record):
    """A web session's server-side record (tokens sealed)."""

    openid: str
    scope: str
    access: str
    access_expires_at: float
    refresh: str
    refresh_expires_at: float


@dataclass(frozen=True)
class PendingLogin(_Record):
    """A login waiting for its user's confirmation (tokens sealed)."""

    appid: str
    browser: str  # hex digest of the nonce cookie of the browser shown the page
    next: str
    openid: str
    scope: str
    unionid: str | None
    nickname: str
    avatar: str
    access: str
    access_expires_at: float
    refresh: str


def session_key(session_id: str) -> str:
    """The entry key of the web session whose cookie carries ``session_id``."""
    return _SESSION_PREFIX + hashlib.sha256(session_id.encode()).hexdigest()


def pending_key(token: str) -> str:
    """The entry key of the waiting login whose confirmation form carries ``token``."""
    return _PENDING_PREFIX + hashlib.sha256(token.encode()).hexdigest()


def is_random(value: str) -> bool:
    """Whether ``value`` looks like a random id this package made."""
    return bool(_RANDOM.fullmatch(value))


def usable_nonce(nonce: str | None) -> str:
    """``nonce`` if it looks like a browser nonce this package made, else ``""``."""
    return nonce if nonce and is_random(nonce) else ""
