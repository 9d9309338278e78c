"""Session stores, and :func:`open_store` to pick one by URL.

:class:`SessionStore` keeps users and sessions; :class:`EntryStore` entries and locks
(for the token cache, the web login and the OAuth state); the bundled stores do both.
Backends that need an optional package are imported only when asked for, so
``import wafer_py`` never needs a database driver. A third-party store joins
:func:`open_store` with :func:`register_store`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .base import SessionStore, StoreStats
from .entries import EntryStore, entry_store
from .memory import MemoryStore
from .registry import open_store, register_store, registered_schemes
from .sqlite import SQLiteStore

if TYPE_CHECKING:
    from .redis import RedisStore
    from .sql import SQLStore

__all__ = [
    "SessionStore",
    "EntryStore",
    "StoreStats",
    "MemoryStore",
    "SQLiteStore",
    "RedisStore",
    "SQLStore",
    "entry_store",
    "open_store",
    "register_store",
    "registered_schemes",
]

register_store(MemoryStore)
register_store(SQLiteStore)


def __getattr__(name: str) -> Any:
    # RedisStore and SQLStore import their drivers: only on first use.
    if name == "RedisStore":
        from .redis import RedisStore

        return RedisStore
    if name == "SQLStore":
        from .sql import SQLStore

        return SQLStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
