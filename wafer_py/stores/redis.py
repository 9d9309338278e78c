"""Sessions in Redis (``redis://``, ``rediss://``, ``unix://``), through redis-py.

Validation is one round trip on a standalone server: a Lua script follows the lookup
pointer and returns the session and its user as one JSON text. The ASGI middleware runs
it on the event loop with ``redis.asyncio`` (:attr:`RedisStore.supports_async`).

The key layout, and how long Redis keeps each key, are in :mod:`~wafer_py.stores.redis_keys`;
the operations in :mod:`~wafer_py.stores.redis_sessions`, :mod:`~wafer_py.stores.redis_users`
and :mod:`~wafer_py.stores.redis_entries`, each written once as calls (or a plan of round
trips) that this module's runners send on the sync or the async client.

Scripts that follow a pointer touch keys they were not given; standalone Redis allows
that. On Redis Cluster (a ``redis.cluster.RedisCluster`` client, or ``?cluster=true`` in
the URL) each script and command touches one slot, and the steps in other slots are
separate calls (the round trips per method are in BENCHMARKS.md). Behind a proxy that
shards one endpoint by hash tag (``?cluster=proxy``, or ``proxy=True``: twemproxy, the
managed "cluster" editions) the steps are the cluster's, and every script is also given
every key it touches (:mod:`~wafer_py.stores.redis_proxy`). Needs Redis 7 or later (the
scripts declare flags, so a cluster refuses any that strays into another slot).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, TypeVar, cast
from urllib.parse import parse_qsl, urlencode, urlsplit

import redis.cluster
from redis.exceptions import NoScriptError, RedisClusterException, RedisError

from ..exceptions import StoreUnavailable
from . import redis_proxy
from . import redis_scripts as lua
from .base import SessionStore, StoreStats
from .entries import EntryStore
from .invalidation import InvalidationChannel
from .loops import PerLoop
from .redis_clients import SENTINEL_SCHEMES, AnyAsyncClient, AnyClient, clients_from_url, describe
from .redis_entries import RedisEntries
from .redis_keys import ENTRY_GC as ENTRY_GC
from .redis_keys import GRACE as GRACE
from .redis_keys import RedisKeys
from .redis_keys import text as _text
from .redis_scripts import Call as _Call
from .redis_scripts import Plan as _Plan
from .redis_scripts import cmd as _cmd
from .redis_scripts import script as _script
from .redis_sessions import RedisSessions
from .redis_users import RedisUsers

__all__ = ["RedisStore", "GRACE", "ENTRY_GC"]

T = TypeVar("T")

#: Sessions and entries one purge script call looks at, when no limit is given.
_PURGE_BATCH = 500


#: What redis-py raises when it cannot do a call (a cluster's own error is no RedisError).
_ERRORS = (RedisError, RedisClusterException)


def _unavailable(exc: Exception) -> StoreUnavailable:
    return StoreUnavailable(detail=f"Redis: {type(exc).__name__}: {exc}")


def _with_query(url: str, query: list[tuple[str, str]]) -> str:
    # Not urlunsplit: it turns unix:///path into unix:/path.
    return f"{url}?{urlencode(query, safe='*')}" if query else url


# ------------------------------------------------------------------------------ store
class RedisStore(RedisSessions, RedisUsers, RedisEntries, SessionStore, EntryStore):
    """Users, sessions, entries and locks in Redis, under a key prefix.

    ``client`` is a ``redis.Redis`` (a Sentinel master, ``Sentinel(...).master_for(name)``,
    too) or ``redis.cluster.RedisCluster``; ``proxy=True`` says a ``redis.Redis`` client
    talks to a proxy in front of shards (see :mod:`~wafer_py.stores.redis_proxy` for what
    such a client needs). ``async_client`` is a ``redis.asyncio`` client for one event
    loop, or a function making one (called once per event loop); without either, the async
    methods run the sync client in a worker thread. :meth:`from_url` makes both clients,
    with short timeouts, and :meth:`close` closes what the store made (a client passed in
    stays open).

    Errors from Redis (refused or timed-out connections, ...) become
    :class:`~wafer_py.exceptions.StoreUnavailable`; redis-py reconnects on the next call.

    The operations come from its bases, on the key layout of
    :class:`~wafer_py.stores.redis_keys.RedisKeys`: sessions
    (:class:`~wafer_py.stores.redis_sessions.RedisSessions`), users
    (:class:`~wafer_py.stores.redis_users.RedisUsers`), entries and locks
    (:class:`~wafer_py.stores.redis_entries.RedisEntries`); this class runs their calls.
    """

    schemes: ClassVar[tuple[str, ...]] = ("redis", "rediss", "unix", *SENTINEL_SCHEMES)
    #: A server many app processes use: they need one configured secret key.
    shared: ClassVar[bool] = True
    supports_async = True

    def __init__(
        self,
        client: AnyClient,
        *,
        prefix: str = "wafer:",
        async_client: AnyAsyncClient | Callable[[], AnyAsyncClient] | None = None,
        proxy: bool = False,
    ) -> None:
        cluster = isinstance(client, redis.cluster.RedisCluster)
        RedisKeys.__init__(self, prefix, cluster=proxy or cluster, proxy=proxy)
        if proxy and cluster:
            raise ValueError("proxy=True takes a redis.Redis client (one proxy endpoint)")
        self._client = client
        # Async clients the store makes, it closes; one passed in stays open.
        self._async_clients: PerLoop[AnyAsyncClient] | None = None
        if callable(async_client):
            self._async_clients = PerLoop(async_client, _aclose)
        elif async_client is not None:
            given = async_client
            self._async_clients = PerLoop(lambda: given)
        self._owns_client = False
        self._where = describe(client)

    @classmethod
    def from_url(cls, url: str, *, prefix: str | None = None, **options: Any) -> RedisStore:
        """A store on the server a URL names: ``redis://[[user]:password@]host:6379/0``,
        ``rediss://...`` (TLS), ``unix:///path/redis.sock?db=0``, or the master of a
        Sentinel service: ``redis+sentinel://[[user]:password@]host1:26379,host2:26379/
        service_name[/db]`` (``rediss+sentinel://`` for TLS).

        ``?prefix=`` sets the key prefix (``wafer:`` by default), ``?cluster=true`` talks
        to a Redis Cluster, ``?cluster=proxy`` to a proxy in front of shards (twemproxy,
        managed "cluster" editions: :mod:`~wafer_py.stores.redis_proxy`); other query
        parameters and ``options`` go to redis-py (e.g. ``socket_timeout=5``). By default
        connecting and each reply time out after 2 s and a dropped connection is retried
        once, so an outage answers 503 fast (:mod:`~wafer_py.stores.redis_clients` makes
        the clients).
        """
        parts = urlsplit(url)
        query = parse_qsl(parts.query)
        ours = {k: v for k, v in query if k in ("prefix", "cluster")}
        rest = _with_query(url.split("?", 1)[0], [(k, v) for k, v in query if k not in ours])
        mode = redis_proxy.cluster_mode(ours.get("cluster", ""))
        proxy = mode == "proxy"
        if proxy:
            if urlsplit(rest).scheme.lower() in SENTINEL_SCHEMES:
                raise ValueError("a Redis Sentinel URL cannot ask for ?cluster=proxy")
            options = {**redis_proxy.CLIENT_OPTIONS, **options}
        clients = clients_from_url(rest, cluster=mode == "cluster", **options)
        if prefix is None:
            prefix = ours.get("prefix", "wafer:")
        store = cls(clients.client, prefix=prefix, async_client=clients.make_async, proxy=proxy)
        store._owns_client = True
        store._where = clients.where
        return store

    def __repr__(self) -> str:
        return f"RedisStore({self._where!r}, prefix={self.prefix!r})"

    # -- running calls ----------------------------------------------------------
    def _run(self, plan: _Plan[T]) -> T:
        """Run a plan on the sync client; Redis errors become ``StoreUnavailable``."""
        try:
            calls = next(plan)
            while True:
                calls = plan.send(self._send(calls))
        except StopIteration as done:
            return cast(T, done.value)
        except _ERRORS as exc:
            raise _unavailable(exc) from None

    def _do(self, *calls: _Call) -> list[Any]:
        """Send ``calls`` in one round trip (one per slot on a cluster)."""
        try:
            return self._send(list(calls))
        except _ERRORS as exc:
            raise _unavailable(exc) from None

    def _send(self, calls: list[_Call]) -> list[Any]:
        client: Any = self._client  # redis-py types Redis and RedisCluster apart
        if len(calls) == 1:
            return [self._one(client, calls[0])]
        pipe = client.pipeline(transaction=False)
        for call in calls:
            pipe.execute_command(*call.wire())
        replies: list[Any] = pipe.execute(raise_on_error=False)
        for i, reply in enumerate(replies):
            if isinstance(reply, NoScriptError):
                replies[i] = client.execute_command(*calls[i].wire(whole=True))
            elif isinstance(reply, Exception):
                raise reply
        return replies

    @staticmethod
    def _one(client: Any, call: _Call) -> Any:
        try:
            return client.execute_command(*call.wire())
        except NoScriptError:  # the server restarted, or its script cache was flushed
            return client.execute_command(*call.wire(whole=True))

    async def _arun(self, plan: _Plan[T]) -> T:
        """:meth:`_run` on the running event loop's async client."""
        try:
            client = await self._async_client()
            calls = next(plan)
            while True:
                calls = plan.send(await self._asend(client, calls))
        except StopIteration as done:
            return cast(T, done.value)
        except _ERRORS as exc:
            raise _unavailable(exc) from None

    @staticmethod
    async def _asend(client: AnyAsyncClient, calls: list[_Call]) -> list[Any]:
        """:meth:`_send` on an async client."""
        if len(calls) == 1:
            try:
                return [await client.execute_command(*calls[0].wire())]
            except NoScriptError:
                return [await client.execute_command(*calls[0].wire(whole=True))]
        pipe = client.pipeline(transaction=False)
        for call in calls:
            pipe.execute_command(*call.wire())
        replies: list[Any] = await pipe.execute(raise_on_error=False)
        for i, reply in enumerate(replies):
            if isinstance(reply, NoScriptError):
                replies[i] = await client.execute_command(*calls[i].wire(whole=True))
            elif isinstance(reply, Exception):
                raise reply
        return replies

    async def _async_client(self) -> AnyAsyncClient:
        """The async client of the running event loop (a client is bound to its loop)."""
        assert self._async_clients is not None
        return await self._async_clients.get()

    # -- both indexes: purge and stats ------------------------------------------
    def _purge(self, now: float, batch: int) -> _Plan[tuple[int, int]]:
        """One batch: (sessions deleted, most sessions or entries looked at)."""
        records, entries = yield [
            _cmd("ZRANGE", self._sessions, "-inf", now, "BYSCORE", "LIMIT", 0, batch),
            _cmd("ZRANGE", self._entries, "-inf", now, "BYSCORE", "LIMIT", 0, batch),
        ]
        records, entries = [_text(r) for r in records], [_text(e) for e in entries]
        if not records and not entries:
            return 0, 0
        if self._cluster:
            entry_calls = [_script(lua.DROP_ENTRY, [e], now, "0") for e in entries]
        else:
            entry_calls = [_script(lua.DROP_ENTRY, [e, self._entries], now, "1") for e in entries]
        replies = yield self._drop_calls(records, now) + entry_calls
        dropped, kept = replies[: len(records)], replies[len(records) :]
        if self._cluster:
            fixes = self._drop_cleanup(records, dropped) + [
                _cmd("ZREM", self._entries, e) if t is None else _cmd("ZADD", self._entries, t, e)
                for e, t in zip(entries, kept, strict=True)
            ]
            if fixes:
                yield fixes
        deleted = sum(1 for r in dropped if r is not None and _text(r[0]) != "0")
        return deleted, max(len(records), len(entries))

    def purge_expired(self, now: float, *, limit: int | None = None) -> int:
        total = 0
        while True:
            batch = _PURGE_BATCH if limit is None else limit
            deleted, seen = self._run(self._purge(now, batch))
            total += deleted
            if limit is not None or seen < batch:
                return total

    def stats(self, now: float) -> StoreStats:
        users, active, expired, entries = self._do(
            _cmd("SCARD", self._users),
            _cmd("ZCOUNT", self._sessions, f"({now!r}", "+inf"),
            _cmd("ZCOUNT", self._sessions, "-inf", now),
            _cmd("ZCOUNT", self._entries, f"({now!r}", "+inf"),
        )
        return StoreStats(int(users), int(active), int(expired), int(entries))

    # -- lifecycle --------------------------------------------------------------
    def invalidation_channel(self) -> InvalidationChannel | None:
        """Client tracking on a dedicated connection (:mod:`.redis_tracking`), on a
        standalone server or a Sentinel master; none on Redis Cluster or a proxy."""
        if self._cluster:
            return None
        from .redis_tracking import RedisTrackingChannel

        return RedisTrackingChannel(cast(redis.Redis, self._client), self.prefix)

    def close(self) -> None:
        """Close the clients the store made; a client passed in stays open."""
        if self._async_clients is not None:
            self._async_clients.close()
        if self._owns_client:
            self._client.close()


async def _aclose(client: AnyAsyncClient) -> None:
    await client.aclose()
