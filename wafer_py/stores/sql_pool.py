"""The SQL store's connection pool: at most ``size`` connections, each lent to one thread
at a time, waiters served first come, first served.

Why bounded: a connection per thread ties the server's connections to the app's threads,
and apps have many (uvicorn's thread pool has 40, gunicorn ``--threads``), so a few
processes would exhaust a PostgreSQL server (``max_connections`` 100 by default). A store
operation holds its connection for a round trip or two, so a few serve many threads. A
thread that finds them all lent waits up to ``timeout`` seconds, then gets
:class:`~wafer_py.exceptions.StoreUnavailable` ("connection pool exhausted"), a 503.

What it guarantees:

* a connection is lent with the cursor it keeps (a new cursor would make psycopg look up
  every column's loader again);
* an idle connection the server closed (a restart, a KILL, MySQL's ``wait_timeout``) is
  seen before use (the server's goodbye waits on its socket) and replaced;
* a connection whose call failed or was interrupted is settled by the store's ``failed``
  hook (closed, never given back, when its state is unknown);
* :meth:`Pool.close` closes the idle connections at once and the lent ones when they come
  back. Idle connections are not closed for being idle;
* waiting threads queue in order, each on a lock of its own, and a connection given back
  goes straight to the first of them, so no thread waits past ``timeout`` while later
  ones are served.

Sizing (processes x ``max_connections`` under the server's limit) is in docs/operators.md;
the costs of lending are in BENCHMARKS.md.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import deque
from collections.abc import Callable
from contextlib import suppress
from typing import Any

from ..exceptions import StoreUnavailable

__all__ = ["Pool", "Pooled", "close_quietly"]

logger = logging.getLogger("wafer_py")


class Pooled:
    """A connection of the pool, its cursor, and a poll object on its socket.

    ``with`` on it, once borrowed, gives the cursor and gives the connection back at the
    end (a class rather than a generator-based context manager: see BENCHMARKS.md).
    """

    __slots__ = ("conn", "cursor", "doomed", "generation", "poll", "pool")

    def __init__(self, conn: Any, cursor: Any, poll: Any) -> None:
        self.conn, self.cursor, self.poll = conn, cursor, poll
        self.generation = 0
        self.pool: Pool | None = None
        #: Its state is unknown (a rollback failed): closed, never given back.
        self.doomed = False

    def __enter__(self) -> Any:
        return self.cursor

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: Any
    ) -> None:
        assert self.pool is not None
        if exc is None:
            self.pool.give_back(self)
        else:
            self.pool.failed(self, exc)


class _Waiter:
    """A thread waiting for a connection: it blocks on ``lock``, which whoever hands it
    a connection (``conn``) or a free slot (``conn`` left None) releases."""

    __slots__ = ("conn", "lock")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.lock.acquire()
        self.conn: Pooled | None = None


class Pool:
    """At most ``size`` connections, each lent to one thread at a time.

    ``open`` counts the connections open (idle or lent) and those being opened. The idle
    ones are a stack: the last given back goes out first, so a light load keeps using
    the same few. Connections are opened outside the lock, by ``connect``, which raises
    :class:`StoreUnavailable`.
    """

    def __init__(
        self,
        connect: Callable[[], Pooled],
        failed: Callable[[Pooled, BaseException], None],
        size: int,
        timeout: float,
        name: str,
    ) -> None:
        self._connect = connect
        #: Settles a connection whose ``with`` block raised: gives it back or discards
        #: it, and raises what the caller should see.
        self.failed = failed
        self.size, self.timeout, self.name = size, timeout, name
        self.pid = os.getpid()
        self.open = 0
        self._idle: list[Pooled] = []
        self._waiters: deque[_Waiter] = deque()
        self._lock = threading.Lock()
        #: Bumped by close(): a connection of an older generation is closed when it
        #: comes back.
        self._generation = 0

    def borrow(self) -> Pooled:
        waiter = None
        with self._lock:
            if self._idle:
                pooled: Pooled | None = self._idle.pop()
            elif self.open < self.size:
                self.open += 1
                pooled = None
            else:
                waiter = _Waiter()
                self._waiters.append(waiter)
        if waiter is not None:
            pooled = self._wait(waiter)
        if pooled is None:
            return self._new()
        if pooled.poll is not None and pooled.poll.poll(0):
            # The server spoke to an idle connection: it ended it (a restart, a KILL,
            # MySQL's wait_timeout). Replace it now rather than fail this call.
            logger.debug("wafer_py: the %s server closed a connection", self.name)
            close_quietly(pooled.conn)
            return self._new()
        return pooled

    def give_back(self, pooled: Pooled) -> None:
        with self._lock:
            if pooled.generation == self._generation:
                if self._waiters:
                    waiter = self._waiters.popleft()
                    waiter.conn = pooled
                    waiter.lock.release()
                else:
                    self._idle.append(pooled)
                return
        self.discard(pooled)  # lent when the pool was closed

    def discard(self, pooled: Pooled) -> None:
        """Close a connection instead of giving it back; its slot is free again."""
        close_quietly(pooled.conn)
        self._free_slot()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
            self.open -= len(idle)
            self._generation += 1
        for pooled in idle:
            close_quietly(pooled.conn)

    def _wait(self, waiter: _Waiter) -> Pooled | None:
        """What ``waiter`` was handed: a connection, or None for a slot to connect in."""
        try:
            if waiter.lock.acquire(timeout=self.timeout):
                return waiter.conn
        except BaseException:  # interrupted: pass on what was handed meanwhile, if any
            if not self._leave(waiter):
                self._pass_on(waiter.conn)
            raise
        if self._leave(waiter):
            raise StoreUnavailable(
                detail=f"connection pool exhausted: all {self.size} {self.name} "
                f"connections stayed in use for {self.timeout:g} s "
                "(raise max_connections or pool_timeout, or add capacity)"
            )
        return waiter.conn  # handed something just as the wait ended

    def _leave(self, waiter: _Waiter) -> bool:
        """Take ``waiter`` out of the queue; False if it was handed something already."""
        with self._lock:
            if waiter in self._waiters:
                self._waiters.remove(waiter)
                return True
        return False

    def _pass_on(self, pooled: Pooled | None) -> None:
        if pooled is None:
            self._free_slot()
        else:
            self.give_back(pooled)

    def _new(self) -> Pooled:
        """Open a connection in a slot already counted; free the slot if that fails."""
        generation = self._generation
        try:
            pooled = self._connect()
        except BaseException:
            self._free_slot()
            raise
        pooled.generation, pooled.pool = generation, self
        return pooled

    def _free_slot(self) -> None:
        with self._lock:
            if self._waiters:  # the slot passes to the first waiter, which connects
                self._waiters.popleft().lock.release()
            else:
                self.open -= 1


def close_quietly(conn: Any) -> None:
    # A lost connection may fail to close; it is dropped either way.
    with suppress(Exception):
        conn.close()
