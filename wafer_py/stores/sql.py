"""PostgreSQL and MySQL/MariaDB stores, through plain DB-API drivers.

Why no SQLAlchemy: the store runs a dozen small queries, all fixed, so an ORM or a query
builder would add a dependency and a layer for nothing. What differs between the two
servers is a little SQL (the upsert, the lock, the batched delete, the schema's types),
kept in one table, :class:`~.sql_dialects.Dialect`. The drivers are psycopg 3
(PostgreSQL) and PyMySQL (MySQL, MariaDB), the ``sql`` extra; each is
imported only when a store for its server is opened.

Connections are in autocommit mode: a single statement is its own transaction, and the
few operations that need more than one statement to be atomic wrap them in an explicit
short transaction.

Each store borrows its connections from a bounded pool, :mod:`.sql_pool`
(``max_connections``, default 10; ``pool_timeout``, default 5 s, then 503). Under asyncio,
validation (the lookup and the touch) runs on the event loop through a second pool per
loop of async connections (:mod:`.sql_async`): psycopg's, and asyncmy's for MySQL when
it is installed (:mod:`.sql_async_mysql`; without it, a worker thread). A forked child
opens a pool of its own (it never uses its parent's connections, which share their
sockets).

Here is :class:`SQLStore`'s opening: its URL and options, its statements, its tables.
Its operations are its bases, one module each: :mod:`.sql_users`, :mod:`.sql_sessions`
(validation's lookup and touch) and :mod:`.sql_entries` (entries and locks), all on
:mod:`.sql_connections` (lending a connection, and what a failed call does to it).
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import threading
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlsplit

from ..exceptions import StoreUnavailable
from ..extras import install_hint
from ..logsafe import redact_url
from .base import SessionStore
from .entries import EntryStore
from .invalidation import InvalidationChannel
from .loops import PerLoop
from .sql_async import AsyncPool
from .sql_async import socket_poller as _poller  # noqa: F401  (imported from here)
from .sql_dialects import DIALECTS, PURGED, QUERIES
from .sql_entries import SQLEntries
from .sql_options import only_options, store_options
from .sql_sessions import SQLSessions
from .sql_users import SQLUsers

__all__ = ["SQLStore"]

logger = logging.getLogger("wafer_py")

_INSTALL = install_hint("sql")
#: The store's tables, named with its ``table_prefix``.
TABLES = ("users", "sessions", "entries", "locks")


def _import_driver(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise ImportError(f"the SQL store needs the {name} package: {_INSTALL}") from exc


class SQLStore(SQLSessions, SQLUsers, SQLEntries, SessionStore, EntryStore):
    """Sessions in PostgreSQL (``postgresql://user:pass@host:5432/db``) or MySQL/MariaDB
    (``mysql://user:pass@host:3306/db``).

    The tables (``wafer_users``, ``wafer_sessions``, ``wafer_entries``, ``wafer_locks``,
    named with ``table_prefix``, which the URL may also give as ``?table_prefix=app_``)
    and their indexes are created when missing; ``create_tables=False`` skips that, for
    a database user without the right to create tables (an operator made them).

    At most ``max_connections`` connections (default 10) are open at once, in a pool the
    threads share; a thread waits up to ``pool_timeout`` seconds (default 5) for one
    when all are in use. The URL may give both too: ``?max_connections=20&pool_timeout=2``.
    Size it so that processes x ``max_connections`` stays under the server's own
    ``max_connections`` (the module's docstring says more).

    Other PostgreSQL URL options go to psycopg (``prepare_threshold``; without it,
    prepared statements are off behind a pooler such as PgBouncer, which the store
    notices) and libpq (``sslmode``, ``application_name``, ...); an unknown one stops
    the store at start. ``connect_timeout`` bounds a connection
    attempt and ``io_timeout`` a query to a server that stopped answering, so an outage
    is answered with 503 quickly.

    Bring your own connections: ``connect()`` returns one of the URL's driver (psycopg,
    PyMySQL) for the pool, ``async_connect()`` (PostgreSQL) a psycopg AsyncConnection
    for validation on the loop; the URL then gives only the scheme and the store's
    options (``postgresql://?table_prefix=app_``). See docs/operators-postgresql.md.
    """

    schemes: ClassVar[tuple[str, ...]] = ("postgresql", "postgres", "mysql", "mariadb")
    #: A server many app processes use: they need one configured secret key.
    shared: ClassVar[bool] = True

    def __init__(
        self,
        url: str,
        *,
        connect: Callable[[], Any] | None = None,
        async_connect: Callable[[], Awaitable[Any]] | None = None,
        table_prefix: str | None = None,
        max_connections: int | None = None,
        pool_timeout: float | None = None,
        connect_timeout: float = 3.0,
        io_timeout: float = 10.0,
        create_tables: bool = True,
    ) -> None:
        parts = urlsplit(url)
        scheme = parts.scheme.lower().split("+", 1)[0]  # postgresql+psycopg:// too
        dialect = DIALECTS.get(scheme)
        if dialect is None:
            raise ValueError(f"not a PostgreSQL or MySQL URL: {parts.scheme}://...")
        options = dict(parse_qsl(parts.query, keep_blank_values=True))
        mine = store_options(
            options,
            table_prefix=table_prefix,
            max_connections=max_connections,
            pool_timeout=pool_timeout,
        )
        prefix, size, wait = mine.table_prefix, mine.max_connections, mine.pool_timeout
        self.dialect = dialect
        self.table_prefix = prefix
        self._url = redact_url(url)
        self._driver = _import_driver(dialect.driver)
        self._own_connect, self._own_async_connect = connect, async_connect
        if connect is None and async_connect is None:
            self._params = dialect.params(parts, options, connect_timeout, io_timeout)
        else:
            only_options(parts, options, connect, async_connect, dialect.async_connect)
            self._params = {}
        self._password = str(self._params.get("password") or "")
        self._errors = (self._driver.Error, OSError)
        self._lost = (
            self._driver.OperationalError,
            self._driver.InterfaceError,
            OSError,
        )
        fill = {"p": prefix, "key": dialect.key}
        self._q = {name: sql.format(**fill) for name, sql in QUERIES.items()}
        for name in ("ensure_user", "set_phone", "set_entry", "take_lock"):
            self._q[name] = getattr(dialect, name).format(**fill)
        for table, pk in PURGED:
            self._q["purge_" + table] = dialect.purge_batch.format(
                p=prefix, table=table, pk=pk.format(**fill)
            )
            self._q["purge_all_" + table] = (
                f"DELETE FROM {prefix}{table} WHERE expires_at <= %(now)s"
            )
        self._by_hashes = {}
        self._pool = self._new_pool(size, wait)
        # Under asyncio, validation's queries on the event loop, where the driver can.
        self._async_pools = None
        if dialect.async_connect is not None and (connect is None or async_connect is not None):
            self.supports_async = True
            self._async_pools = PerLoop(
                lambda: AsyncPool(self._aopen, dialect.fileno, size, wait, dialect.name),
                AsyncPool.aclose,
            )
        self._fork_lock = threading.Lock()
        if not create_tables:
            return
        try:
            self._create_tables()
        except StoreUnavailable as exc:
            logger.error("wafer_py: cannot create the session store's tables: %s", exc.detail)
            raise

    @classmethod
    def from_url(cls, url: str) -> SQLStore:
        """``postgresql://user:pass@host:5432/db`` (or ``postgres://``),
        ``mysql://user:pass@host:3306/db`` (or ``mariadb://``); options
        ``?table_prefix=app_&max_connections=10&pool_timeout=5``."""
        return cls(url)

    @property
    def max_connections(self) -> int:
        """The most connections this process's pool opens at once."""
        return self._pool.size

    @property
    def pool_timeout(self) -> float:
        """How long a call waits for a connection when all are in use, in seconds."""
        return self._pool.timeout

    def __repr__(self) -> str:
        return (
            f"SQLStore({self._url!r}, table_prefix={self.table_prefix!r}, "
            f"max_connections={self._pool.size})"
        )

    def invalidation_channel(self) -> InvalidationChannel | None:
        """PostgreSQL: LISTEN on what the tables' triggers NOTIFY (:mod:`.sql_notify`).
        MySQL: none."""
        if self.dialect.name != "PostgreSQL":
            return None
        from .sql_notify import PostgresNotifyChannel

        return PostgresNotifyChannel(self)

    def close(self) -> None:
        """Close the pool's connections: the idle ones now, the lent ones when they come
        back. A later call opens new ones."""
        self._pool.close()
        if self._async_pools is not None:
            self._async_pools.close()

    # -- the tables -------------------------------------------------------------
    def missing_tables(self) -> list[str]:
        """The names of this store's tables that do not exist. A read-only probe (nothing
        is created) for a store opened with ``create_tables=False``: the ``wafer-py``
        commands that only read tell a mistyped ``table_prefix`` from an empty store."""
        names = [f"{self.table_prefix}{table}" for table in TABLES]
        schema = (
            "ANY (current_schemas(false))" if self.dialect.name == "PostgreSQL" else "DATABASE()"
        )
        wanted = ", ".join(f"%(t{i})s" for i in range(len(names)))
        with self._cursor() as cur:
            cur.execute(
                "SELECT table_name FROM information_schema.tables "
                f"WHERE table_schema = {schema} AND table_name IN ({wanted})",
                {f"t{i}": name for i, name in enumerate(names)},
            )
            found = {str(row[0]) for row in cur.fetchall()}
        return [name for name in names if name not in found]

    def _create_tables(self) -> None:
        fill = {"p": self.table_prefix}
        statements = [sql.format(**fill) for sql in self.dialect.schema]
        if self.dialect.name == "PostgreSQL":  # the triggers of the invalidation channel
            from .sql_notify import notify_schema

            statements += notify_schema(self.table_prefix)
        if self.dialect.schema_lock is None:
            with self._cursor() as cur:
                for sql in statements:
                    cur.execute(sql)
                for table, index, create in self.dialect.added_indexes:
                    self._add_index(cur, table.format(**fill), index.format(**fill), create)
            return
        # Concurrent CREATE TABLE IF NOT EXISTS can still collide in PostgreSQL's
        # catalog: processes starting together take turns.
        digest = hashlib.sha256(b"wafer_py tables " + self.table_prefix.encode()).digest()
        lock = int.from_bytes(digest[:8], "big", signed=True)
        with self._transaction() as cur:
            cur.execute(self.dialect.schema_lock, {"lock": lock})
            for sql in statements:
                cur.execute(sql)

    def _add_index(self, cur: Any, table: str, index: str, create: str) -> None:
        """Add an index a table made by an older release lacks (MySQL's migration)."""
        cur.execute(
            "SELECT COUNT(*) FROM information_schema.statistics WHERE table_schema = "
            "DATABASE() AND table_name = %(table)s AND index_name = %(index)s",
            {"table": table, "index": index},
        )
        if cur.fetchone()[0]:
            return
        try:
            cur.execute(create.format(p=self.table_prefix))
        except self._errors as exc:
            # Another process starting at the same time added it first.
            if "Duplicate key name" not in str(exc):
                raise
