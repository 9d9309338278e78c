"""Things bound to one event loop (an async client, a pool of async connections), made
on first use in each loop and closed when that loop shuts down.

An asyncio connection belongs to the loop that opened it, so a store that validates on
the event loop keeps one client or pool per loop: :class:`PerLoop`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import AsyncGenerator, Awaitable, Callable, Coroutine
from typing import Any, Generic, TypeVar

__all__ = ["PerLoop"]

T = TypeVar("T")


class PerLoop(Generic[T]):
    """One ``T`` per running event loop, made by ``make`` on first use.

    With ``aclose``, each is closed when its loop shuts down (``asyncio.run``, uvicorn:
    while the loop can still run the goodbyes) or by :meth:`close`; ``aclose``'s own
    failures are ignored (the connection is going away either way). Without it (a client
    the caller owns) nothing is closed. A forked child forgets its parent's (their
    sockets are shared with the parent, which may still use them).
    """

    def __init__(
        self, make: Callable[[], T], aclose: Callable[[T], Awaitable[None]] | None = None
    ) -> None:
        self._make = make
        self._aclose = aclose
        self._held: dict[asyncio.AbstractEventLoop, tuple[T, AsyncGenerator[None] | None]] = {}
        self._lock = threading.Lock()
        self._pid = os.getpid()

    async def get(self) -> T:
        """The running loop's ``T``."""
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._pid != os.getpid():
                self._held, self._pid = {}, os.getpid()
            held = self._held.get(loop)
            if held is not None:
                return held[0]
            for old in [k for k in self._held if k.is_closed()]:
                del self._held[old]
            value = self._make()
            guard = None if self._aclose is None else self._closed_with_loop(value)
            self._held[loop] = (value, guard)
        if guard is not None:
            await anext(guard)  # the loop now knows it (see _closed_with_loop)
        return value

    def close(self) -> None:
        """Close every loop's ``T`` (a later :meth:`get` makes a new one)."""
        with self._lock:
            held, self._held = self._held, {}
            forked = self._pid != os.getpid()
        for loop, (_, guard) in held.items():
            if guard is not None and not forked:
                _close_on(loop, guard.aclose)

    async def _closed_with_loop(self, value: T) -> AsyncGenerator[None]:
        """Held open beside ``value``: when its event loop shuts down, the loop closes
        the async generators still open, and this one closes ``value`` then."""
        assert self._aclose is not None
        try:
            yield
        finally:
            with contextlib.suppress(Exception):
                await self._aclose(value)


def _close_on(
    loop: asyncio.AbstractEventLoop, aclose: Callable[[], Coroutine[Any, Any, None]]
) -> None:
    """Run ``aclose()`` on ``loop``, from wherever we are. A closed loop closed it already."""
    if loop.is_closed():
        return
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        loop.create_task(aclose())
    elif loop.is_running():
        asyncio.run_coroutine_threadsafe(aclose(), loop)
    else:
        loop.run_until_complete(aclose())
