"""The Redis store's invalidation channel: server-assisted client-side caching.

One dedicated connection per process speaks RESP3 and turns on ``CLIENT TRACKING ON
BCAST`` for the prefixes of the store's user and session records (``P{u:``, see
:mod:`.redis_keys`) and of this channel's own heartbeat key
(``P{x}:heartbeat:<channel id>``). Redis then pushes the name of every key under them
that any client changes, deletes or expires, and a null for a flush:

* ``P{u:OPENID}:s:ID`` (a session's record: revoked, purged, resealed, touched) →
  ``Invalidation("session", ID)``;
* ``P{u:OPENID}:user`` (a profile or phone change) → ``Invalidation("user", OPENID)``;
* a flush (``FLUSHDB``, ``FLUSHALL``) → :data:`~.invalidation.ALL`;
* the heartbeat key → the heartbeat is back (:mod:`.heartbeat`).

Every path that writes the store (any app process, the CLI, Redis's own expiry) is
seen, since Redis reports the keys, not the commands. A touch also rewrites the record:
the touched session is dropped from every process's cache, which reads it again once.

The heartbeat is written through the store's own client, so after a Sentinel failover
it lands on the new master: the listening connection, still on the old one, hears
nothing and is opened again (Sentinel also closes the clients of a demoted master),
through the store's pool, on the new master; the cache is emptied meanwhile.

Standalone servers and Sentinel masters only (Redis 6 or later): on Redis Cluster a
tracking connection hears only its own node, and proxies (twemproxy, the managed
"cluster" editions) pass no push messages; :meth:`RedisStore.invalidation_channel
<wafer_py.stores.redis.RedisStore.invalidation_channel>` offers none there.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import Any
from urllib.parse import unquote

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from .heartbeat import Beat, HeartbeatChannel
from .invalidation import ALL, Invalidation

__all__ = ["RedisTrackingChannel", "invalidation_for"]

#: Messages read at most before they are handed on.
_BATCH = 64
#: Seconds the heartbeat key outlives the last heartbeat (then Redis drops it).
_HEARTBEAT_TTL_MS = 60_000


def invalidation_for(prefix: str, key: str) -> Invalidation | None:
    """What a change to ``key`` invalidates, for a store with key prefix ``prefix``:
    a session (its record), a user (its record), or nothing (an index)."""
    base = prefix + "{u:"
    if not key.startswith(base):
        return None
    tag, sep, rest = key[len(base) :].partition("}")
    if not sep:
        return None
    if rest == ":user":
        # The tag escapes %, { and } as %25, %7B, %7D (redis._tag); unquote undoes it.
        return Invalidation("user", unquote(tag))
    if rest.startswith(":s:") and len(rest) > 3:
        return Invalidation("session", rest[3:])
    return None


class RedisTrackingChannel(HeartbeatChannel):
    """Invalidations from Redis client tracking, for one :class:`~.redis.RedisStore`.

    ``client`` is the store's sync ``redis.Redis`` (its pool says where and how to
    connect; the heartbeat is written through it). Heartbeat timing: see
    :class:`~.heartbeat.HeartbeatChannel`.
    """

    kind = "Redis"

    def __init__(self, client: redis.Redis, prefix: str, **timing: float) -> None:
        super().__init__(**timing)
        self._client = client
        self.prefix = prefix
        self.heartbeat_key = f"{prefix}{{x}}:heartbeat:{self.channel_id}"
        self.connection_name = f"wafer-invalidation-{self.channel_id}"
        self._conn: Any = None
        self._events: list[Invalidation | Beat] = []

    def _connect(self) -> None:
        pool: Any = self._client.connection_pool
        options = dict(pool.connection_kwargs)
        options.pop("maint_notifications_pool_handler", None)
        # Reads wait for pushes in short polls; a reply that starts must finish fast.
        options.update(protocol=3, retry=Retry(NoBackoff(), 0), decode_responses=True)
        conn = pool.connection_class(**options)
        self._conn = conn
        conn.connect()
        parser = conn._parser
        if not hasattr(parser, "set_invalidation_push_handler"):
            raise RuntimeError("this redis-py cannot read RESP3 invalidation pushes")
        parser.set_invalidation_push_handler(self._pushed)
        # A name an operator recognises in CLIENT LIST (and a test can CLIENT KILL).
        conn.send_command("CLIENT", "SETNAME", self.connection_name)
        conn.send_command(
            "CLIENT",
            "TRACKING",
            "ON",
            "BCAST",
            "PREFIX",
            self.prefix + "{u:",
            "PREFIX",
            self.heartbeat_key,
        )
        for _ in range(2):
            reply = conn.read_response()
            if isinstance(reply, Exception):
                raise reply

    def _pushed(self, message: list[Any]) -> None:
        """RESP3 ``invalidate`` push: a list of key names, or null for a flush."""
        keys = message[1] if len(message) > 1 else None
        if keys is None:
            self._events.append(ALL)
            return
        for raw in keys:
            key = raw.decode() if isinstance(raw, bytes) else str(raw)
            if key == self.heartbeat_key:
                self._events.append(Beat())
                continue
            change = invalidation_for(self.prefix, key)
            if change is not None:
                self._events.append(change)

    def _read(self, timeout: float) -> Iterable[Invalidation | Beat]:
        conn = self._conn
        if conn.can_read(timeout):
            # At most a batch: under a steady stream of pushes the heartbeat is still
            # checked, and what was read is handed on without waiting for a pause.
            for _ in range(_BATCH):
                reply = conn.read_response(push_request=True)
                if isinstance(reply, Exception):
                    raise reply
                if not conn.can_read(0):
                    break
        events, self._events = self._events, []
        return events

    def _disconnect(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):  # closing a connection already broken
                conn.disconnect()

    def _beat(self, token: str) -> None:
        self._client.set(self.heartbeat_key, token, px=_HEARTBEAT_TTL_MS)
