"""PostgreSQL on the event loop: the pool of psycopg async connections that
:class:`~wafer_py.stores.sql.SQLStore` validates sessions with under asyncio.

Without it, every validated request of an ASGI app would hand its query to a worker
thread and back, which costs more than the query itself (BENCHMARKS.md). Only
validation's two statements (the lookup and the touch) run here; everything else stays
on the store's threaded pool.

One pool per event loop (a connection belongs to the loop that opened it), at most
``size`` connections, each used by one task at a time; a task waits up to ``timeout``
seconds for one. A connection whose query failed or was cancelled is closed, not given
back (its state is unknown); an idle one the server closed is noticed before use and
replaced, as in the threaded pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import select
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from ..exceptions import StoreUnavailable

__all__ = ["AsyncPool", "socket_poller"]


class AsyncPool:
    """At most ``size`` async connections of one event loop.

    ``connect`` opens one (raising :class:`StoreUnavailable` when it cannot);
    ``fileno`` gives a connection's socket, watched while the connection is idle (None
    for a connection that notices the server's goodbye itself).
    """

    def __init__(
        self,
        connect: Callable[[], Awaitable[Any]],
        fileno: Callable[[Any], int | None],
        size: int,
        timeout: float,
        name: str,
    ) -> None:
        self._connect = connect
        self._fileno = fileno
        self._slots = asyncio.Semaphore(size)
        self.size, self.timeout, self.name = size, timeout, name
        self._idle: list[tuple[Any, Any]] = []  # (connection, poll object), a stack
        self._closed = False

    async def fetch(self, sql: str, args: dict[str, Any]) -> Sequence[Any]:
        """The rows of a query."""
        return await self._run(sql, args, fetch=True)  # type: ignore[no-any-return]

    async def execute(self, sql: str, args: dict[str, Any]) -> int:
        """Run a statement; the number of rows it changed."""
        return await self._run(sql, args, fetch=False)  # type: ignore[no-any-return]

    async def _run(self, sql: str, args: dict[str, Any], *, fetch: bool) -> Any:
        await self._acquire()
        try:
            conn, poll = self._take()
            if conn is None:
                conn = await self._connect()
                poll = socket_poller(self._fileno(conn))
            try:
                cursor = await conn.execute(sql, args)
                result = await cursor.fetchall() if fetch else cursor.rowcount
            except BaseException:
                await _close_quietly(conn)
                raise
            if self._closed:
                await _close_quietly(conn)
            else:
                self._idle.append((conn, poll))
            return result
        finally:
            self._slots.release()

    async def _acquire(self) -> None:
        if not self._slots.locked():
            await self._slots.acquire()  # a free slot: taken without waiting
            return
        try:
            async with asyncio.timeout(self.timeout):
                await self._slots.acquire()
        except TimeoutError:
            raise StoreUnavailable(
                detail=f"{self.name} store: all {self.size} async connections busy "
                f"for {self.timeout} s"
            ) from None

    def _take(self) -> tuple[Any, Any]:
        """An idle connection the server has not closed, or ``(None, None)``."""
        while self._idle:
            conn, poll = self._idle.pop()
            if poll is not None and poll.poll(0):
                # The server spoke to an idle connection: it ended it (a restart, a
                # terminated backend). Replace it rather than fail this call.
                asyncio.get_running_loop().create_task(_close_quietly(conn))
                continue
            return conn, poll
        return None, None

    async def aclose(self) -> None:
        """Close the idle connections now, those in use when their query ends."""
        self._closed = True
        idle, self._idle = self._idle, []
        for conn, _ in idle:
            await _close_quietly(conn)


def socket_poller(fd: int | None) -> Any:
    """A poll object telling whether the socket ``fd`` has something to read (``None``
    where there is no poll(2), as on Windows, or no socket to watch: the check is then
    skipped). Both pools watch their idle connections with it."""
    if fd is None or not hasattr(select, "poll"):
        return None
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return poller


async def _close_quietly(conn: Any) -> None:
    # A lost connection may fail to close; it is dropped either way.
    with contextlib.suppress(Exception):
        await conn.close()
