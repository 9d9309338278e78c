"""The database servers the store tests talk to, and how to find them.

The shared servers of this machine (loopback, default ports) unless the environment
names others:

* ``WAFER_TEST_REDIS_URL``: ``redis://127.0.0.1:6379/0``
* ``WAFER_TEST_POSTGRES_URL``: ``postgresql://postgres@127.0.0.1:5432/test``
* ``WAFER_TEST_MYSQL_URL``: ``mysql://root@127.0.0.1:3306/test``

A test that needs one calls :func:`require`: it skips with the reason when the server
does not answer, and fails under ``CI=true`` (a missing server is a failure there).
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from tests.support.ci import skip_or_fail

DEFAULTS = {
    "redis": "redis://127.0.0.1:6379/0",
    "postgres": "postgresql://postgres@127.0.0.1:5432/test",
    "mysql": "mysql://root@127.0.0.1:3306/test",
}
DEFAULT_PORTS = {"redis": 6379, "postgres": 5432, "mysql": 3306}


def url(kind: str) -> str:
    """The URL of the ``kind`` server (``redis``, ``postgres`` or ``mysql``)."""
    return os.environ.get(f"WAFER_TEST_{kind.upper()}_URL", DEFAULTS[kind])


@cache
def _answers(kind: str) -> str | None:
    """``None`` if the server accepts a connection, else why not."""
    parts = urlsplit(url(kind))
    host, port = parts.hostname or "127.0.0.1", parts.port or DEFAULT_PORTS[kind]
    try:
        with socket.create_connection((host, port), timeout=2):
            return None
    except OSError as exc:
        return f"no {kind} server at {host}:{port} ({exc})"


def require(kind: str) -> str:
    """The server's URL; skip (or under CI=true fail) when it does not answer."""
    problem = _answers(kind)
    if problem is not None:
        variable = f"WAFER_TEST_{kind.upper()}_URL"
        skip_or_fail(f"{problem}; start it or set {variable}")
    return url(kind)


TABLES = ("users", "sessions", "entries", "locks")


def drop_namespace(store_url: str) -> None:
    """Remove what a test left on a shared server under a store URL's own namespace:
    the keys under its ``?prefix=`` (Redis) or the tables of its ``?table_prefix=`` (SQL).
    Other URLs (SQLite files in a scratch directory) need nothing."""
    parts = urlsplit(store_url)
    query = dict(parse_qsl(parts.query))
    if parts.scheme.startswith("redis") and query.get("prefix"):
        import redis

        client = redis.Redis.from_url(urlunsplit(parts._replace(query="")))
        try:
            keys = list(client.scan_iter(match=_glob_escape(query["prefix"]) + "*", count=1000))
            for start in range(0, len(keys), 500):
                client.delete(*keys[start : start + 500])
        finally:
            client.close()
    elif parts.scheme in ("postgresql", "postgres", "mysql", "mariadb") and query.get(
        "table_prefix"
    ):
        from wafer_py.stores import SQLStore

        store = SQLStore.from_url(store_url)
        prefix = store.table_prefix
        store.close()
        base = urlunsplit(parts._replace(query=""))
        if parts.scheme.startswith("postgres"):
            import psycopg

            with psycopg.connect(base, autocommit=True) as conn:
                for table in TABLES:
                    conn.execute(f"DROP TABLE IF EXISTS {prefix}{table}")
                # The invalidation triggers' function (the triggers went with the tables).
                conn.execute(f"DROP FUNCTION IF EXISTS {prefix}notify_change()")
        else:
            import pymysql

            conn = pymysql.connect(
                host=parts.hostname or "127.0.0.1",
                port=parts.port or 3306,
                user=parts.username or "root",
                password=parts.password or "",
                database=parts.path.lstrip("/"),
            )
            try:
                with conn.cursor() as cursor:
                    for table in TABLES:
                        cursor.execute(f"DROP TABLE IF EXISTS {prefix}{table}")
            finally:
                conn.close()


def _glob_escape(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


#: The stores the multi-process tests run on: SQLite, and each shared server.
STORE_KINDS = ("mysql", "postgres", "redis", "sqlite")


@contextmanager
def fresh_store_url(kind: str, directory: Path | None = None) -> Iterator[str]:
    """The URL of an empty store of ``kind``: a SQLite file in ``directory``, or (for
    ``redis``, ``postgres``, ``mysql``) a namespace of its own on the shared server,
    dropped afterwards."""
    if kind == "sqlite":
        if directory is None:
            raise ValueError("a SQLite store needs a directory")
        yield f"sqlite:///{directory}/sessions-{secrets.token_hex(4)}.db"
        return
    base = require(kind)
    name = "t" + secrets.token_hex(5)
    option = f"prefix={name}:" if kind == "redis" else f"table_prefix={name}_"
    store_url = f"{base}{'&' if '?' in base else '?'}{option}"
    try:
        yield store_url
    finally:
        drop_namespace(store_url)
