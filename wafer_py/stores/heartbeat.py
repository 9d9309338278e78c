"""The liveness half of an invalidation channel: a reader thread, a heartbeat, and the
state reported to the cache (issue #17).

A store's channel (:mod:`.redis_tracking`, :mod:`.sql_notify`) says how to connect,
read what changed and send a heartbeat; :class:`HeartbeatChannel` runs it. The channel
is live only while

* its listening connection is up (a lost one is reopened, with backoff), and
* its last heartbeat came back: a heartbeat is written where the store writes its
  revocations (through its pool, or a connection opened as the pool's are), so its
  return proves that every change written before it has reached this process (the
  server delivers in order). One still
  out after ``bound`` seconds turns the channel down at once; after ``reconnect_after``
  seconds the listening connection is dropped and opened again.

So a change that a silent fault (a frozen server, a lost route, a failover the
connection did not notice) keeps from arriving is trusted for at most about
``interval + bound`` seconds; a change delivered normally arrives in one network hop.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable

from .invalidation import Invalidation

__all__ = ["HEARTBEAT_BOUND", "HEARTBEAT_INTERVAL", "Beat", "HeartbeatChannel"]

logger = logging.getLogger("wafer_py")

#: Seconds between two heartbeats.
HEARTBEAT_INTERVAL = 0.25
#: Seconds a heartbeat may take to come back before the channel is reported down.
HEARTBEAT_BOUND = 0.5
#: Seconds without a heartbeat back before the listening connection is opened again.
RECONNECT_AFTER = 2.0
#: The longest wait between two attempts to reconnect.
BACKOFF_MAX = 2.0
#: How often the reader wakes to check the heartbeat, at most (seconds).
_TICK = 0.02


class Beat:
    """What a read returned for a heartbeat: its token (or "" when the store's
    notifications carry none: any of ours answers the one outstanding)."""

    __slots__ = ("token",)

    def __init__(self, token: str = "") -> None:
        self.token = token


class HeartbeatChannel(ABC):
    """An :class:`~.invalidation.InvalidationChannel` over one listening connection.

    Subclasses implement :meth:`_connect`, :meth:`_read`, :meth:`_disconnect` (the
    reader thread's connection) and :meth:`_beat` (a heartbeat where the store writes).
    """

    #: Names the channel in log lines and thread names.
    kind = "store"

    def __init__(
        self,
        *,
        interval: float = HEARTBEAT_INTERVAL,
        bound: float = HEARTBEAT_BOUND,
        reconnect_after: float = RECONNECT_AFTER,
    ) -> None:
        if not 0 < bound < reconnect_after or interval <= 0:
            raise ValueError("heartbeat: need interval > 0 and 0 < bound < reconnect_after")
        self.interval, self.bound, self.reconnect_after = interval, bound, reconnect_after
        #: Unique per channel: its heartbeats are told apart from other processes'.
        self.channel_id = secrets.token_hex(8)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._on_change: Callable[[Invalidation], None] = lambda change: None
        self._on_state: Callable[[bool], None] = lambda live: None
        # Guarded by _lock: the connection's generation (0: not connected), the
        # heartbeat out (token, sent at) and whether one came back on this connection.
        self._generation = 0
        self._connected = False
        self._pending: tuple[str, float] | None = None
        self._answered = False
        self._live = False
        self._seq = 0
        #: When the newest answered heartbeat was sent (monotonic; read without the lock).
        self._fresh_at = float("-inf")

    # -- what a store's channel provides ------------------------------------------
    @abstractmethod
    def _connect(self) -> None:
        """Open the listening connection and subscribe; raise if that fails."""

    @abstractmethod
    def _read(self, timeout: float) -> Iterable[Invalidation | Beat]:
        """What arrived within ``timeout`` seconds; raise when the connection is lost."""

    @abstractmethod
    def _disconnect(self) -> None:
        """Close the listening connection (quietly)."""

    @abstractmethod
    def _beat(self, token: str) -> None:
        """Write heartbeat ``token`` where the store writes; raise on failure."""

    def _redact(self, text: str) -> str:
        """``text`` (an error's) without secrets the connection holds."""
        return text

    def _fatal(self) -> str | None:
        """Why this channel can never work (checked after each connect), or ``None``."""
        return None

    # -- the InvalidationChannel protocol -----------------------------------------
    def start(
        self,
        on_change: Callable[[Invalidation], None],
        on_state: Callable[[bool], None],
    ) -> None:
        """Begin listening in two daemon threads (the reader and the heartbeat)."""
        if self._threads:
            raise RuntimeError("the invalidation channel is already started")
        self._on_change, self._on_state = on_change, on_state
        for target, role in ((self._reader, "listen"), (self._heart, "heartbeat")):
            thread = threading.Thread(target=target, name=f"wafer-{self.kind}-{role}", daemon=True)
            self._threads.append(thread)
            thread.start()

    def close(self) -> None:
        """Stop both threads and close the connection; reports down if it was live."""
        self._stop.set()
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(timeout=5)
        self._disconnect()
        self._report(False)

    @property
    def live(self) -> bool:
        """Whether the channel is live now (what it last reported)."""
        return self._live

    def poll(self) -> bool:
        """Asked by the cache before each lookup: whether a heartbeat sent within the
        last ``interval + bound`` seconds came back. Everything written before that
        heartbeat has then reached this process, so a process that was paused (SIGSTOP,
        a frozen VM) answers from the store, not its cache, until its reader has caught
        up; one clock read, no I/O."""
        return time.monotonic() - self._fresh_at <= self.interval + self.bound

    # -- state ---------------------------------------------------------------------
    def _report(self, live: bool) -> None:
        """Tell the cache of a change of state, once per change."""
        with self._lock:
            if live == self._live or (live and self._stop.is_set()):
                return
            self._live = live
        try:
            self._on_state(live)
        except Exception:
            logger.exception("wafer_py: session cache: on_state failed")

    def _assess(self, now: float) -> float:
        """Report the state the heartbeat gives; how long the heartbeat out is late
        (0 if none is)."""
        with self._lock:
            late = 0.0 if self._pending is None else now - self._pending[1]
            live = self._connected and self._answered and late <= self.bound
        self._report(live)
        return late

    def _answer(self, beat: Beat) -> None:
        with self._lock:
            if self._pending is None or beat.token not in ("", self._pending[0]):
                return
            self._fresh_at = self._pending[1]
            self._pending = None
            self._answered = True

    # -- the threads ---------------------------------------------------------------
    def _reader(self) -> None:
        backoff = 0.05
        failing = False
        while not self._stop.is_set():
            try:
                self._connect()
            except Exception as exc:
                self._disconnect()
                if not failing:
                    logger.warning(
                        "wafer_py: session cache: the %s invalidation channel cannot "
                        "connect (the cache is off until it can): %s",
                        self.kind,
                        self._redact(_describe(exc)),
                    )
                failing = True
                self._stop.wait(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX)
                continue
            fatal = self._fatal()
            if fatal is not None:
                self._disconnect()
                logger.error("wafer_py: session cache off: %s", fatal)
                self._stop.set()  # the heartbeat too: nothing to beat for
                return
            if failing:
                logger.warning("wafer_py: session cache: the %s channel is back", self.kind)
            failing, backoff = False, 0.05
            with self._lock:
                self._generation += 1
                self._connected, self._pending, self._answered = True, None, False
            try:
                self._listen()
            except Exception as exc:
                if not self._stop.is_set():
                    logger.warning(
                        "wafer_py: session cache: the %s invalidation channel was lost "
                        "(the cache is off until it is back): %s",
                        self.kind,
                        self._redact(_describe(exc)),
                    )
                    failing = True
            finally:
                with self._lock:
                    self._connected = False
                self._report(False)
                self._disconnect()

    def _listen(self) -> None:
        """Read until the connection is lost or the heartbeat is long overdue."""
        while not self._stop.is_set():
            for event in self._read(_TICK):
                if isinstance(event, Beat):
                    self._answer(event)
                else:
                    try:
                        self._on_change(event)
                    except Exception:
                        logger.exception("wafer_py: session cache: on_change failed")
            if self._assess(time.monotonic()) > self.reconnect_after:
                raise TimeoutError(
                    f"no heartbeat back for {self.reconnect_after:g} s: reconnecting"
                )

    def _heart(self) -> None:
        # Steady beats while live; quick checks otherwise, so that a new connection
        # gets its first beat (and the cache back) at once.
        failed = False
        while not self._stop.wait(self.interval if self._connected and self._answered else _TICK):
            with self._lock:
                if not self._connected or (self._pending is not None and not failed):
                    continue
                self._seq += 1
                token = f"{self.channel_id}.{self._generation}.{self._seq}"
                # A beat that failed to go out is sent again, still owed since the first
                # try: the reader reports down once that is more than ``bound`` ago.
                since = self._pending[1] if self._pending is not None else time.monotonic()
                self._pending = (token, since)
            try:
                self._beat(token)
                failed = False
            except Exception as exc:
                failed = True
                logger.debug(
                    "wafer_py: session cache: heartbeat failed: %s", self._redact(_describe(exc))
                )


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".strip()
