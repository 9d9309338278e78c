"""Session stores, and :func:`open_store` to pick one by URL.

Backends that need an optional package are imported only when asked for, so
``import wafer_py`` never needs a database driver.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from .base import SessionStore, StoreStats
from .memory import MemoryStore
from .sqlite import SQLiteStore

if TYPE_CHECKING:
    from .redis import RedisStore
    from .sql import SQLStore

__all__ = [
    "SessionStore",
    "StoreStats",
    "MemoryStore",
    "SQLiteStore",
    "RedisStore",
    "SQLStore",
    "open_store",
]

_URLS = (
    "memory://, sqlite:///path/to.db, redis://host:6379/0, rediss://..., "
    "postgresql://user@host/db, mysql://user@host/db"
)


def open_store(url: str) -> SessionStore:
    """Open the store a URL names.

    ``memory://``; ``sqlite:///path/to.db`` (relative), ``sqlite:////abs/path.db``,
    ``sqlite:///:memory:``; ``redis://`` and ``rediss://`` (the ``redis`` extra);
    ``postgresql://`` and ``mysql://`` (the ``sql`` extra).
    """
    scheme = urlsplit(url).scheme.lower()
    if scheme == "memory":
        return MemoryStore()
    if scheme == "sqlite":
        return SQLiteStore.from_url(url)
    if scheme in ("redis", "rediss", "unix"):
        from .redis import RedisStore

        return RedisStore.from_url(url)
    if scheme in ("postgresql", "postgres", "mysql", "mariadb") or "+" in scheme:
        from .sql import SQLStore

        return SQLStore.from_url(url)
    raise ValueError(f"unknown session store URL scheme {scheme!r}; use one of: {_URLS}")


def __getattr__(name: str) -> Any:
    # RedisStore and SQLStore import their drivers: only on first use.
    if name == "RedisStore":
        from .redis import RedisStore

        return RedisStore
    if name == "SQLStore":
        from .sql import SQLStore

        return SQLStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
