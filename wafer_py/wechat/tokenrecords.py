"""What the ``access_token`` cache reads and writes: a token as WeChat hands it out
(:class:`AccessToken`), what fetches it (:class:`TokenSource`), a token as the cache keeps it
in the store (:class:`CachedToken`, JSON), and the record of forced refreshes with their
back-off. Plain values and store entries, no locking: the lock-and-fetch protocol that uses
them is :class:`~wafer_py.wechat.tokens.AccessTokenCache`, which re-exports these names.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from ..stores.entries import EntryStore

__all__ = ["AccessToken", "CachedToken", "TokenSource", "FORCE_BACKOFF", "MAX_FORCE_BACKOFF"]

#: Seconds after a forced refresh before the next may be forced; doubles with each
#: force in a streak, up to :data:`MAX_FORCE_BACKOFF`. A day without a force ends it.
FORCE_BACKOFF = 60.0
MAX_FORCE_BACKOFF = 7200.0
_DAY = 86400.0


@dataclass(frozen=True)
class AccessToken:
    """A token as WeChat hands it out: the token and its lifetime in seconds."""

    access_token: str = field(repr=False)
    expires_in: float


@dataclass(frozen=True)
class CachedToken:
    """A token in the cache, with when it expires and when it is due for refresh."""

    access_token: str = field(repr=False)
    expires_at: float
    refresh_at: float
    fetched_at: float
    #: Until when a refusal of this token is not taken to WeChat again (0: no such
    #: wait): WeChat handed it back after refusing it, and the next force is not due.
    retry_at: float = 0.0

    def to_json(self) -> str:
        data = {
            "access_token": self.access_token,
            "expires_at": self.expires_at,
            "refresh_at": self.refresh_at,
            "fetched_at": self.fetched_at,
        }
        if self.retry_at:
            data["retry_at"] = self.retry_at
        return json.dumps(data)

    @classmethod
    def from_json(cls, text: str) -> CachedToken | None:
        """Parse a cache entry; ``None`` for anything that is not one (treated as empty)."""
        try:
            data = json.loads(text)
            token = data["access_token"]
            values = [float(data[k]) for k in ("expires_at", "refresh_at", "fetched_at")]
            values.append(float(data.get("retry_at", 0.0)))
        except (ValueError, TypeError, KeyError, AttributeError):
            return None
        if not isinstance(token, str) or not token:
            return None
        return cls(token, *values)


class TokenSource(Protocol):
    """What fetches tokens from WeChat (:class:`~wafer_py.wechat.WeChatClient` does)."""

    @property
    def appid(self) -> str: ...

    def fetch_access_token(
        self, *, stable: bool = True, force_refresh: bool = False
    ) -> AccessToken: ...


# -- forced refreshes: the entry ``key`` holds {"at", "streak"} for a day ----------------


def _forces(store: EntryStore, key: str, clock: Callable[[], float]) -> tuple[float, int]:
    """When the last forced refresh was made, and how many in a row (0 if none)."""
    raw = store.get_entry(key, now=clock())
    try:
        data = json.loads(raw) if raw is not None else {}
        return float(data.get("at", 0.0)), int(data.get("streak", 0))
    except (ValueError, TypeError, AttributeError):
        return 0.0, 0


def next_force_at(store: EntryStore, key: str, clock: Callable[[], float]) -> float:
    """When the next forced refresh is due (0: now; no force in the last day)."""
    at, streak = _forces(store, key, clock)
    if streak <= 0:
        return 0.0
    return at + min(FORCE_BACKOFF * 2.0 ** (streak - 1), MAX_FORCE_BACKOFF)


def record_force(store: EntryStore, key: str, clock: Callable[[], float]) -> None:
    """Count a forced refresh: one more in the streak, or the first after a quiet day."""
    now = clock()
    at, streak = _forces(store, key, clock)
    streak = streak + 1 if streak and now - at < _DAY else 1
    entry = json.dumps({"at": now, "streak": streak})
    store.set_entry(key, entry, expires_at=now + _DAY)
