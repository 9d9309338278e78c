"""The contract of :class:`~wafer_py.stores.EntryStore` (entries and locks), and
:class:`StoreContract`: both parts, for a store that keeps everything."""

from __future__ import annotations

from typing import Any

from ..stores.base import SessionStore
from ..stores.entries import EntryStore, entry_store
from .common import Contract, run_threads
from .sessions import SessionStoreContract

__all__ = ["EntryStoreContract", "StoreContract"]


class EntryStoreContract(Contract):
    """The behaviour every :class:`~wafer_py.stores.EntryStore` must have."""

    def make_store(self) -> EntryStore:
        """A store to test."""
        raise NotImplementedError

    def test_is_an_entry_store(self, store: EntryStore) -> None:
        assert isinstance(store, EntryStore)

    # -- entries ----------------------------------------------------------------
    def test_entries(self, store: EntryStore, openid: str) -> None:
        key = "entry:" + openid
        assert store.get_entry(key, now=0.0) is None
        store.set_entry(key, "v1 ☃", expires_at=100.0)
        assert store.get_entry(key, now=99.0) == "v1 ☃"
        assert store.get_entry(key, now=100.0) is None  # expired
        store.set_entry(key, "v2", expires_at=200.0)
        assert store.get_entry(key, now=150.0) == "v2"
        assert store.delete_entry(key) is True
        assert store.delete_entry(key) is False
        assert store.get_entry(key, now=150.0) is None

    # -- locks ------------------------------------------------------------------
    def test_lock_has_one_holder(self, store: EntryStore, openid: str) -> None:
        name = "lock:" + openid
        assert store.acquire_lock(name, "a", ttl=10.0, now=100.0) is True
        assert store.acquire_lock(name, "b", ttl=10.0, now=105.0) is False
        assert store.acquire_lock(name, "a", ttl=10.0, now=105.0) is True  # re-entrant
        assert store.release_lock(name, "b") is False
        assert store.release_lock(name, "a") is True
        assert store.acquire_lock(name, "b", ttl=10.0, now=106.0) is True

    def test_lock_lapses(self, store: EntryStore, openid: str) -> None:
        name = "lock:" + openid
        assert store.acquire_lock(name, "dead", ttl=10.0, now=100.0) is True
        assert store.acquire_lock(name, "b", ttl=10.0, now=110.0) is True
        assert store.release_lock(name, "dead") is False

    def test_lock_under_contention(self, store: EntryStore, openid: str) -> None:
        name = "lock:" + openid
        winners: list[int] = []

        def take(i: int) -> None:
            if store.acquire_lock(name, f"owner-{i}", ttl=60.0, now=1000.0):
                winners.append(i)

        run_threads(take, 16)
        assert len(winners) == 1


class StoreContract(SessionStoreContract, EntryStoreContract):
    """Both parts, for a store that keeps users, sessions, entries and locks (as every
    bundled store does), and what ties them together."""

    def make_store(self) -> Any:
        """A store to test: a :class:`~wafer_py.stores.SessionStore` that is an
        :class:`~wafer_py.stores.EntryStore` too."""
        raise NotImplementedError

    def test_purge_keeps_live_entries_and_locks(self, store: SessionStore, openid: str) -> None:
        entries = entry_store(store)
        entries.set_entry("old:" + openid, "x", expires_at=10.0)
        entries.set_entry("new:" + openid, "y", expires_at=10_000_000_000.0)
        assert entries.acquire_lock("held:" + openid, "a", ttl=10_000_000_000.0, now=0.0)
        store.purge_expired(now=100.0)
        assert entries.get_entry("old:" + openid, now=0.0) is None
        assert entries.get_entry("new:" + openid, now=100.0) == "y"
        assert entries.acquire_lock("held:" + openid, "b", ttl=1.0, now=100.0) is False

    def test_stats_counts_entries(self, store: SessionStore, openid: str) -> None:
        before = store.stats(now=100.0)
        entry_store(store).set_entry("stats:" + openid, "x", expires_at=10_000_000_000.0)
        assert store.stats(now=100.0).entries - before.entries == 1
