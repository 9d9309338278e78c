"""How a store tells a process that sessions it may have cached changed (issue #17).

A per-process cache of validated sessions (:mod:`wafer_py.sessioncache`) is safe only
while it hears about every revocation, logout, profile change and expiry cap made by
*any* process. A store that can say so offers an :class:`InvalidationChannel` (Redis:
client tracking; PostgreSQL: LISTEN/NOTIFY); a store without one is never cached.

The channel's contract, which the cache relies on:

* ``on_change`` is called (from the channel's own thread or task) for every change to a
  session or a user made after the channel reported itself live, by any process;
* ``on_state(False)`` is called as soon as the channel is down or may have missed a
  change (connection lost, server restarted, failover, heartbeat overdue), and
  ``on_state(True)`` once it is live and current again; the cache is not used while the
  channel is not live, and is emptied on every return to live.

How the cache drives a channel: ``SessionStore.invalidation_channel()`` is called once
per :class:`~wafer_py.auth.WaferAuth` when it is made (and again in a forked child), so
it must not do I/O and must return a new channel; ``start`` is called on the first
validation, maybe on an event loop, so it must return at once (connect in the
background, then report ``on_state(True)``); ``close`` may be called without ``start``.
The cache forgets a session itself after its own process's writes through
:class:`~wafer_py.auth.WaferAuth`; touches (``last_seen`` and a later ``expires_at``)
need not be reported.

A channel may also have a ``poll() -> bool`` method (optional; SQLite's has one): the
cache calls it before every lookup, and it must report through ``on_change``, before it
returns, every change committed before it was called; ``False`` means it could not
(that lookup then goes to the store).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, NamedTuple, Protocol

__all__ = ["Invalidation", "InvalidationChannel", "ALL"]


class Invalidation(NamedTuple):
    """One change: a session (by id), a user and all their sessions (by openid), or all."""

    kind: Literal["session", "user", "all"]
    key: str = ""


#: Forget everything (a flush, a purge, a change the channel cannot attribute).
ALL = Invalidation("all")


class InvalidationChannel(Protocol):
    """A store's feed of changes (see the module docstring for the contract)."""

    def start(
        self,
        on_change: Callable[[Invalidation], None],
        on_state: Callable[[bool], None],
    ) -> None:
        """Begin listening in the background; report changes and liveness."""

    def close(self) -> None:
        """Stop listening and release the channel's connection."""
