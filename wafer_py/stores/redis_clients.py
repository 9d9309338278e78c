"""The redis-py clients a :class:`~wafer_py.stores.redis.RedisStore` URL names.

One sync client (a connection pool shared by the process's threads) and a function that
makes an async client, which the store calls once per event loop. Three shapes:

* ``redis://``, ``rediss://``, ``unix://``: one server (``redis.Redis``), or a Redis
  Cluster (``redis.cluster.RedisCluster``) when the store asks for one;
* ``redis+sentinel://[[user]:password@]host1:26379,host2:26379/service_name[/db]`` (and
  ``rediss+sentinel://`` for TLS to the sentinels and the servers): the master of
  ``service_name`` as Sentinel names it. redis-py asks a sentinel for the master's
  address before each new connection, so a failover is followed without a restart.

The defaults keep an outage short for the callers: connecting and each reply time out
after 2 s, and a dropped connection is retried once (on a Sentinel master that retry
asks the sentinels again, so a connection to a demoted or dead master finds the new one).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, NamedTuple, cast
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.asyncio.retry
import redis.asyncio.sentinel
import redis.cluster
import redis.connection
import redis.sentinel
from redis.backoff import NoBackoff
from redis.retry import Retry

from ..logsafe import redact_url

__all__ = [
    "SENTINEL_SCHEMES",
    "AsyncFollowingSentinelPool",
    "FollowingSentinelPool",
    "AnyAsyncClient",
    "AnyClient",
    "RedisClients",
    "SentinelURL",
    "clients_from_url",
    "describe",
    "parse_sentinel_url",
]

AnyClient = redis.Redis | redis.cluster.RedisCluster
AnyAsyncClient = redis.asyncio.Redis | redis.asyncio.cluster.RedisCluster

#: The URL schemes of a master found through Redis Sentinel.
SENTINEL_SCHEMES = ("redis+sentinel", "rediss+sentinel")
#: A sentinel's port when the URL names none.
SENTINEL_PORT = 26379
#: Seconds between two questions to the sentinels about where the master is.
MASTER_CHECK_INTERVAL = 1.0
#: Query options of a Sentinel URL that are the sentinels' own (the rest go to redis-py).
_SENTINEL_OPTIONS = ("sentinel_password", "sentinel_username")
_SHAPE = "redis+sentinel://[[user]:password@]host1:26379,host2:26379/service_name[/db]"

#: Applied unless the URL or the caller sets them.
DEFAULTS: dict[str, Any] = {
    "decode_responses": True,
    "socket_connect_timeout": 2.0,
    "socket_timeout": 2.0,
}


class RedisClients(NamedTuple):
    """What a URL opens: the sync client, a maker of async clients, and where they
    connect (for reprs and errors, without the password)."""

    client: AnyClient
    make_async: Callable[[], AnyAsyncClient]
    where: str


def clients_from_url(url: str, *, cluster: bool = False, **options: Any) -> RedisClients:
    """The clients for ``url`` (without the store's own options, ``prefix`` and
    ``cluster``). ``options`` go to redis-py, over :data:`DEFAULTS`; the URL's query
    options win over both. A malformed URL raises ``ValueError`` naming it, redacted."""
    options = {**DEFAULTS, **options}
    if urlsplit(url).scheme.lower() in SENTINEL_SCHEMES:
        if cluster:
            raise ValueError(
                f"a Redis Sentinel URL cannot ask for a Redis Cluster: {redact_url(url)!r}"
            )
        return _sentinel_clients(parse_sentinel_url(url), options)
    sync_class = redis.cluster.RedisCluster if cluster else redis.Redis
    async_class = redis.asyncio.cluster.RedisCluster if cluster else redis.asyncio.Redis
    client: AnyClient = sync_class.from_url(url, **{"retry": _retry_once(Retry), **options})

    def make_async() -> AnyAsyncClient:
        retry = _retry_once(redis.asyncio.retry.Retry)
        return async_class.from_url(url, **{"retry": retry, **options})

    return RedisClients(client, make_async, redact_url(url))


def _retry_once(kind: type[Any]) -> Any:
    """One more try after a dropped connection (a server restart, a failover)."""
    return kind(NoBackoff(), 1, (redis.exceptions.ConnectionError,))


# ------------------------------------------------------------------------------ sentinel
class SentinelURL(NamedTuple):
    """A parsed ``redis+sentinel://`` URL."""

    sentinels: list[tuple[str, int]]
    service: str
    #: For the connections to the master: db, credentials, TLS, redis-py's options.
    connection: dict[str, Any]
    #: For the connections to the sentinels: their credentials and TLS.
    sentinel: dict[str, Any]
    where: str


