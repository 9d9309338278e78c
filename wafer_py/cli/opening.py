"""Opening the store a command names without creating anything in it.

A server creates its store on first use (the SQLite file, the SQL tables). A command
that reads or manages an existing store must not: ``sessions stats`` with a mistyped
``table_prefix`` once created four empty tables and reported zeros. Here a missing
SQLite file or missing tables are a :class:`CommandFailed`
naming what is missing and the likely fix.
"""

from __future__ import annotations

import argparse
import logging
import os
import sqlite3
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from urllib.parse import urlsplit

from ..config import DEFAULT_STORE_URL
from ..exceptions import WaferError
from ..extras import install_hint
from ..logsafe import redact_url
from ..stores.base import SessionStore

__all__ = [
    "CommandFailed",
    "one_line",
    "open_cli_store",
    "open_existing",
    "quiet_store_logs",
    "sqlite_file",
    "store_failed",
    "store_url",
    "wafer_log_level",
]


class CommandFailed(Exception):
    """A command cannot go on: one line for stderr, exit status 2."""


# -- opening the store ------------------------------------------------------------------
def store_url(args: argparse.Namespace) -> str:
    """``--store``, else ``WAFER_STORE_URL``, else the default (no AppID needed here)."""
    return str(args.store or os.environ.get("WAFER_STORE_URL") or DEFAULT_STORE_URL)


def sqlite_file(url: str) -> Path | None:
    """The file of a ``sqlite://`` URL (as :class:`~wafer_py.stores.SQLiteStore` reads
    it), ``None`` for other stores and ``:memory:``."""
    parts = urlsplit(url)
    if parts.scheme.lower() != "sqlite":
        return None
    path = parts.path[1:] if parts.path.startswith("/") else parts.path
    return None if path in ("", ":memory:") else Path(path)


#: The extra a store's driver comes with, by URL scheme.
_EXTRAS = {
    "redis": "redis",
    "rediss": "redis",
    "unix": "redis",
    "postgresql": "sql",
    "postgres": "sql",
    "mysql": "sql",
    "mariadb": "sql",
    "django": "django",
}


def open_cli_store(url: str) -> SessionStore:
    """The store ``url`` names (created if missing, for ``migrate-wafer``); a failure
    is :class:`CommandFailed` with the reason, the URL's password masked."""
    from ..stores import open_store

    try:
        return open_store(url)
    except WaferError as exc:
        detail = " ".join((getattr(exc, "detail", "") or exc.message).split())
        raise CommandFailed(f"cannot open the session store {redact_url(url)}: {detail}") from None
    except ImportError as exc:
        text = one_line(exc)
        extra = _EXTRAS.get(urlsplit(url).scheme.lower().split("+", 1)[0])
        if extra and "extra" not in text:  # the SQL store's own message names it
            text += f": {install_hint(extra)}"
        raise CommandFailed(f"cannot open the session store {redact_url(url)}: {text}") from None
    except Exception as exc:  # a bad URL (ValueError), an unwritable path (OSError), a driver
        raise CommandFailed(
            f"cannot open the session store {redact_url(url)}: {one_line(exc)}"
        ) from None


def one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def store_failed(exc: WaferError, url: str) -> str:
    detail = getattr(exc, "detail", "") or exc.message
    return f"the session store {redact_url(url)} failed: {' '.join(detail.split())}"


@contextmanager
def wafer_log_level(level: int) -> Iterator[None]:
    """The ``wafer_py`` logger at ``level`` while a command runs, restored after: the
    Django management commands run these actions in a process that goes on."""
    logger = logging.getLogger("wafer_py")
    before = logger.level
    logger.setLevel(level)
    try:
        yield
    finally:
        logger.setLevel(before)


def quiet_store_logs() -> AbstractContextManager[None]:
    # The store logs outages for servers ("answering 503"); here the error is the output.
    return wafer_log_level(logging.CRITICAL)


#: SQLite's tables (its names have no prefix).
_SQLITE_TABLES = ("wafer_users", "wafer_sessions", "wafer_entries", "wafer_locks")
_SQL_SCHEMES = ("postgresql", "postgres", "mysql", "mariadb")


def open_existing(url: str) -> SessionStore:
    """The store ``url`` names, opened only if it exists: no file, no table made."""
    scheme = urlsplit(url).scheme.lower().split("+", 1)[0]
    if scheme == "sqlite":
        _check_sqlite(url)
        return open_cli_store(url)
    if scheme in _SQL_SCHEMES:
        return _open_sql(url)
    return open_cli_store(url)  # Redis, memory: opening creates nothing


def _check_sqlite(url: str) -> None:
    file = sqlite_file(url)
    if file is None:
        return  # :memory:
    if not file.exists():
        raise CommandFailed(
            f"no SQLite store at {file}: give the store your servers use with --store URL "
            "or WAFER_STORE_URL (a relative path is read from the current directory; a "
            "wafer_py server creates the file when it first starts)"
        )
    try:
        conn = sqlite3.connect(f"{file.absolute().as_uri()}?mode=ro", uri=True)
        try:
            rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise CommandFailed(f"cannot open the session store {redact_url(url)}: {exc}") from None
    missing = [name for name in _SQLITE_TABLES if name not in {row[0] for row in rows}]
    if missing:
        raise CommandFailed(
            f"{file} is not a wafer_py store: no table {', '.join(missing)} "
            "(is --store / WAFER_STORE_URL the file your servers use?)"
        )


def _open_sql(url: str) -> SessionStore:
    try:
        from ..stores.sql import SQLStore

        store = SQLStore(url, create_tables=False)
    except (ImportError, ValueError):
        return open_cli_store(url)  # the same failure, told as for any store
    try:
        missing = store.missing_tables()
    except WaferError as exc:
        store.close()
        detail = " ".join((getattr(exc, "detail", "") or exc.message).split())
        raise CommandFailed(f"cannot open the session store {redact_url(url)}: {detail}") from None
    if missing:
        store.close()
        raise CommandFailed(
            f"the tables {', '.join(missing)} do not exist in {redact_url(url)}: check "
            f"table_prefix in the URL (now {store.table_prefix!r}); a wafer_py server "
            "creates them when it first opens the store"
        )
    return store
