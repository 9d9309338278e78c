"""Read the ``cSessionInfo`` table of an original Wafer server from MySQL or MariaDB.

:class:`WaferTable` opens the table read-only with PyMySQL (the ``sql`` extra, imported here
only), tells the v1 PHP session server's schema (``id`` primary key) from the v2 Node SDK's
(``open_id`` primary key), and streams the rows as :class:`LegacyRow` values, the rows of one
``open_id`` together, newest first. :class:`MigrationError` is what it raises when the table
cannot be read, as one line with any password masked. What is done with the rows is
:func:`wafer_py.cli.legacy.import_users`'s; these names are importable from there too.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from ..extras import install_hint
from ..logsafe import redact_url

__all__ = ["LegacyRow", "MigrationError", "WaferTable"]

_TABLE_NAME = re.compile(r"[A-Za-z0-9_$]{1,64}")
SQL_EXTRA = install_hint("sql")


class MigrationError(Exception):
    """The Wafer table cannot be read: no driver, no server, no such table.

    ``str(exc)`` is one line for the operator, with any password in a URL masked.
    """


@dataclass(frozen=True)
class LegacyRow:
    """One ``cSessionInfo`` row, as much of it as the import reads.

    ``created`` and ``last_visit`` are Unix seconds, ``None`` when the row has none.
    """

    open_id: str | None
    user_info: str | bytes | None
    created: float | None = None
    last_visit: float | None = None


class WaferTable:
    """A ``cSessionInfo`` table of an original Wafer server, in MySQL or MariaDB, read-only.

    ``url`` is ``mysql://user:password@host:3306/cAuth`` (``mariadb://`` too;
    ``?unix_socket=/path`` for a socket). Needs PyMySQL (the ``sql`` extra), imported
    here only. Raises :class:`MigrationError` when the table cannot be read.
    """

    def __init__(self, url: str, table: str = "cSessionInfo") -> None:
        if not _TABLE_NAME.fullmatch(table):
            raise MigrationError(f"not a table name: {table!r}")
        self.url = url
        self.table = table
        self._conn = _connect(url)
        try:
            columns = self._columns()
        except BaseException:
            self.close()
            raise
        missing = {"open_id", "user_info"} - set(columns)
        if missing:
            self.close()
            raise MigrationError(
                f"table {table} has no {' or '.join(sorted(missing))} column: "
                "is it the cSessionInfo table of a Wafer server?"
            )
        self.columns = columns
        if columns.get("id") == "PRI":
            self.schema = "v1"  # the PHP session server
        elif columns.get("open_id") == "PRI":
            self.schema = "v2"  # the Node SDK
        else:
            self.schema = "unknown"

    def _columns(self) -> dict[str, str]:
        """Column name -> its key kind (``PRI``, ``MUL``, ...)."""
        rows = self._query(f"SHOW COLUMNS FROM `{self.table}`")
        return {str(row[0]).lower(): str(row[3] or "") for row in rows}

    def _query(self, sql: str) -> list[tuple[Any, ...]]:
        import pymysql

        try:
            with self._conn.cursor() as cursor:
                cursor.execute(sql)
                return list(cursor.fetchall())
        except pymysql.MySQLError as exc:
            raise MigrationError(f"{redact_url(self.url)}: {_mysql_message(exc)}") from None

    def count(self) -> int:
        """How many rows the table holds (for a progress bar)."""
        sql = f"SELECT COUNT(*) FROM `{self.table}`"  # noqa: S608 - a checked table name
        return int(self._query(sql)[0][0])

    def rows(self) -> Iterator[LegacyRow]:
        """The rows, streamed from the server (a server-side cursor: a big table never
        sits in memory), the rows of one ``open_id`` together, newest first.

        Times are read in the MySQL session's time zone (the server's, by default), the
        zone the original servers wrote them in when they ran beside it.
        """
        import pymysql
        import pymysql.cursors

        def when(column: str) -> str:
            return f"UNIX_TIMESTAMP(`{column}`)" if column in self.columns else "NULL"

        order = ["CAST(`open_id` AS BINARY)"]  # exact bytes: not the collation's idea of equal
        if "last_visit_time" in self.columns:
            order.append("`last_visit_time` DESC")
        if "id" in self.columns:
            order.append("`id` DESC")
        columns = f"`open_id`, `user_info`, {when('create_time')}, {when('last_visit_time')}"
        # Only the checked table name and constant column names go into the text.
        sql = f"SELECT {columns} FROM `{self.table}` ORDER BY {', '.join(order)}"  # noqa: S608
        # Not ``with cursor``: closing a server-side cursor reads the rest of the result,
        # which an import stopped half-way must not wait for (close() drops the connection).
        cursor = self._conn.cursor(pymysql.cursors.SSCursor)
        finished = False
        try:
            cursor.execute(sql)
            while batch := cursor.fetchmany(500):
                for open_id, user_info, created, last_visit in batch:
                    yield LegacyRow(open_id, user_info, _seconds(created), _seconds(last_visit))
            cursor.close()
            finished = True
        except pymysql.MySQLError as exc:
            raise MigrationError(f"{redact_url(self.url)}: {_mysql_message(exc)}") from None
        finally:
            if not finished:
                # Stopped half-way: the connection is dropped with the rest of the result
                # unread. Tell PyMySQL not to read it later either (when the cursor is
                # collected), which would fail noisily on the closed connection.
                result = getattr(cursor, "_result", None)
                if result is not None:
                    result.unbuffered_active = False
                self.close()

    def close(self) -> None:
        """Close the connection (at once, even in the middle of :meth:`rows`)."""
        with contextlib.suppress(Exception):  # already closed, or the server went away
            self._conn.close()

    def __enter__(self) -> WaferTable:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _seconds(value: Any) -> float | None:
    # UNIX_TIMESTAMP gives 0 (MySQL) or NULL (MariaDB) for a zero or out-of-range date.
    return float(value) if value else None


def _mysql_message(exc: Exception) -> str:
    args: tuple[Any, ...] = exc.args
    if len(args) >= 2 and isinstance(args[0], int):
        return f"{args[1]} (MySQL error {args[0]})"
    return str(exc) or type(exc).__name__


def _connect(url: str) -> Any:
    try:
        import pymysql
    except ImportError:
        raise MigrationError(f"reading a Wafer table needs PyMySQL: {SQL_EXTRA}") from None
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("mysql", "mariadb", "mysql+pymysql"):
        raise MigrationError(
            f"not a MySQL URL: {redact_url(url)} (mysql://user:password@host:3306/cAuth)"
        )
    database = unquote(parts.path.lstrip("/"))
    if not database:
        raise MigrationError(
            f"the URL names no database: {redact_url(url)} (mysql://user@host:3306/cAuth)"
        )
    try:
        port = parts.port or 3306
    except ValueError:
        raise MigrationError(f"bad port in {redact_url(url)}") from None
    options: dict[str, Any] = {
        "host": parts.hostname or "127.0.0.1",
        "port": port,
        "user": unquote(parts.username or "root"),
        "password": unquote(parts.password or ""),
        "database": database,
        "charset": "utf8mb4",
        "connect_timeout": 10,
    }
    socket = parse_qs(parts.query).get("unix_socket")
    if socket:
        options["unix_socket"] = socket[0]
    try:
        return pymysql.connect(**options)
    except pymysql.MySQLError as exc:
        raise MigrationError(
            f"cannot connect to {redact_url(url)}: {_mysql_message(exc)}"
        ) from None
