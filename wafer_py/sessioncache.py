"""A per-process cache of validated sessions, kept exact by the store's invalidations.

A validated request asks the store for its session and user; with a shared store that is
a round trip per request. :class:`SessionCache` keeps the store's answers (the
``(Session, User)`` pair, never an skey) for the sessions this process validated, and
forgets them when the store's :class:`~wafer_py.stores.invalidation.InvalidationChannel`
reports a change made by any process (issue #17).

What keeps it exact:

* It is used only while the channel is live: on ``on_state(False)`` every lookup misses
  (the store answers, as without a cache) until ``on_state(True)``; both empty it.
* A fill takes a :meth:`~SessionCache.token` *before* the store read and is kept only if
  no invalidation of that session, its user, or everything arrived since: a revocation
  that races the read never leaves a stale entry.
* The caller (:meth:`wafer_py.auth.WaferAuth.validation`) checks the expiry, the absolute
  cap and the skey on every hit, and writes the touch to the store as without a cache.

The channel is started on first use (in the process that serves: a server that forks
after building the app gets one channel per worker), and closed by :meth:`close`.
Thread-safe (WSGI threads, the channel's thread) and loop-safe: every critical section is
a few dictionary operations under a lock, with no I/O and no ``await``.
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from collections import OrderedDict, deque
from typing import TYPE_CHECKING, Literal

from .stores.invalidation import ALL, Invalidation

if TYPE_CHECKING:
    from .models import Session, User
    from .stores.base import SessionStore
    from .stores.invalidation import InvalidationChannel

__all__ = ["SessionCache", "CacheKey"]

logger = logging.getLogger("wafer_py")

#: What a request looks a session up by: ``("v1", session id)`` or ``("v2", the skey's
#: keyed hash under the newest secret key)``.
CacheKey = tuple[Literal["v1", "v2"], str]

#: Invalidations remembered for fills in flight; a fill older than all of them is dropped.
HISTORY = 4096


class SessionCache:
    """Validated ``(Session, User)`` pairs of one process, at most ``max_entries`` (LRU).

    Made by :meth:`for_store`, which gives ``None`` for a store without an invalidation
    channel (the memory store, SQLite, MySQL) or a size of 0: such a store is never
    cached. Lookups give ``None`` (a miss) while the channel is not live.
    """

    def __init__(self, store: SessionStore, channel: InvalidationChannel, max_entries: int) -> None:
        if max_entries < 1:
            raise ValueError("session_cache (WAFER_SESSION_CACHE) must be at least 1 to cache")
        self.max_entries = max_entries
        self._store = store
        self._channel: InvalidationChannel | None = channel
        self._started = False
        self._closed = False
        self._live = False
        self._lock = threading.Lock()
        self._start_lock = threading.Lock()
        self._entries: OrderedDict[CacheKey, tuple[Session, User]] = OrderedDict()
        self._by_session: dict[str, set[CacheKey]] = {}
        self._by_user: dict[str, set[CacheKey]] = {}
        #: Invalidations so far, and the latest ones (sequence number, change) for fills.
        self._seq = 0
        self._recent: deque[tuple[int, Invalidation]] = deque(maxlen=HISTORY)
        self.hits = 0
        self.misses = 0
        _after_fork.add(self)

    @classmethod
    def for_store(cls, store: SessionStore, max_entries: int) -> SessionCache | None:
        """A cache for ``store``, or ``None`` if it offers no channel or ``max_entries`` is 0."""
        if max_entries <= 0:
            return None
        channel = store.invalidation_channel()
        if channel is None:
            return None
        return cls(store, channel, max_entries)

    def __repr__(self) -> str:
        state = "live" if self._live else "bypassed"
        return f"SessionCache({len(self._entries)}/{self.max_entries} entries, {state})"

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def live(self) -> bool:
        """Whether lookups may hit (the channel reported itself live and current)."""
        return self._live

    # -- the validation path -----------------------------------------------------
    def lookup(self, key: CacheKey) -> tuple[Session, User] | None:
        """The cached answer for ``key`` (the caller still checks expiry and skey), or
        ``None``: not cached, or the channel is not live."""
        if not self._live:
            self.misses += 1
            return None
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
                self.hits += 1
            else:
                self.misses += 1
            return found

    def token(self) -> int | None:
        """Take before a lookup and the store read whose answer may be cached (``None``:
        do not cache). The first call starts the channel."""
        if not self._started:
            self._start()
        return self._seq if self._live else None

    def fill(self, token: int | None, key: CacheKey, session: Session, user: User) -> bool:
        """Keep the store's answer under ``key`` unless the session, its user or
        everything was invalidated since ``token`` was taken; ``True`` if kept."""
        if token is None:
            return False
        with self._lock:
            if not self._live or not self._unchanged_since(token, session):
                return False
            self._drop(key)
            self._entries[key] = (session, user)
            self._by_session.setdefault(session.id, set()).add(key)
            self._by_user.setdefault(session.openid, set()).add(key)
            while len(self._entries) > self.max_entries:
                self._drop(next(iter(self._entries)))
            return True

    def discard(self, key: CacheKey) -> None:
        """Forget ``key`` (its entry expired: the store decides next)."""
        with self._lock:
            self._drop(key)

    # -- invalidations -----------------------------------------------------------
    def invalidate(self, change: Invalidation) -> None:
        """Forget what ``change`` touches (the channel's ``on_change``; also called
        after this process's own writes, so that they are seen here at once)."""
        with self._lock:
            self._record(change)

    def _on_state(self, live: bool) -> None:
        """The channel's ``on_state``: the cache is emptied either way."""
        with self._lock:
            was = self._live
            self._record(ALL)
            self._live = live and not self._closed
        if was and not live:
            logger.warning("wafer_py: session cache bypassed: its invalidation channel is down")
        elif live and not was:
            logger.info("wafer_py: session cache in use: its invalidation channel is live")

    def _record(self, change: Invalidation) -> None:
        """Under the lock: note ``change`` for fills in flight and drop what it names."""
        self._seq += 1
        self._recent.append((self._seq, change))
        if change.kind == "session":
            keys = self._by_session.get(change.key, ())
        elif change.kind == "user":
            keys = self._by_user.get(change.key, ())
        else:  # "all", or a kind this version does not know: forget everything
            self._entries.clear()
            self._by_session.clear()
            self._by_user.clear()
            return
        for key in list(keys):
            self._drop(key)

    def _unchanged_since(self, token: int, session: Session) -> bool:
        """Under the lock: whether no invalidation since ``token`` names ``session``."""
        if token == self._seq:
            return True
        if token < self._seq - len(self._recent):  # older than the history kept
            return False
        for seq, change in reversed(self._recent):
            if seq <= token:
                break
            kind = change.kind
            if kind == "session":
                if change.key == session.id:
                    return False
            elif kind == "user":
                if change.key == session.openid:
                    return False
            else:
                return False
        return True

    def _drop(self, key: CacheKey) -> None:
        """Under the lock: remove ``key`` and its index entries."""
        found = self._entries.pop(key, None)
        if found is None:
            return
        session = found[0]
        for index, name in ((self._by_session, session.id), (self._by_user, session.openid)):
            keys = index.get(name)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del index[name]

    # -- the channel's life ------------------------------------------------------
    def _start(self) -> None:
        with self._start_lock:
            if self._started or self._closed or self._channel is None:
                return
            self._started = True
            channel = self._channel
        ref = weakref.ref(self)  # the channel must not keep a dropped cache alive

        def on_change(change: Invalidation) -> None:
            cache = ref()
            if cache is not None:
                cache.invalidate(change)

        def on_state(live: bool) -> None:
            cache = ref()
            if cache is not None:
                cache._on_state(live)

        try:
            channel.start(on_change, on_state)
        except Exception:
            logger.exception("wafer_py: the session cache's channel did not start; not caching")

    def _forked(self) -> None:
        """In a child process: the parent's channel (its thread, its connection) is not
        ours; forget it and everything cached, and open a channel of our own on use."""
        self._lock = threading.Lock()
        self._start_lock = threading.Lock()
        self._live = False
        self._started = False
        self._entries.clear()
        self._by_session.clear()
        self._by_user.clear()
        self._recent.clear()
        self._seq += 1
        self._channel = None if self._closed else self._store.invalidation_channel()

    def close(self) -> None:
        """Stop the channel and stop caching (the store is closed by its owner)."""
        with self._start_lock:
            self._closed = True
            channel, self._channel = self._channel, None
        with self._lock:
            self._live = False
            self._record(ALL)
        if channel is not None:
            channel.close()


class _Caches:
    """The live caches of this process, reset in a forked child."""

    def __init__(self) -> None:
        self._caches: weakref.WeakSet[SessionCache] = weakref.WeakSet()
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self._forked)

    def add(self, cache: SessionCache) -> None:
        self._caches.add(cache)

    def _forked(self) -> None:
        for cache in list(self._caches):
            cache._forked()


_after_fork = _Caches()
