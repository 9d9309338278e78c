"""AccessTokenCache on its own: a stub WeChat, an injected clock, memory and SQLite stores."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.clock import Clock
from wafer_py.exceptions import AccessTokenUnavailable, DailyQuotaExceeded
from wafer_py.stores import MemoryStore, SessionStore, SQLiteStore
from wafer_py.wechat.tokens import AccessToken, AccessTokenCache


class StubWeChat:
    """Hands out ``t1``, ``t2``... (or what ``script`` says), counting the calls."""

    def __init__(
        self, appid: str = "wxstub", expires_in: float = 7200.0, delay: float = 0.0
    ) -> None:
        self.appid = appid
        self.expires_in = expires_in
        self.delay = delay
        self.calls: list[tuple[bool, bool]] = []
        self.script: list[AccessToken | Exception] = []
        self._lock = threading.Lock()

    def fetch_access_token(
        self, *, stable: bool = True, force_refresh: bool = False
    ) -> AccessToken:
        with self._lock:
            self.calls.append((stable, force_refresh))
            n = len(self.calls)
            step = self.script.pop(0) if self.script else None
        if self.delay:
            time.sleep(self.delay)
        if isinstance(step, Exception):
            raise step
        return step or AccessToken(f"t{n}", self.expires_in)


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SessionStore]:
    made: SessionStore = (
        MemoryStore() if request.param == "memory" else SQLiteStore(tmp_path / "tokens.db")
    )
    yield made
    made.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


def test_cold_cache_fetches_once_then_serves_from_the_store(
    store: SessionStore, clock: Clock
) -> None:
    wechat = StubWeChat()
    cache = AccessTokenCache(store, wechat, clock=clock)
    assert cache.get() == "t1"
    clock.advance(6000)
    assert cache.get() == "t1"
    assert wechat.calls == [(True, False)]  # stable_token, no force
    # A second cache over the same store (another process) sees the same token.
    assert AccessTokenCache(store, StubWeChat(), clock=clock).get() == "t1"


def test_refreshes_gap_seconds_before_expiry(store: SessionStore, clock: Clock) -> None:
    wechat = StubWeChat()
    cache = AccessTokenCache(store, wechat, gap=300, clock=clock)
    cache.get()
    clock.advance(7200 - 301)
    assert cache.get() == "t1"
    clock.advance(2)  # now within 300 s of expiry
    assert cache.get() == "t2"
    assert len(wechat.calls) == 2


def test_short_lived_token_is_asked_for_again_halfway_not_on_every_call(
    store: SessionStore, clock: Clock
) -> None:
    # stable_token hands back the current token until 5 minutes before expiry, so with
    # a gap larger than that the answer may already be "due": do not refetch each call.
    wechat = StubWeChat(expires_in=400)
    cache = AccessTokenCache(store, wechat, gap=600, clock=clock)
    assert cache.get() == "t1"
    clock.advance(150)
    assert cache.get() == "t1"
    assert len(wechat.calls) == 1
    clock.advance(60)  # past half of 400 s
    assert cache.get() == "t2"


def test_entry_is_namespaced_by_appid_and_documented_format(
    store: SessionStore, clock: Clock
) -> None:
    a = AccessTokenCache(store, StubWeChat("wxaaa"), clock=clock)
    b = AccessTokenCache(store, StubWeChat("wxbbb", expires_in=100), key="tok", clock=clock)
    assert (a.key, a.lock_name) == ("access_token:wxaaa", "access_token:wxaaa:lock")
    assert b.key == "tok:wxbbb"
    a.get()
    b.get()
    raw = store.get_entry("access_token:wxaaa", now=clock())
    assert raw is not None
    data = json.loads(raw)
    assert data == {
        "access_token": "t1",
        "expires_at": clock() + 7200,
        "refresh_at": clock() + 6900,
        "fetched_at": clock(),
    }
    assert store.get_entry("tok:wxbbb", now=clock()) is not None
    # Each app's entry expires with its own token.
    clock.advance(101)
    assert store.get_entry("tok:wxbbb", now=clock()) is None
    assert a.get() == "t1"


def test_classic_mode_uses_cgi_bin_token(store: SessionStore, clock: Clock) -> None:
    wechat = StubWeChat()
    AccessTokenCache(store, wechat, stable=False, clock=clock).get()
    assert wechat.calls == [(False, False)]


def test_rejected_token_is_replaced_and_a_newer_one_is_not_clobbered(
    store: SessionStore, clock: Clock
) -> None:
    wechat = StubWeChat()
    cache = AccessTokenCache(store, wechat, clock=clock)
    old = cache.get()
    clock.advance(1)
    new = cache.refresh(rejected=old)
    assert (old, new) == ("t1", "t2")
    # A caller that was still holding t1 when it was rejected gets t2 without a fetch.
    assert cache.refresh(rejected=old) == "t2"
    assert cache.invalidate(old) is False
    assert cache.peek() is not None
    assert len(wechat.calls) == 2
    assert cache.invalidate("t2") is True
    assert cache.peek() is None


def test_stable_token_rejected_twice_forces_a_refresh(store: SessionStore, clock: Clock) -> None:
    wechat = StubWeChat()
    cache = AccessTokenCache(store, wechat, clock=clock)
    cache.get()
    # stable_token answers with the very token WeChat refused: only force_refresh helps.
    wechat.script = [AccessToken("t1", 3000), AccessToken("fresh", 7200)]
    assert cache.refresh(rejected="t1") == "fresh"
    assert wechat.calls == [(True, False), (True, False), (True, True)]


def test_explicit_refresh_fetches_even_with_a_good_token(store: SessionStore, clock: Clock) -> None:
    wechat = StubWeChat()
    cache = AccessTokenCache(store, wechat, clock=clock)
    cache.get()
    clock.advance(1)
    assert cache.refresh() == "t2"
    assert cache.refresh(force=True) == "t3"
    assert wechat.calls[-1] == (True, True)


def test_wechat_errors_surface_and_leave_the_lock_free(store: SessionStore, clock: Clock) -> None:
    wechat = StubWeChat()
    wechat.script = [DailyQuotaExceeded(45009)]
    cache = AccessTokenCache(store, wechat, clock=clock)
    with pytest.raises(DailyQuotaExceeded):
        cache.get()
    assert cache.get() == "t2"
    assert store.acquire_lock(cache.lock_name, "someone", ttl=1, now=clock())


def test_waiting_on_another_holder_is_bounded(store: SessionStore, clock: Clock) -> None:
    cache = AccessTokenCache(store, StubWeChat(), wait=0.3, clock=clock)
    assert store.acquire_lock(cache.lock_name, "another process", ttl=60, now=clock())
    started = time.monotonic()
    with pytest.raises(AccessTokenUnavailable, match="no access_token after waiting"):
        cache.get()
    assert 0.25 < time.monotonic() - started < 2.0


def test_a_dead_holders_lock_lapses(store: SessionStore) -> None:
    clock = Clock()
    wechat = StubWeChat()
    cache = AccessTokenCache(store, wechat, lock_ttl=5, wait=5, clock=clock)
    assert store.acquire_lock(cache.lock_name, "died holding it", ttl=5, now=clock())

    def lapse() -> None:
        time.sleep(0.1)
        clock.advance(6)

    mover = threading.Thread(target=lapse)
    mover.start()
    assert cache.get() == "t1"
    mover.join()
    assert len(wechat.calls) == 1


def test_a_valid_token_is_served_while_another_process_refreshes(
    store: SessionStore, clock: Clock
) -> None:
    wechat = StubWeChat()
    cache = AccessTokenCache(store, wechat, clock=clock)
    cache.get()
    clock.advance(7000)  # due for refresh, still valid for 200 s
    assert store.acquire_lock(cache.lock_name, "refresher elsewhere", ttl=30, now=clock())
    assert cache.get() == "t1"
    assert len(wechat.calls) == 1


def test_threads_share_one_fetch(store: SessionStore, clock: Clock) -> None:
    wechat = StubWeChat(delay=0.05)
    cache = AccessTokenCache(store, wechat, clock=clock)
    other = AccessTokenCache(store, wechat, clock=clock)  # as if another process
    barrier = threading.Barrier(32)
    seen: list[str] = []

    def ask(i: int) -> None:
        barrier.wait()
        seen.append((cache if i % 2 else other).get())

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == ["t1"] * 32
    assert len(wechat.calls) == 1


def test_repr_and_cached_token_hide_the_token(store: SessionStore, clock: Clock) -> None:
    cache = AccessTokenCache(store, StubWeChat(), clock=clock)
    token = cache.get()
    assert token not in repr(cache)
    assert token not in repr(cache.peek())
    assert token not in repr(AccessToken(token, 1))


def test_bad_settings_are_refused(store: SessionStore) -> None:
    with pytest.raises(ValueError):
        AccessTokenCache(store, StubWeChat(), gap=-1)
    with pytest.raises(ValueError):
        AccessTokenCache(store, StubWeChat(), key="")
