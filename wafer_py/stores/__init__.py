"""Session stores, and :func:`open_store` to pick one by URL.

Backends that need an optional package are imported only when asked for, so
``import wafer_py`` never needs a database driver.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from .base import SessionStore
from .memory import MemoryStore
from .sqlite import SQLiteStore

__all__ = ["SessionStore", "MemoryStore", "SQLiteStore", "open_store"]


def open_store(url: str) -> SessionStore:
    """Open the store a URL names.

    ``memory://``, ``sqlite:///path/to.db`` (relative), ``sqlite:////abs/path.db``,
    ``sqlite:///:memory:``.
    """
    scheme = urlsplit(url).scheme.lower()
    if scheme == "memory":
        return MemoryStore()
    if scheme == "sqlite":
        return SQLiteStore.from_url(url)
    known = "memory://, sqlite:///path/to.db"
    raise ValueError(f"unknown session store URL scheme {scheme!r}; use one of: {known}")
