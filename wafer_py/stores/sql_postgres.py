"""PostgreSQL's side of the SQL store's connections, through psycopg 3: how a store URL
becomes connection parameters, how connections are opened (sync and asyncio) or adopted
from the operator's ``connect=``, and the hint an error gets.

The URL's query options other than the store's own go to psycopg
(``prepare_threshold``) or to libpq (``sslmode``, ``sslrootcert``, ``connect_timeout``,
``application_name``, ``options``, ``target_session_attrs``, ...: the keywords the
installed libpq knows); any other key stops the store at start.

A pooler between the store and the server (PgBouncer) is noticed on each new connection:
the backend pid the connection was given at its start (the pooler's own cancel key) is
not the pid of the backend that answers. psycopg's automatic prepared statements are
then switched off on it, unless the URL gives ``prepare_threshold``: in transaction mode
a prepared statement's name would reach server connections that never prepared it, or
that another client prepared another statement under (that one would run instead).
"""

from __future__ import annotations

import functools
import logging
from typing import Any
from urllib.parse import SplitResult, quote, urlencode, urlunsplit

from .sql_options import refuse_unknown

__all__ = ["pg_adopt", "pg_async_connect", "pg_connect", "pg_explain", "pg_params"]

logger = logging.getLogger("wafer_py")

#: psycopg's own connection options a URL may give; the others are libpq's.
_PSYCOPG_OPTIONS = ("prepare_threshold",)
#: SQLSTATEs of a named prepared statement missing, or made twice, on the server
#: connection: what psycopg's automatic prepared statements meet behind a pooler that
#: hands each transaction to another server connection (PgBouncer's transaction mode).
_PREPARED_STATEMENT_ERRORS = ("26000", "42P05")


def pg_params(
    parts: SplitResult, options: dict[str, str], connect_timeout: float, io_timeout: float
) -> dict[str, Any]:
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    options = dict(options)
    threshold = options.pop("prepare_threshold", None)
    libpq = [o.keyword.decode() for o in psycopg.pq.Conninfo.get_defaults()]
    refuse_unknown(options, "PostgreSQL", {"psycopg": _PSYCOPG_OPTIONS, "libpq": libpq})
    # libpq reads the URL itself (percent-escapes, several hosts, sslmode and the other
    # query options); what the URL leaves unsaid gets the store's defaults.
    # quote, not urlencode's default quote_plus: libpq reads no "+" as a space.
    query = urlencode(options, quote_via=quote)
    url = urlunsplit(("postgresql", parts.netloc, parts.path, query, ""))
    try:
        given = conninfo_to_dict(url)
    except psycopg.Error as exc:
        message = str(exc).strip()
        if parts.password:
            message = message.replace(parts.password, "***")
        raise ValueError(f"the PostgreSQL store URL cannot be read: {message}") from None
    params: dict[str, Any] = {
        "connect_timeout": max(2, round(connect_timeout)),  # libpq's minimum is 2 s
        # A query to a server that vanished without a word (a network cut) fails after
        # about io_timeout seconds instead of the kernel's default of minutes.
        "tcp_user_timeout": round(io_timeout * 1000),
        "keepalives": 1,
        "keepalives_idle": max(1, round(io_timeout / 2)),
        "keepalives_interval": max(1, round(io_timeout / 6)),
        "keepalives_count": 3,
        "application_name": "wafer_py",
    }
    params.update(given)
    if threshold is not None:
        params["prepare_threshold"] = _prepare_threshold(threshold)
    return params


def _prepare_threshold(value: str) -> int | None:
    """``prepare_threshold``: how many runs of a query before psycopg prepares it on the
    connection (``0``: from the first), or ``none``: never (behind PgBouncer before
    1.21 in transaction mode, which cannot follow prepared statements)."""
    if value.strip().lower() == "none":
        return None
    try:
        threshold = int(value)
    except ValueError:
        threshold = -1
    if threshold < 0:
        raise ValueError(
            f"prepare_threshold={value!r} in the store URL: a whole number >= 0, or none "
            "(never prepare: behind PgBouncer in transaction mode)"
        )
    return threshold


#: The pid of the backend answering (prepare=False: psycopg's statement cache untouched).
_BACKEND_PID = "SELECT pg_backend_pid()"


def pg_connect(driver: Any, params: dict[str, Any]) -> Any:
    conn = driver.connect(autocommit=True, **params)
    if "prepare_threshold" in params:
        return conn
    try:
        row = conn.execute(_BACKEND_PID, prepare=False).fetchone()
    except BaseException:
        conn.close()
        raise
    _no_prepare_behind_a_pooler(conn, row)
    return conn


async def pg_async_connect(driver: Any, params: dict[str, Any]) -> Any:
    conn = await driver.AsyncConnection.connect(autocommit=True, **params)
    if "prepare_threshold" in params:
        return conn
    try:
        row = await (await conn.execute(_BACKEND_PID, prepare=False)).fetchone()
    except BaseException:
        await conn.close()
        raise
    _no_prepare_behind_a_pooler(conn, row)
    return conn


def _behind_a_pooler(conn: Any, row: Any) -> bool:
    """Whether the backend answering (``row``: its pid) is not the one the connection's
    start named: a pooler answered the start (PgBouncer gives each client a cancel key
    of its own)."""
    return row is not None and bool(row[0] != conn.info.backend_pid)


def _no_prepare_behind_a_pooler(conn: Any, row: Any) -> None:
    if _behind_a_pooler(conn, row):
        conn.prepare_threshold = None
        _say_pooler(f"{conn.info.host}:{conn.info.port}")


@functools.cache
def _say_pooler(where: str) -> None:
    logger.info(
        "wafer_py: PostgreSQL store: %s is a connection pooler, not the server: psycopg's "
        "prepared statements are off on its connections (?prepare_threshold=N in the "
        "store URL keeps them: for a pooler in session mode, or PgBouncer 1.21+ with "
        "max_prepared_statements)",
        where,
    )


def pg_adopt(driver: Any, conn: Any) -> None:
    if not isinstance(conn, driver.Connection):
        raise TypeError(
            f"connect= returned a {type(conn).__name__}, not a psycopg Connection "
            "(a PostgreSQL store URL)"
        )
    if not conn.autocommit:
        # The store's statements are each their own transaction, or in its own BEGIN.
        conn.autocommit = True
    # The operator's settings stay; a pooler in front is worth a word, once.
    if conn.prepare_threshold is not None and _behind_a_pooler(
        conn, conn.execute(_BACKEND_PID, prepare=False).fetchone()
    ):
        _warn_own_connections(f"{conn.info.host}:{conn.info.port}")


@functools.cache
def _warn_own_connections(where: str) -> None:
    logger.warning(
        "wafer_py: PostgreSQL store: connect= gives connections through a pooler (%s) "
        "with psycopg's prepared statements on: in transaction mode (PgBouncer before "
        "1.21) they fail or run another client's statement; make them with "
        "prepare_threshold=None",
        where,
    )


def pg_explain(exc: BaseException) -> str:
    if getattr(exc, "sqlstate", None) in _PREPARED_STATEMENT_ERRORS:
        return (
            " (a pooler in transaction mode, such as PgBouncer before 1.21, between the "
            "store and PostgreSQL cannot follow prepared statements: use "
            "?prepare_threshold=none in the store URL)"
        )
    if "unsupported startup parameter" in str(exc):
        return (
            " (PgBouncer passes on few startup parameters: set the option on the "
            "database role instead, ALTER ROLE ... SET, and drop it from the store URL)"
        )
    return ""
