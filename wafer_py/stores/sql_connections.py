"""The SQL store's connections: opening them, lending them, and what a failed call does
to the connection it ran on.

:class:`SQLConnections` is the base of :class:`~.sql.SQLStore` and of its operations
(:mod:`.sql_users`, :mod:`.sql_sessions`, :mod:`.sql_entries`), which run their queries
through :meth:`~SQLConnections._cursor` and :meth:`~SQLConnections._transaction`. Apart
so that the operations read as their SQL, and the pool's rules (a driver error is a 503,
a lost connection is closed, a forked child opens its own) are read in one place.
:class:`~.sql.SQLStore`'s constructor sets the attributes declared here.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

from ..exceptions import StoreUnavailable
from .loops import PerLoop
from .sql_async import AsyncPool
from .sql_async import socket_poller as _poller
from .sql_dialects import Dialect
from .sql_pool import Pool, Pooled, close_quietly

__all__ = ["SQLConnections"]

logger = logging.getLogger("wafer_py")


class SQLConnections:
    """The connection side of :class:`~.sql.SQLStore`: its pool, per-loop async pools,
    the errors that make a store unavailable, and the short transactions."""

    dialect: Dialect
    table_prefix: str
    #: The store's statements by name, formatted with its table prefix.
    _q: dict[str, str]
    _driver: Any
    _params: dict[str, Any]
    _password: str
    _own_connect: Callable[[], Any] | None
    _own_async_connect: Callable[[], Awaitable[Any]] | None
    #: The driver's errors that make the store unavailable, and those that lose the
    #: connection (it is closed rather than given back).
    _errors: tuple[type[BaseException], ...]
    _lost: tuple[type[BaseException], ...]
    _pool: Pool
    _async_pools: PerLoop[AsyncPool] | None
    _fork_lock: threading.Lock

    def _open(self) -> Pooled:
        """A new connection for the pool."""
        try:
            conn = self._connect()
        except self._errors as exc:
            raise self._unavailable("cannot connect", exc) from None
        try:
            return Pooled(conn, self.dialect.cursor(conn), _poller(self.dialect.fileno(conn)))
        except BaseException:
            close_quietly(conn)
            raise

    def _connect(self) -> Any:
        if self._own_connect is None:
            return self.dialect.connect(self._driver, self._params)
        conn = self._own_connect()
        try:
            if self.dialect.adopt is not None:
                self.dialect.adopt(self._driver, conn)
        except BaseException:
            close_quietly(conn)
            raise
        return conn

    async def _aopen(self) -> Any:
        """A new asyncio connection for the running loop's pool."""
        assert self.dialect.async_connect is not None
        try:
            if self._own_async_connect is None:
                return await self.dialect.async_connect(self._driver, self._params)
            conn = await self._own_async_connect()
        except self._errors as exc:
            raise self._unavailable("cannot connect", exc) from None
        if not getattr(conn, "autocommit", False):
            await conn.close()
            raise ValueError(
                "async_connect= must return a connection in autocommit mode "
                "(psycopg: AsyncConnection.connect(..., autocommit=True))"
            )
        return conn

    def _pool_after_fork(self) -> Pool:
        """A new pool for a forked child: the inherited connections share their sockets
        with the parent, and closing them would end its sessions, so the child forgets
        them. (The pid is checked on each call rather than in an at-fork hook: servers
        that fork from C, such as uWSGI by default, run no such hooks.)"""
        with self._fork_lock:  # only ever taken in a child, never by the parent
            if self._pool.pid != os.getpid():
                self._pool = self._new_pool(self._pool.size, self._pool.timeout)
            return self._pool

    def _new_pool(self, size: int, timeout: float) -> Pool:
        return Pool(self._open, self._failed, size, timeout, self.dialect.name)

    def _unavailable(self, what: str, exc: BaseException) -> StoreUnavailable:
        detail = f"{self.dialect.name} store: {what}: {type(exc).__name__}: {exc}".strip()
        if self._password:
            detail = detail.replace(self._password, "***")
        return StoreUnavailable(detail=detail + self.dialect.explain(exc))

    def _cursor(self) -> Pooled:
        """A connection borrowed from the pool: ``with`` it for its cursor, given back
        after the block (see :meth:`_failed` when the block raises)."""
        pool = self._pool
        if pool.pid != os.getpid():
            pool = self._pool_after_fork()
        return pool.borrow()

    def _failed(self, pooled: Pooled, exc: BaseException) -> None:
        """A block on a borrowed connection raised ``exc``. A driver error becomes
        StoreUnavailable, and the connection goes back to the pool unless it is lost
        (then it is closed, and the next call connects again). Other exceptions pass;
        the connection goes back, unless the block was interrupted (KeyboardInterrupt, a
        timeout raised into the thread), maybe mid-query: its state is unknown."""
        pool = pooled.pool
        assert pool is not None
        if isinstance(exc, self._errors):
            lost = isinstance(exc, self._lost) or getattr(pooled.conn, "broken", False)
            if lost or pooled.doomed:
                pool.discard(pooled)
            else:
                pool.give_back(pooled)
            raise self._unavailable("query failed", exc) from None
        if isinstance(exc, Exception) and not pooled.doomed:
            pool.give_back(pooled)
        else:
            pool.discard(pooled)

    @contextmanager
    def _transaction(self) -> Iterator[Any]:
        """A short explicit transaction. When its body fails, the error reported is the
        body's: a rollback that fails too (the connection died with the statement) is
        logged and its connection discarded, never raised in the original's place."""
        pooled = self._cursor()
        with pooled as cur:
            cur.execute(self.dialect.begin)
            try:
                yield cur
            except BaseException as exc:
                try:
                    cur.execute("ROLLBACK")
                except self._errors as err:
                    pooled.doomed = True
                    logger.warning(
                        "wafer_py: %s store: rollback failed (%s) after: %s",
                        self.dialect.name,
                        type(err).__name__,
                        self._unavailable("query failed", exc).detail,
                    )
                raise
            cur.execute("COMMIT")

    def _one(self, name: str, args: dict[str, Any]) -> Any:
        with self._cursor() as cur:
            cur.execute(self._q[name], args)
            return cur.fetchone()

    def _count(self, name: str, args: dict[str, Any]) -> int:
        with self._cursor() as cur:
            cur.execute(self._q[name], args)
            return int(cur.rowcount)