def parse_sentinel_url(url: str) -> SentinelURL:
    """Split a Sentinel URL into its sentinels, service name and options.

    The user and password of the URL are the Redis servers' (``requirepass``/ACL);
    ``?sentinel_password=`` (and ``?sentinel_username=``) the sentinels' own, when they
    ask for one. Other query options are redis-py's, as in a ``redis://`` URL.
    """
    parts = urlsplit(url)

    def bad(problem: str) -> ValueError:
        return ValueError(
            f"bad Redis Sentinel URL {redact_url(url)!r}: {problem} (expected {_SHAPE})"
        )

    userinfo, _, hosts = parts.netloc.rpartition("@")
    sentinels = [_address(text, bad) for text in hosts.split(",")] if hosts else []
    if not sentinels:
        raise bad("it names no sentinel host")
    path = parts.path.strip("/").split("/") if parts.path.strip("/") else []
    if not path:
        raise bad("it names no service (the master's name in the sentinels' configuration)")
    if len(path) > 2 or not path[0] or (len(path) == 2 and not path[1].isdigit()):
        raise bad(f"expected /service_name or /service_name/db as the path, not {parts.path!r}")
    service, db = unquote(path[0]), path[1] if len(path) == 2 else ""

    query = parse_qsl(parts.query, keep_blank_values=True)
    own = {k: v for k, v in query if k in _SENTINEL_OPTIONS}
    tls = parts.scheme.lower() == "rediss+sentinel"
    # redis-py reads the rest as it reads a redis:// URL's (types, TLS options).
    plain = f"{'rediss' if tls else 'redis'}://{userinfo}{'@' if userinfo else ''}sentinel/{db}"
    rest = [(k, v) for k, v in query if k not in own]
    try:
        connection: dict[str, Any] = redis.connection.parse_url(  # type: ignore[no-untyped-call]
            f"{plain}?{urlencode(rest)}" if rest else plain
        )
    except ValueError as exc:
        raise bad(str(exc)) from None
    for key in ("host", "port", "connection_class"):
        connection.pop(key, None)
    sentinel: dict[str, Any] = {}
    if tls:
        connection["ssl"] = True
        sentinel = {k: v for k, v in connection.items() if k.startswith("ssl")}
    for key, value in own.items():
        sentinel[key.removeprefix("sentinel_")] = value
    where = f"{parts.scheme}://{','.join(f'{h}:{p}' for h, p in sentinels)}/{quote(service)}"
    return SentinelURL(sentinels, service, connection, sentinel, where + (f"/{db}" if db else ""))


def _address(text: str, bad: Callable[[str], ValueError]) -> tuple[str, int]:
    """``host``, ``host:port``, ``[v6]`` or ``[v6]:port`` as (host, port)."""
    if text.startswith("["):
        host, _, port = text[1:].partition("]")
        port = port.removeprefix(":")
    else:
        host, _, port = text.rpartition(":") if ":" in text else (text, "", "")
    if not host:
        raise bad(f"empty sentinel host in {text!r}")
    if not port and not text.endswith(":"):
        return host, SENTINEL_PORT
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise bad(f"bad sentinel port {port!r}")
    return host, int(port)


