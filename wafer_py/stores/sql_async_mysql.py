"""MySQL/MariaDB on the event loop: validation's two statements (the lookup and the
touch) through an asyncio driver, in :class:`~.sql_async.AsyncPool` like PostgreSQL's.

Without it an ASGI app validates each request in a worker thread (PyMySQL blocks), which
costs more than the query (BENCHMARKS.md). The driver is asyncmy (``pip install
'wafer-session[sql]'``; why asyncmy rather than aiomysql: docs/operators-mysql.md); when
it is not installed, MySQL validation stays in a worker thread. Everything else stays on
PyMySQL and the threaded pool.

:class:`AsyncMySQL` gives a driver connection the shape the pool expects (psycopg's
``execute`` answering a cursor), connects with the same parameters as PyMySQL (TLS
context included, :mod:`.sql_mysql`), and bounds every statement by the read timeout.
An idle connection the server closed is noticed by the driver, not by polling its
socket (the event loop reads that socket itself), and replaced before use. It also
drives aiomysql (the same API), which ``bench/mysql_async_drivers.py`` compares.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

__all__ = ["DRIVER", "AsyncMySQL", "async_connect", "installed"]

#: The asyncio driver's module.
DRIVER = "asyncmy"

#: The driver's connect() arguments, from PyMySQL's parameters (the same meaning).
_PASSED = (
    "host",
    "port",
    "user",
    "password",
    "unix_socket",
    "charset",
    "autocommit",
    "connect_timeout",
    "client_flag",
    "sql_mode",
    "init_command",
    "program_name",
    "ssl",
)
#: The name each driver gives the database parameter.
_DATABASE = {"asyncmy": "database", "aiomysql": "db"}


def installed(driver: str = DRIVER) -> bool:
    """Whether ``driver`` can be imported (checked without importing it)."""
    return importlib.util.find_spec(driver) is not None


@contextmanager
def _as_pymysql_errors() -> Iterator[None]:
    """asyncmy's errors re-raised as PyMySQL's classes of the same names (aiomysql raises
    PyMySQL's already), so the store handles one family of errors on both paths; a
    refused server certificate says which setting to check."""
    try:
        yield
    except Exception as exc:
        import pymysql

        from .sql_mysql import tls_hint

        hint = tls_hint(exc)
        if not type(exc).__module__.startswith("asyncmy") and hint is None:
            raise
        kind = getattr(pymysql.err, type(exc).__name__, None)
        if not (isinstance(kind, type) and issubclass(kind, pymysql.err.Error)):
            kind = pymysql.err.OperationalError
        args = exc.args if len(exc.args) == 2 else (2003, str(exc))
        if hint is not None:  # which setting to check, as on the threaded path
            args = (args[0], f"{args[1]}; {hint}")
        raise kind(*args) from exc


def _gone(conn: Any) -> bool:
    """Whether the server closed ``conn`` (its goodbye, a restart, ``wait_timeout``):
    asyncmy's transport closes on the server's end of stream, aiomysql's reader sees it."""
    transport = getattr(conn, "_transport", None)
    if transport is not None:
        return bool(transport.is_closing())
    reader = getattr(conn, "_reader", None)
    return reader is None or bool(reader.at_eof())


@dataclass
class _Result:
    """A statement's rows and row count, as psycopg's async cursor gives them."""

    rows: Sequence[Any]
    rowcount: int

    async def fetchall(self) -> Sequence[Any]:
        return self.rows


class AsyncMySQL:
    """One asyncio connection to MySQL, reopened when the server closed it while idle."""

    def __init__(self, driver: str, params: dict[str, Any]) -> None:
        self._module = importlib.import_module(driver)
        self._kwargs = {k: params[k] for k in _PASSED if k in params}
        self._kwargs[_DATABASE[driver]] = params.get("database")
        # Both drivers paste sql_mode into SET sql_mode=... unquoted; a list of modes
        # needs the quotes (PyMySQL binds it as a parameter).
        mode = self._kwargs.get("sql_mode")
        if mode is not None:
            assert "'" not in mode
            self._kwargs["sql_mode"] = f"'{mode}'"
        self._connect_timeout = float(params["connect_timeout"])
        self._timeout = float(max(params["read_timeout"], params["write_timeout"]))
        self._tls = params.get("ssl") is not None
        self._conn: Any = None

    async def open(self) -> AsyncMySQL:
        """Connect (the handshake included) within the connect timeout."""
        with _as_pymysql_errors():
            async with asyncio.timeout(self._connect_timeout):
                self._conn = await self._module.connect(**self._kwargs)
        if self._tls and not getattr(self._conn, "_secure", False):
            # aiomysql goes on in plain text when the server offers no TLS; refuse that.
            self._conn.close()
            raise ConnectionError("TLS was asked for, but the server did not start it")
        return self

    async def execute(self, sql: str, args: dict[str, Any]) -> _Result:
        """Run one statement within the read timeout."""
        if self._conn is None or _gone(self._conn):
            await self.close()
            await self.open()
        with _as_pymysql_errors():
            async with asyncio.timeout(self._timeout):
                async with self._conn.cursor() as cur:
                    await cur.execute(sql, args)
                    rows = await cur.fetchall() if cur.description else ()
                    return _Result(rows, cur.rowcount)

    async def close(self) -> None:
        """Close the socket now (no goodbye to wait for: the pool drops it either way)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()


async def async_connect(driver: Any, params: dict[str, Any]) -> AsyncMySQL:
    """An :class:`AsyncMySQL` on :data:`DRIVER` (``driver``, PyMySQL, is not used here)."""
    return await AsyncMySQL(DRIVER, params).open()
