"""Bounded waits for a login slot: a queue limit and a deadline that counts the wait.

A login holds a slot while it talks to WeChat and the store; ``slots`` run at once and at
most ``queue`` more wait, each until its own deadline. Beyond either the login is refused
at once (:class:`~wafer_py.exceptions.LoginsBusy`, HTTP 503 with ``Retry-After``): a burst
cannot make every later login wait behind it, and a WeChat that never answers costs each
queued login its own deadline, not its place in the queue times the timeout.

:class:`AsyncLoginGate` serves one event loop (ASGI) and drops a login whose client hung up
while it waited; :class:`ThreadLoginGate` serves the threads of a process (WSGI). Each
tells its ``observer`` how its queue's length changes (``login_queue``).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque

from .exceptions import LoginAbandoned, LoginQueueTimeout, LoginsBusy
from .observe import NO_OBSERVER, Observer

__all__ = ["AsyncLoginGate", "ThreadLoginGate", "MIN_CALL_TIME"]

#: Seconds a queued login must still have when it gets a slot, or it gives up at once: with
#: less, its call to WeChat could only time out (a WeChat round trip takes tens of ms), and
#: it would hold the slot for nothing while WeChat is down.
MIN_CALL_TIME = 0.1


class AsyncLoginGate:
    """Login slots of one event loop, handed to waiting logins in arrival order."""

    def __init__(self, slots: int, queue: int, observer: Observer = NO_OBSERVER) -> None:
        self.slots = slots
        self.queue = queue
        self.running = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self.observer = observer
        self._reported = 0  # the queue's length the observer was last told of

    def _report(self) -> None:
        change = len(self._waiters) - self._reported
        if change:
            self._reported += change
            self.observer.login_queue(change)

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    async def acquire(self, deadline: float, gone: asyncio.Future[None] | None = None) -> None:
        """Take a slot before ``deadline`` (the loop's clock); a queued login gives up
        :data:`MIN_CALL_TIME` before it.

        Raises :class:`LoginsBusy` if the queue is full, :class:`LoginQueueTimeout` at the
        deadline, and :class:`LoginAbandoned` once ``gone`` is done (the client hung up).
        """
        if gone is not None and gone.done():
            raise LoginAbandoned()
        if self.running < self.slots and not self._waiters:
            self.running += 1
            return
        if len(self._waiters) >= self.queue:
            raise LoginsBusy()
        loop = asyncio.get_running_loop()
        deadline -= MIN_CALL_TIME
        turn: asyncio.Future[None] = loop.create_future()
        self._waiters.append(turn)
        self._report()
        waits: set[asyncio.Future[None]] = {turn} if gone is None else {turn, gone}
        try:
            await asyncio.wait(
                waits, timeout=max(0.0, deadline - loop.time()), return_when=asyncio.FIRST_COMPLETED
            )
        except BaseException:
            self._give_up(turn)
            raise
        if turn.done() and not (gone is not None and gone.done()) and loop.time() < deadline:
            return
        self._give_up(turn)
        if gone is not None and gone.done():
            raise LoginAbandoned()
        raise LoginQueueTimeout()

    def _give_up(self, turn: asyncio.Future[None]) -> None:
        """Leave the queue; a slot already handed over goes to the next in line."""
        if turn.done():
            self.release()
        else:
            turn.cancel()
            self._waiters.remove(turn)
            self._report()

    def release(self) -> None:
        """Hand the slot to the longest waiting login, or free it."""
        while self._waiters:
            turn = self._waiters.popleft()
            if not turn.done():
                turn.set_result(None)
                self._report()
                return
        self.running -= 1
        self._report()


class ThreadLoginGate:
    """Login slots shared by the threads of a process (a WSGI server's workers).

    Which waiting thread gets a freed slot is up to the condition variable: roughly, but
    not strictly, in arrival order.
    """

    def __init__(self, slots: int, queue: int, observer: Observer = NO_OBSERVER) -> None:
        self.slots = slots
        self.queue = queue
        self.running = 0
        self.waiting = 0
        self.observer = observer
        self._changed = threading.Condition(threading.Lock())

    def acquire(self, deadline: float) -> None:
        """Take a slot before ``deadline`` (:func:`time.monotonic`; a queued login gives up
        :data:`MIN_CALL_TIME` before it). Raises
        :class:`LoginsBusy` if the queue is full, :class:`LoginQueueTimeout` at the deadline."""
        with self._changed:
            if self.running < self.slots and not self.waiting:
                self.running += 1
                return
            if self.waiting >= self.queue:
                raise LoginsBusy()
            self.waiting += 1
            self.observer.login_queue(1)
            deadline -= MIN_CALL_TIME
            try:
                while True:
                    # The clock first: a slot freed after the deadline is no use.
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise LoginQueueTimeout()
                    if self.running < self.slots:
                        break
                    self._changed.wait(left)
                self.running += 1
            finally:
                self.waiting -= 1
                self.observer.login_queue(-1)
                if self.running < self.slots and self.waiting:
                    self._changed.notify()  # a slot this thread did not take

    def release(self) -> None:
        with self._changed:
            self.running -= 1
            self._changed.notify()