class FollowingSentinelPool(redis.sentinel.SentinelConnectionPool):
    """A master's pool that asks the sentinels where the master is at most once every
    :data:`MASTER_CHECK_INTERVAL` seconds, when a connection is taken.

    redis-py asks only when it opens a connection, and pooled ones stay open: after a
    coordinated failover (``SENTINEL FAILOVER``) the old master answers, and takes
    writes that are lost, until Sentinel demotes it some seconds later. A new address
    closes the idle connections; busy ones are closed when they come back.

    ``redis+sentinel://`` URLs use it; for a client of your own::

        sentinel.master_for("mymaster", connection_pool_class=FollowingSentinelPool)
    """

    _asked = 0.0

    def get_connection(self, *args: Any, **kwargs: Any) -> Any:
        now = time.monotonic()
        if now - self._asked >= MASTER_CHECK_INTERVAL:
            self._asked = now
            self.get_master_address()  # type: ignore[no-untyped-call]
        return super().get_connection(*args, **kwargs)


class AsyncFollowingSentinelPool(redis.asyncio.sentinel.SentinelConnectionPool):
    """:class:`FollowingSentinelPool` for one event loop."""

    _asked = 0.0

    async def get_connection(self, *args: Any, **kwargs: Any) -> Any:
        now = time.monotonic()
        if now - self._asked >= MASTER_CHECK_INTERVAL:
            self._asked = now
            await self.get_master_address()  # type: ignore[no-untyped-call]
        return await super().get_connection(*args, **kwargs)  # type: ignore[no-untyped-call]


class _SentinelMaster(redis.Redis):
    """A Sentinel master's client that also closes its connections to the sentinels."""

    sentinels: redis.sentinel.Sentinel | None = None

    def close(self) -> None:
        super().close()
        if self.sentinels is not None:
            self.sentinels.close()


class _AsyncSentinelMaster(redis.asyncio.Redis):
    """:class:`_SentinelMaster` for one event loop."""

    sentinels: redis.asyncio.sentinel.Sentinel | None = None

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        await super().aclose(close_connection_pool)
        if self.sentinels is not None:
            await self.sentinels.aclose()


def _sentinel_clients(parsed: SentinelURL, options: dict[str, Any]) -> RedisClients:
    connection = {**options, **parsed.connection}
    # The sentinels answer with the same timeouts as the servers.
    sentinel = {
        **{k: v for k, v in connection.items() if k.startswith("socket_")},
        **parsed.sentinel,
    }
    sync_sentinel = redis.sentinel.Sentinel(parsed.sentinels, sentinel_kwargs=sentinel)
    client = sync_sentinel.master_for(
        parsed.service,
        redis_class=_SentinelMaster,
        connection_pool_class=FollowingSentinelPool,
        **{"retry": _retry_once(Retry), **connection},
    )
    client.sentinels = sync_sentinel

    def make_async() -> AnyAsyncClient:
        found = redis.asyncio.sentinel.Sentinel(parsed.sentinels, sentinel_kwargs=sentinel)
        master = found.master_for(
            parsed.service,
            redis_class=_AsyncSentinelMaster,
            connection_pool_class=AsyncFollowingSentinelPool,
            **{"retry": _retry_once(redis.asyncio.retry.Retry), **connection},
        )
        master.sentinels = found
        return cast(AnyAsyncClient, master)

    return RedisClients(client, make_async, parsed.where)


# ------------------------------------------------------------------------------ describe
def describe(client: Any) -> str:
    """Where a client connects, without credentials (for a store's repr)."""
    pool = getattr(client, "connection_pool", None)
    if isinstance(
        pool,
        redis.sentinel.SentinelConnectionPool | redis.asyncio.sentinel.SentinelConnectionPool,
    ):
        return f"sentinel master {pool.service_name!r}"
    kwargs = getattr(pool, "connection_kwargs", {})
    if "path" in kwargs:
        return f"unix://{kwargs['path']}"
    if "host" in kwargs:
        return f"{kwargs['host']}:{kwargs.get('port', 6379)}/{kwargs.get('db', 0)}"
    return type(client).__name__
