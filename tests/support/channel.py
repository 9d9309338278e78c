"""A test-only invalidation channel and a memory store that offers it.

Not a stand-in for Redis or PostgreSQL: a driver of the
:class:`~wafer_py.stores.invalidation.InvalidationChannel` interface, so that the session
cache's core can be tested (and benchmarked in process) without a server. The test
decides when a channel is live and when the store's changes are delivered.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from wafer_py.models import Session, User
from wafer_py.stores.invalidation import ALL, Invalidation
from wafer_py.stores.memory import MemoryStore


class ManualChannel:
    """An :class:`InvalidationChannel` whose events a test sends by hand."""

    def __init__(self, store: ChannelStore | None = None, *, live_on_start: bool = True) -> None:
        self.store = store
        self.live_on_start = live_on_start
        self.on_change: Callable[[Invalidation], None] | None = None
        self.on_state: Callable[[bool], None] | None = None
        self.starts = 0
        self.closed = False

    def start(
        self, on_change: Callable[[Invalidation], None], on_state: Callable[[bool], None]
    ) -> None:
        self.starts += 1
        self.on_change = on_change
        self.on_state = on_state
        if self.live_on_start:
            on_state(True)

    def close(self) -> None:
        self.closed = True
        if self.store is not None and self in self.store.channels:
            self.store.channels.remove(self)

    @property
    def started(self) -> bool:
        return self.on_change is not None

    def up(self) -> None:
        assert self.on_state is not None, "the channel was not started"
        self.on_state(True)

    def down(self) -> None:
        assert self.on_state is not None, "the channel was not started"
        self.on_state(False)

    def send(self, change: Invalidation) -> None:
        if self.on_change is not None and not self.closed:
            self.on_change(change)


class ChannelStore(MemoryStore):
    """A :class:`MemoryStore` that offers :class:`ManualChannel` s and reports its own
    writes: at once to every started channel (``deliver="now"``), or kept in
    :attr:`pending` until the test calls :meth:`deliver` (a channel's delay).

    :attr:`reads` counts ``find_login`` calls (a cache hit makes none)."""

    def __init__(self, *, deliver: str = "now", live_on_start: bool = True) -> None:
        super().__init__()
        self.mode = deliver
        self.live_on_start = live_on_start
        self.channels: list[ManualChannel] = []
        self.pending: list[Invalidation] = []
        self.reads = 0
        self.touches = 0

    def invalidation_channel(self) -> ManualChannel:
        channel = ManualChannel(self, live_on_start=self.live_on_start)
        self.channels.append(channel)
        return channel

    def changed(self, change: Invalidation) -> None:
        if self.mode == "now":
            for channel in list(self.channels):
                channel.send(change)
        else:
            self.pending.append(change)

    def deliver(self, count: int | None = None) -> None:
        """Send the first ``count`` pending changes (all by default) to every channel."""
        count = len(self.pending) if count is None else count
        batch, self.pending = self.pending[:count], self.pending[count:]
        for change in batch:
            for channel in list(self.channels):
                channel.send(change)

    # -- reads ----------------------------------------------------------------
    def find_login(self, **kwargs: Any) -> tuple[Session, User | None] | None:
        self.reads += 1
        return super().find_login(**kwargs)

    # -- writes report what they changed --------------------------------------
    def ensure_user(
        self, openid: str, *, unionid: str | None, profile: dict[str, Any], now: float
    ) -> User:
        before = self.get_user(openid)
        user = super().ensure_user(openid, unionid=unionid, profile=profile, now=now)
        if before is not None and before != user:
            self.changed(Invalidation("user", openid))
        return user

    def update_profile(
        self, openid: str, profile: dict[str, Any], *, now: float, unionid: str | None = None
    ) -> User | None:
        user = super().update_profile(openid, profile, now=now, unionid=unionid)
        self.changed(Invalidation("user", openid))
        return user

    def update_phone(self, openid: str, phone: str | None, *, now: float) -> User | None:
        user = super().update_phone(openid, phone, now=now)
        self.changed(Invalidation("user", openid))
        return user

    def touch_session(self, session_id: str, *, last_seen: float, expires_at: float) -> None:
        self.touches += 1
        super().touch_session(session_id, last_seen=last_seen, expires_at=expires_at)

    def reseal_session(self, session_id: str, sealed_session_key: str, *, openid: str) -> bool:
        found = super().reseal_session(session_id, sealed_session_key, openid=openid)
        self.changed(Invalidation("session", session_id))
        return found

    def revoke_session(self, session_id: str) -> bool:
        found = super().revoke_session(session_id)
        self.changed(Invalidation("session", session_id))
        return found

    def revoke_user(self, openid: str) -> int:
        count = super().revoke_user(openid)
        self.changed(Invalidation("user", openid))
        return count

    def purge_expired(self, now: float, *, limit: int | None = None) -> int:
        count = super().purge_expired(now, limit=limit)
        if count:
            self.changed(ALL)
        return count
