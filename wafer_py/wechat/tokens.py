"""The global ``access_token``, cached in a shared store and refreshed one at a time.

Every WeChat server API needs the app's ``access_token``. Each ``/cgi-bin/token`` fetch
invalidates the previous token (after a 5-minute overlap) and counts against a daily
quota of 2000, so workers that refresh on their own knock each other out.
:class:`AccessTokenCache` keeps one token per app in any
:class:`~wafer_py.stores.EntryStore` and lets exactly one thread of one process fetch
a new one, under the store's lock:

1. :meth:`AccessTokenCache.get` returns the cached token unless it is within ``gap``
   seconds of expiry (default 300).
2. Otherwise it takes the store's lock (owner: a random token; the lock lapses after
   ``lock_ttl`` seconds, so a holder that died does not block the others), reads the
   cache again (another process may have just refreshed it), fetches, stores, releases.
3. The others poll the cache with a small bounded backoff until the new token appears,
   or take the lock themselves once it lapses. A token within ``gap`` of expiry is still
   valid, so while someone refreshes it callers simply go on using it. Nothing waits
   longer than ``wait`` seconds: then :class:`~wafer_py.exceptions.AccessTokenUnavailable`.

Threads of one process also queue on an in-process lock first, so a store sees at most
one poller per process.

**Where it lives.** The entry ``<key>:<appid>`` (default ``access_token:wx...``) holds
JSON ``{"access_token", "expires_at", "refresh_at", "fetched_at"}`` (Unix seconds) and
expires with the token; the lock is named ``<key>:<appid>:lock``. The token is stored as
it is (not sealed), so any worker, cron job or other-language service reading the same
store can use it; it is worthless two hours later. These records (and the back-off of
forced refreshes below) are written in :mod:`.tokenrecords`; their names are importable from
here too.

By default tokens come from ``POST /cgi-bin/stable_token``, which hands every caller the
same token until 5 minutes before it expires; ``force_refresh`` (20 a day) is used only
when WeChat has just rejected the very token it hands back. ``stable=False`` uses the
classic ``GET /cgi-bin/token`` instead.

**While WeChat keeps refusing a token**, callers do not each refresh it:

* a caller whose call was refused passes when it made that call (``since``); a token
  fetched after that is taken as the answer, even if it is the same one, and WeChat is
  not asked again;
* when stable_token hands back the very token WeChat refused, the refresh is forced, but
  forces back off: 60 s after the first, then twice as long after each (at most 2 hours,
  so never more than 18 a day of WeChat's 20). Until the next force is due, the refused
  token is what a refresh returns (:class:`~wafer_py.wechat.api.WeChatAPI` then raises
  the refusal instead of retrying). The forces made are kept in the entry
  ``<key>:<appid>:forced`` (``{"at", "streak"}``) for a day, shared by every process.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable

from ..exceptions import AccessTokenUnavailable, StoreUnavailable, WeChatError
from ..observe import NO_OBSERVER, Observer
from ..stores.entries import EntryStore
from .tokenrecords import FORCE_BACKOFF as FORCE_BACKOFF
from .tokenrecords import MAX_FORCE_BACKOFF as MAX_FORCE_BACKOFF
from .tokenrecords import (
    AccessToken,
    CachedToken,
    TokenSource,
    next_force_at,
    record_force,
)

__all__ = ["AccessToken", "AccessTokenCache", "CachedToken", "TokenSource", "DEFAULT_GAP"]

logger = logging.getLogger("wafer_py")

#: Seconds before expiry at which a token is refreshed (WeChat's overlap is 5 minutes).
DEFAULT_GAP = 300.0

_FIRST_POLL = 0.005
_MAX_POLL = 0.1


class AccessTokenCache:
    """One app's ``access_token``, shared through ``store`` by every thread and process.

    ``source`` fetches tokens (a :class:`~wafer_py.wechat.WeChatClient`). ``key`` names the
    cache entry (namespaced by the source's AppID). ``gap`` is how many seconds before
    expiry a token is refreshed. ``lock_ttl`` bounds how long a refresher holds the lock;
    ``wait`` bounds how long a caller waits for someone else's refresh. ``clock`` gives
    the time in seconds (the same clock for every process sharing the store).

    Example::

        tokens = AccessTokenCache(open_store("sqlite:///shared.db"), WeChatClient(appid, secret))
        token = tokens.get()                  # cached, or fetched by exactly one caller
        token = tokens.refresh(rejected=token)  # after WeChat said 40001/42001
    """

    def __init__(
        self,
        store: EntryStore,
        source: TokenSource,
        *,
        key: str = "access_token",
        gap: float = DEFAULT_GAP,
        stable: bool = True,
        lock_ttl: float = 30.0,
        wait: float = 40.0,
        clock: Callable[[], float] = time.time,
        observer: Observer = NO_OBSERVER,
    ) -> None:
        if gap < 0 or lock_ttl <= 0 or wait <= 0:
            raise ValueError("gap must be >= 0, lock_ttl and wait > 0")
        if not key:
            raise ValueError("key must not be empty")
        self.store = store
        self.source = source
        self.key = f"{key}:{source.appid}"
        self.lock_name = f"{self.key}:lock"
        self.forced_key = f"{self.key}:forced"
        self.gap = gap
        self.stable = stable
        self.lock_ttl = lock_ttl
        self.wait = wait
        self.clock = clock
        #: Told of each fetch from WeChat and its outcome (:mod:`wafer_py.observe`).
        self.observer = observer
        self._local = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"AccessTokenCache(key={self.key!r}, store={self.store!r}, "
            f"stable={self.stable}, gap={self.gap})"
        )

    # ----------------------------------------------------------------- public

    def get(self) -> str:
        """A valid token: the cached one, or a fresh one if it is within ``gap`` of expiry."""
        now = self.clock()
        cached = self.peek()
        if cached is not None and now < cached.refresh_at:
            return cached.access_token
        return self._obtain(lambda c, t: t < c.refresh_at, stale_ok=True).access_token

    def refresh(
        self, *, rejected: str | None = None, since: float | None = None, force: bool = False
    ) -> str:
        """Fetch a new token now (one caller at a time); return it.

        With ``rejected`` (a token WeChat just refused), a token other than that one is
        enough: if another caller already replaced it, that token is returned and WeChat
        is not asked again. So is the same token if it was fetched after ``since``
        (when the refused call was made: WeChat was asked after it), or while forces
        back off (see the module's docstring): the caller then gets the refused token
        back. Without ``rejected``, the token must have been fetched after this call
        began. ``force`` asks stable_token for a new token even if the current one is
        good (``force_refresh``: 20 a day, and it invalidates the current token at once).
        """
        if rejected is not None:

            def good(cached: CachedToken, now: float) -> bool:
                if now >= cached.expires_at:
                    return False
                if cached.access_token != rejected:
                    return True
                return (since is not None and cached.fetched_at > since) or now < cached.retry_at

            return self._obtain(good, rejected=rejected, force=force).access_token
        started = self.clock()
        return self._obtain(lambda c, t: c.fetched_at > started, force=force).access_token

    def invalidate(self, token: str) -> bool:
        """Drop the cached token if it is still ``token``; ``True`` if it was dropped.

        Done under the refresh lock, so a newer token stored meanwhile is never clobbered.
        """
        owner = secrets.token_urlsafe(16)
        deadline = time.monotonic() + self.wait
        delay = _FIRST_POLL
        while not self.store.acquire_lock(
            self.lock_name, owner, ttl=self.lock_ttl, now=self.clock()
        ):
            delay = self._pause(delay, deadline)
        try:
            cached = self.peek()
            if cached is None or cached.access_token != token:
                return False
            return self.store.delete_entry(self.key)
        finally:
            self._release(owner)

    def peek(self) -> CachedToken | None:
        """What the cache holds now (an unexpired token), without asking WeChat."""
        raw = self.store.get_entry(self.key, now=self.clock())
        return None if raw is None else CachedToken.from_json(raw)

    # --------------------------------------------------------------- refresh

    def _obtain(
        self,
        good: Callable[[CachedToken, float], bool],
        *,
        stale_ok: bool = False,
        rejected: str | None = None,
        force: bool = False,
    ) -> CachedToken:
        """Return a cached token ``good(cached, now)`` accepts, fetching one if none is."""
        deadline = time.monotonic() + self.wait
        if not self._local.acquire(blocking=False):
            cached = self.peek()
            if stale_ok and cached is not None and self.clock() < cached.expires_at:
                return cached  # another thread of this process is refreshing it
            if not self._local.acquire(timeout=self.wait):
                raise AccessTokenUnavailable(
                    "timed out waiting for this process's access_token refresh"
                )
        try:
            owner = secrets.token_urlsafe(16)
            delay = _FIRST_POLL
            while True:
                cached = self.peek()
                now = self.clock()
                if cached is not None and good(cached, now):
                    return cached
                if self.store.acquire_lock(self.lock_name, owner, ttl=self.lock_ttl, now=now):
                    try:
                        # Another process may have refreshed between our read and the lock.
                        cached = self.peek()
                        if cached is not None and good(cached, self.clock()):
                            return cached
                        return self._fetch_and_store(rejected, force)
                    finally:
                        self._release(owner)
                if stale_ok and cached is not None and now < cached.expires_at:
                    # Someone else is refreshing; this token is still valid meanwhile.
                    return cached
                delay = self._pause(delay, deadline)
        finally:
            self._local.release()

    def _fetch_and_store(self, rejected: str | None, force: bool) -> CachedToken:
        outcome = "failed"
        try:
            cached, outcome = self._fetch_new(rejected, force)
            return cached
        finally:
            self.observer.token_refresh(outcome)

    def _fetch_new(self, rejected: str | None, force: bool) -> tuple[CachedToken, str]:
        """A token from WeChat, stored; and the outcome: ``refreshed``, ``forced`` or
        ``unchanged`` (WeChat handed back the token it refused)."""
        outcome = "forced" if force and self.stable else "refreshed"
        started = self.clock()
        if rejected is not None:
            logger.warning(
                "wafer_py: WeChat rejected the cached access_token of %s; fetching a new one",
                self.source.appid,
            )
        token = self._fetch(force)
        retry_at = 0.0
        if self.stable and not force and rejected is not None and token.access_token == rejected:
            # stable_token handed back the very token WeChat refused: only a forced
            # refresh gives another one, and WeChat allows 20 a day.
            due = next_force_at(self.store, self.forced_key, self.clock)
            if started >= due:
                logger.warning(
                    "wafer_py: WeChat rejected its current stable access_token for %s; "
                    "forcing a refresh",
                    self.source.appid,
                )
                token = self._fetch(True)
                outcome = "forced"
            else:
                retry_at = due
                outcome = "unchanged"
                logger.warning(
                    "wafer_py: WeChat still hands back the access_token it rejected for %s; "
                    "the next forced refresh is due in %.0f s (WeChat allows 20 a day)",
                    self.source.appid,
                    due - started,
                )
        if not token.access_token or token.expires_in <= 0:
            raise WeChatError("WeChat's access_token answer has no token or lifetime")
        expires_at = started + token.expires_in
        refresh_at = expires_at - self.gap
        if refresh_at <= started:
            # A token with less life left than ``gap`` (stable_token hands out the current
            # one until 5 minutes before expiry): ask again halfway, not on every call.
            refresh_at = started + token.expires_in / 2
        cached = CachedToken(token.access_token, expires_at, refresh_at, self.clock(), retry_at)
        self.store.set_entry(self.key, cached.to_json(), expires_at=expires_at)
        return cached, outcome

    def _fetch(self, force: bool) -> AccessToken:
        """Ask WeChat; a forced refresh is recorded (made or not) before it is asked."""
        if force and self.stable:
            record_force(self.store, self.forced_key, self.clock)
        return self.source.fetch_access_token(stable=self.stable, force_refresh=force)

    def _pause(self, delay: float, deadline: float) -> float:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AccessTokenUnavailable(
                f"no access_token after waiting {self.wait:g} s for another refresh"
            )
        # Jitter keeps pollers of several processes from waking in step.
        time.sleep(min(left, delay * (0.5 + secrets.randbelow(1000) / 1000)))
        return min(delay * 2, _MAX_POLL)

    def _release(self, owner: str) -> None:
        try:
            self.store.release_lock(self.lock_name, owner)
        except StoreUnavailable:
            # The lock lapses by itself after lock_ttl.
            logger.warning("wafer_py: could not release the access_token lock %s", self.lock_name)
