"""The two store contracts and the open_store registry, seen by a third-party store."""

from __future__ import annotations

import secrets
import subprocess
import sys
import threading
from typing import Any

import pytest

from wafer_py.exceptions import StateReplayed
from wafer_py.stores import (
    EntryStore,
    MemoryStore,
    SessionStore,
    SQLiteStore,
    entry_store,
    open_store,
    register_store,
    registered_schemes,
)
from wafer_py.stores.registry import _LAZY
from wafer_py.testing import EntryStoreContract, SessionStoreContract
from wafer_py.web.state import OAuthStateSigner


@register_store
class TinyStore(MemoryStore):
    """A third party's store: its own schemes, its own options in the URL."""

    schemes = ("tiny", "Tiny-TLS")

    def __init__(self, url: str = "") -> None:
        super().__init__()
        self.url = url

    @classmethod
    def from_url(cls, url: str) -> TinyStore:
        return cls(url)


def _delegate(name: str) -> Any:
    def method(self: Any, *args: Any, **kwargs: Any) -> Any:
        return getattr(self.inner, name)(*args, **kwargs)

    method.__name__ = name
    return method


# A store of users and sessions only: exactly SessionStore's abstract methods, nothing more.
UsersOnly: type[SessionStore] = type(
    "UsersOnly",
    (SessionStore,),
    {
        "__init__": lambda self: setattr(self, "inner", MemoryStore()),
        **{name: _delegate(name) for name in SessionStore.__abstractmethods__},
    },
)


class DictEntries:
    """A store of entries and locks only, in two dicts under one lock."""

    def __init__(self) -> None:
        self.guard = threading.Lock()
        self.entries: dict[str, tuple[str, float]] = {}
        self.locks: dict[str, tuple[str, float]] = {}

    def get_entry(self, key: str, *, now: float) -> str | None:
        value, expires_at = self.entries.get(key, ("", 0.0))
        return value if now < expires_at else None

    def set_entry(self, key: str, value: str, *, expires_at: float) -> None:
        self.entries[key] = (value, expires_at)

    def delete_entry(self, key: str) -> bool:
        return self.entries.pop(key, None) is not None

    def acquire_lock(self, name: str, owner: str, *, ttl: float, now: float) -> bool:
        with self.guard:
            held, until = self.locks.get(name, (owner, 0.0))
            if held != owner and now < until:
                return False
            self.locks[name] = (owner, now + ttl)
            return True

    def release_lock(self, name: str, owner: str) -> bool:
        with self.guard:
            if self.locks.get(name, ("", 0.0))[0] != owner:
                return False
            del self.locks[name]
            return True


class TestUsersOnlyStore(SessionStoreContract):
    def make_store(self) -> SessionStore:
        return UsersOnly()


class TestEntriesOnlyStore(EntryStoreContract):
    def make_store(self) -> EntryStore:
        return DictEntries()


def test_session_store_is_users_and_sessions_only() -> None:
    assert not {"get_entry", "set_entry", "delete_entry", "acquire_lock", "release_lock"} & (
        SessionStore.__abstractmethods__
    )
    assert isinstance(UsersOnly(), SessionStore) and not isinstance(UsersOnly(), EntryStore)
    with pytest.raises(TypeError, match=r"UsersOnly keeps no entries and locks .*get_entry"):
        entry_store(UsersOnly())
    for store in (MemoryStore(), SQLiteStore(":memory:")):
        assert isinstance(store, SessionStore) and entry_store(store) is store


def test_the_oauth_state_needs_entries_and_locks_only() -> None:
    signer = OAuthStateSigner(["k" * 32])
    claims = signer.verify(signer.issue("/p"), "/p")
    store = DictEntries()
    signer.spend(claims, store)
    with pytest.raises(StateReplayed):
        signer.spend(claims, store)


def test_open_store_opens_a_registered_third_party_store() -> None:
    store = open_store("tiny://bucket/sessions?region=eu")
    assert type(store) is TinyStore and store.url == "tiny://bucket/sessions?region=eu"
    assert type(open_store("TINY-tls://b")) is TinyStore  # schemes are case-insensitive
    assert type(open_store("tiny+http://b")) is TinyStore  # scheme+driver finds the scheme
    assert {"tiny", "tiny-tls", "memory", "sqlite", "redis", "mysql"} <= set(registered_schemes())
    assert register_store(TinyStore) is TinyStore  # registering again is harmless


def test_an_unknown_scheme_names_the_registered_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown session store URL scheme 'nosuch'.*tiny://"):
        open_store("nosuch://x")


def test_a_taken_scheme_is_refused() -> None:
    class Impostor(MemoryStore):
        schemes = ("redis",)

    class Twin(MemoryStore):
        schemes = ("tiny",)

    class Nameless(MemoryStore):
        schemes = ()

    for cls, owner in ((Impostor, "RedisStore"), (Twin, "TinyStore")):
        with pytest.raises(ValueError, match=f"already opened by {owner}"):
            register_store(cls)
    with pytest.raises(ValueError, match="names no URL scheme"):
        register_store(Nameless)
    with pytest.raises(TypeError, match="not a SessionStore"):
        register_store(DictEntries)  # type: ignore[arg-type]
    assert type(open_store("tiny://x")) is TinyStore and open_store("memory://").schemes


def test_the_lazy_table_matches_the_schemes_the_stores_declare() -> None:
    from wafer_py.stores import RedisStore, SQLStore

    for cls, module in ((RedisStore, "redis"), (SQLStore, "sql")):
        lazy = {s for s, (mod, name) in _LAZY.items() if (mod, name) == (module, cls.__name__)}
        assert lazy == set(cls.schemes)


def test_import_wafer_py_imports_no_driver_until_a_store_needs_it() -> None:
    code = (
        "import sys, wafer_py, wafer_py.testing; "
        "from wafer_py.stores import open_store, registered_schemes; "
        "assert 'redis' in registered_schemes() and 'mysql' in registered_schemes(); "
        "assert not {'redis', 'psycopg', 'pymysql'} & set(sys.modules), sys.modules; "
        f"store = open_store('redis://127.0.0.1:1/0?prefix=reg{secrets.token_hex(4)}:'); "
        "print(type(store).__name__, 'redis' in sys.modules, 'psycopg' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["RedisStore", "True", "False"]
