"""Sessions in Redis (``redis://``, ``rediss://``, ``unix://``), through redis-py.

Validation is one round trip on a standalone server: a Lua script follows the lookup
pointer and returns the session and its user as one JSON text. The ASGI middleware runs
it on the event loop with ``redis.asyncio`` (:attr:`RedisStore.supports_async`).

Key layout (``P`` is the prefix, ``wafer:`` by default; ``{...}`` is a Redis Cluster hash
tag: keys with the same tag are in one slot)::

    P{u:OPENID}:user        string: the user, JSON {openid, unionid?, phone?, created_at,
                            updated_at, profile: {field: JSON text of its value}}
    P{u:OPENID}:sessions    zset: the user's session ids, by created_at
    P{u:OPENID}:s:ID        string: one session, JSON {id, openid, skey_hash,
                            sealed_session_key, created_at, last_seen, expires_at}
    P{i:ID}                 string: the key of session ID's record
    P{k:SKEY_HASH}          string: the key of the record with that skey hash
    P{x}:sessions           zset: every session record key, by expires_at
    P{x}:entries            zset: every entry key, by expires_at
    P{x}:users              set: every openid (for stats)
    P{n:UNIONID}:users      set: the openids of the users with that unionid (written with
                            the user; a user written before this index existed joins it
                            at its next login)
    P{e:KEY}                hash: an entry: v (value), t (expires_at)
    P{l:NAME}               hash: a lock: o (owner), t (lapses at)

Every value in the JSON records is a string (times as Python writes floats), so scripts
that change a record decode and encode it without loss. ``OPENID`` has ``%``, ``{`` and
``}`` percent-escaped, so the tag ends where the openid does. A user and all its sessions
share one slot: :meth:`RedisStore.revoke_user` is one script there.

Times are the caller's logical clock (``now``), compared in Lua; Redis's own expiry only
collects garbage, relative to that clock:

* a session record and its pointers live ``expires_at - last_seen`` plus :data:`GRACE`
  seconds from each create or touch, so Redis never drops a session before its logical
  expiry while the clock runs in step with real time (lookups return expired sessions
  too; the caller decides);
* a lock lives ``ttl`` plus :data:`GRACE`;
* an entry has no "now" when it is set: it lives until its ``expires_at`` read as wall
  clock, plus :data:`ENTRY_GC` (a day), so only a clock a day behind real time could see
  it vanish early. :meth:`~RedisStore.purge_expired` removes expired ones by the logical
  clock.

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

import json
import math
import time
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, TypeVar, cast
from urllib.parse import parse_qsl, urlencode, urlsplit

import redis.cluster
from redis.exceptions import NoScriptError, RedisClusterException, RedisError

from ..exceptions import StoreUnavailable
from ..models import Session, User
from . import redis_proxy
from . import redis_scripts as lua
from .base import SessionStore, StoreStats
from .entries import EntryStore
from .invalidation import InvalidationChannel
from .loops import PerLoop
from .redis_clients import SENTINEL_SCHEMES, AnyAsyncClient, AnyClient, clients_from_url, describe
from .redis_scripts import Call as _Call
from .redis_scripts import Plan as _Plan
from .redis_scripts import cmd as _cmd
from .redis_scripts import script as _script

__all__ = ["RedisStore", "GRACE", "ENTRY_GC"]

T = TypeVar("T")

#: Seconds Redis keeps a session or lock past its logical expiry (clock skew between
#: servers, and lookups that tell "expired" from "unknown").
GRACE = 60.0
#: Seconds an entry outlives its ``expires_at`` (read as wall clock) before Redis drops it.
ENTRY_GC = 86_400.0
#: The longest expiry set (about 35 000 years): Redis refuses larger ones.
_MAX_TTL_MS = 2**50
#: Sessions and entries one purge script call looks at, when no limit is given.
_PURGE_BATCH = 500


#: What redis-py raises when it cannot do a call (a cluster's own error is no RedisError).
_ERRORS = (RedisError, RedisClusterException)


def _unavailable(exc: Exception) -> StoreUnavailable:
    return StoreUnavailable(detail=f"Redis: {type(exc).__name__}: {exc}")


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _session(f: dict[str, str]) -> Session:
    """A session from its record (a JSON object of strings)."""
    return Session(
        f["id"],
        f["openid"],
        f["skey_hash"],
        f["sealed_session_key"],
        float(f["created_at"]),
        float(f["last_seen"]),
        float(f["expires_at"]),
    )


def _session_record(session: Session) -> str:
    return json.dumps(
        {
            "id": session.id,
            "openid": session.openid,
            "skey_hash": session.skey_hash,
            "sealed_session_key": session.sealed_session_key,
            "created_at": repr(session.created_at),
            "last_seen": repr(session.last_seen),
            "expires_at": repr(session.expires_at),
        },
        separators=(",", ":"),
    )


def _user(f: dict[str, Any] | None) -> User | None:
    """A user from its record: a JSON object of strings, and ``profile``, an object of
    JSON texts (merged field by field in Lua, so never parsed there)."""
    if f is None:
        return None
    return User(
        openid=f["openid"],
        unionid=f.get("unionid"),
        profile={k: json.loads(v) for k, v in f["profile"].items()},
        created_at=float(f["created_at"]),
        updated_at=float(f["updated_at"]),
        phone=f.get("phone"),
    )


def _profile_texts(profile: dict[str, Any]) -> dict[str, str]:
    return {k: json.dumps(v, ensure_ascii=False) for k, v in profile.items()}


def _loads(reply: Any) -> Any:
    return None if reply is None else json.loads(reply)


def _ttl_ms(seconds: float) -> int:
    """Redis's expiry in milliseconds: at least 1, at most :data:`_MAX_TTL_MS`."""
    if not math.isfinite(seconds) or seconds * 1000 >= _MAX_TTL_MS:
        return _MAX_TTL_MS
    return max(1, math.ceil(seconds * 1000))


def _tag(text: str) -> str:
    """``text`` for inside a hash tag: no ``{`` or ``}`` (nor a ``%`` left ambiguous)."""
    return text.replace("%", "%25").replace("{", "%7B").replace("}", "%7D")


def _with_query(url: str, query: list[tuple[str, str]]) -> str:
    # Not urlunsplit: it turns unix:///path into unix:/path.
    return f"{url}?{urlencode(query, safe='*')}" if query else url


# ------------------------------------------------------------------------------ store
class RedisStore(SessionStore, EntryStore):
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
        if "{" in prefix or "}" in prefix:
            raise ValueError("a Redis key prefix cannot hold '{' or '}' (hash tag marks)")
        if proxy and isinstance(client, redis.cluster.RedisCluster):
            raise ValueError("proxy=True takes a redis.Redis client (one proxy endpoint)")
        self.prefix = prefix
        self._client = client
        # A proxy takes the cluster's steps (one hash tag per call) and also wants every
        # key a script touches in its KEYS.
        self._proxy = proxy
        self._cluster = proxy or isinstance(client, redis.cluster.RedisCluster)
        # Async clients the store makes, it closes; one passed in stays open.
        self._async_clients: PerLoop[AnyAsyncClient] | None = None
        if callable(async_client):
            self._async_clients = PerLoop(async_client, _aclose)
        elif async_client is not None:
            given = async_client
            self._async_clients = PerLoop(lambda: given)
        self._owns_client = False
        self._where = describe(client)
        self._sessions = f"{prefix}{{x}}:sessions"
        self._entries = f"{prefix}{{x}}:entries"
        self._users = f"{prefix}{{x}}:users"

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

    # -- keys -------------------------------------------------------------------
    def _base(self, openid: str) -> str:
        return f"{self.prefix}{{u:{_tag(openid)}}}"

    def _record(self, session: Session) -> str:
        return f"{self._base(session.openid)}:s:{session.id}"

    @staticmethod
    def _owner(record: str) -> str:
        """The user's base of a session record key (up to the first ``}``, its tag's end:
        the prefix holds none)."""
        return record[: record.index("}") + 1]

    def _id_pointer(self, session_id: str) -> str:
        return f"{self.prefix}{{i:{session_id}}}"

    def _skey_pointer(self, skey_hash: str) -> str:
        return f"{self.prefix}{{k:{skey_hash}}}"

    def _entry(self, key: str) -> str:
        return f"{self.prefix}{{e:{key}}}"

    def _lock(self, name: str) -> str:
        return f"{self.prefix}{{l:{name}}}"

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

    # -- users ------------------------------------------------------------------
    def ensure_user(
        self, openid: str, *, unionid: str | None, profile: dict[str, Any], now: float
    ) -> User:
        record: dict[str, Any] = {"openid": openid, "created_at": repr(now)}
        record["updated_at"] = record["created_at"]
        if unionid:
            record["unionid"] = unionid
        record["profile"] = _profile_texts(profile)
        new = json.dumps(record, ensure_ascii=False, separators=(",", ":"))
        key = self._base(openid) + ":user"
        calls = [
            _script(lua.ENSURE_USER, [key], new, unionid or "", now),
            _cmd("SADD", self._users, openid),
        ]
        if unionid:
            calls.append(_cmd("SADD", self._unionid_key(unionid), openid))
        reply = self._do(*calls)[0]
        user = _user(json.loads(reply))
        assert user is not None
        return user

    def _update_user(
        self,
        openid: str,
        now: float,
        *,
        unionid: str | None = None,
        phone: tuple[str, str] = ("keep", ""),
        profile: dict[str, Any] | None = None,
    ) -> User | None:
        merge = json.dumps(_profile_texts(profile or {}), ensure_ascii=False)
        key = self._base(openid) + ":user"
        (reply,) = self._do(_script(lua.UPDATE_USER, [key], now, unionid or "", *phone, merge))
        return _user(_loads(reply))

    def update_profile(
        self, openid: str, profile: dict[str, Any], *, now: float, unionid: str | None = None
    ) -> User | None:
        user = self._update_user(openid, now, unionid=unionid, profile=profile)
        if user is not None and unionid and user.unionid:
            self._do(_cmd("SADD", self._unionid_key(user.unionid), openid))
        return user

    def _unionid_key(self, unionid: str) -> str:
        return f"{self.prefix}{{n:{_tag(unionid)}}}:users"

    def find_users_by_unionid(self, unionid: str) -> list[User]:
        (openids,) = self._do(_cmd("SMEMBERS", self._unionid_key(unionid)))
        if not openids:
            return []
        names = sorted(o.decode() if isinstance(o, bytes) else str(o) for o in openids)
        replies = self._do(*(_cmd("GET", self._base(o) + ":user") for o in names))
        users = [u for u in (_user(_loads(r)) for r in replies) if u and u.unionid == unionid]
        return sorted(users, key=lambda u: (u.created_at, u.openid))

    def update_phone(self, openid: str, phone: str | None, *, now: float) -> User | None:
        return self._update_user(
            openid, now, phone=("clear", "") if phone is None else ("set", phone)
        )

    def get_user(self, openid: str) -> User | None:
        (reply,) = self._do(_cmd("GET", self._base(openid) + ":user"))
        return _user(_loads(reply))

    # -- sessions ---------------------------------------------------------------
    def create_session(self, session: Session) -> None:
        record = self._record(session)
        ttl = _ttl_ms(session.expires_at - session.last_seen + GRACE)
        keys = [record, self._base(session.openid) + ":sessions"]
        pointers = [self._skey_pointer(session.skey_hash), self._id_pointer(session.id)]
        full = "0" if self._cluster else "1"
        if not self._cluster:
            keys += [*pointers, self._sessions]
        args = (session.id, session.created_at, session.expires_at, ttl, full)
        self._do(_script(lua.CREATE, keys, *args, _session_record(session)))
        if self._cluster:
            # After the record: a pointer is never followed to a record not yet written.
            self._do(
                *(_cmd("SET", p, record, "PX", ttl) for p in pointers),
                _cmd("ZADD", self._sessions, session.expires_at, record),
            )

    def _lookup(self, pointers: Sequence[str]) -> _Plan[tuple[Session, User | None] | None]:
        """The first session the pointers name, and its user."""
        if not pointers:
            return None
        if self._cluster:
            records = yield [_cmd("GET", p) for p in pointers]
            found = [_text(r) for r in records if r is not None]
            calls = [[_script(lua.LOOKUP, [r, self._owner(r) + ":user"], "0")] for r in found]
        else:
            calls = [[_script(lua.LOOKUP, pointers, "1")]]
        for call in calls:
            (reply,) = yield call
            if reply is not None:
                session, user = json.loads(reply)
                return _session(session), _user(user)
        return None

    def _login_pointers(self, session_id: str | None, skey_hashes: Sequence[str]) -> list[str]:
        if session_id is not None:
            return [self._id_pointer(session_id)]
        return [self._skey_pointer(h) for h in skey_hashes]

    def find_login(
        self, *, session_id: str | None = None, skey_hashes: Sequence[str] = ()
    ) -> tuple[Session, User | None] | None:
        return self._run(self._lookup(self._login_pointers(session_id, skey_hashes)))

    async def afind_login(
        self, *, session_id: str | None = None, skey_hashes: Sequence[str] = ()
    ) -> tuple[Session, User | None] | None:
        plan = self._lookup(self._login_pointers(session_id, skey_hashes))
        if self._async_clients is None:
            from ..plans import offload  # wafer_py's one thread offload (no import cycle)

            return await offload(self._run, plan)
        return await self._arun(plan)

    def get_session(self, session_id: str) -> Session | None:
        found = self.find_login(session_id=session_id)
        return None if found is None else found[0]

    def find_session(self, skey_hash: str) -> Session | None:
        found = self.find_login(skey_hashes=[skey_hash])
        return None if found is None else found[0]

    def _touch(self, session_id: str, last_seen: float, expires_at: float) -> _Plan[None]:
        ttl = _ttl_ms(expires_at - last_seen + GRACE)
        pointer = self._id_pointer(session_id)
        args = (last_seen, expires_at, ttl, self.prefix)
        if not self._cluster:
            yield [_script(lua.TOUCH, [pointer, self._sessions], *args, "1")]
            return
        (record,) = yield [_cmd("GET", pointer)]
        if record is None:
            return
        keys = [_text(record), self._owner(_text(record)) + ":sessions"]
        (skey_hash,) = yield [_script(lua.TOUCH, keys, *args, "0")]
        if skey_hash is not None:
            yield [
                _cmd("PEXPIRE", pointer, ttl),
                _cmd("PEXPIRE", self._skey_pointer(_text(skey_hash)), ttl),
                _cmd("ZADD", self._sessions, expires_at, record),
            ]

    def touch_session(self, session_id: str, *, last_seen: float, expires_at: float) -> None:
        self._run(self._touch(session_id, last_seen, expires_at))

    def supersede_sessions(
        self, openid: str, session_ids: Sequence[str], *, expires_at: float, now: float
    ) -> int:
        """One script on the user's records (all in its hash tag); on a cluster or behind
        a proxy the pointers and the expiry index, in other slots, follow."""
        if not session_ids:
            return 0
        base = self._base(openid)
        records = [f"{base}:s:{session_id}" for session_id in session_ids]
        ttl = _ttl_ms(expires_at - now + GRACE)
        full = "0" if self._cluster else "1"
        args = (expires_at, ttl, self.prefix, full, self._sessions)
        (reply,) = self._do(_script(lua.SUPERSEDE, records, *args))
        changed = [_text(x) for x in reply or []]
        if self._cluster and changed:
            follow: list[_Call] = []
            for session_id, skey_hash in zip(changed[::2], changed[1::2], strict=True):
                follow += [
                    _cmd("PEXPIRE", self._id_pointer(session_id), ttl),
                    _cmd("PEXPIRE", self._skey_pointer(skey_hash), ttl),
                    _cmd("ZADD", self._sessions, expires_at, f"{base}:s:{session_id}"),
                ]
            self._do(*follow)
        return len(changed) // 2

    def reseal_session(self, session_id: str, sealed_session_key: str, *, openid: str) -> bool:
        record = f"{self._base(openid)}:s:{session_id}"
        (done,) = self._do(_script(lua.RESEAL, [record], sealed_session_key))
        return bool(done)

    async def atouch_session(self, session_id: str, *, last_seen: float, expires_at: float) -> None:
        plan = self._touch(session_id, last_seen, expires_at)
        if self._async_clients is None:
            from ..plans import offload  # wafer_py's one thread offload (no import cycle)

            await offload(self._run, plan)
        else:
            await self._arun(plan)

    def _drop_calls(self, records: Sequence[str], before: float | str) -> list[_Call]:
        """Calls of :data:`~.redis_scripts.DROP` deleting session records (only those expired by
        ``before``, unless it is ''). On a standalone server they clean up everything."""
        if self._cluster:
            return [
                _script(lua.DROP, [r, self._owner(r) + ":sessions"], self.prefix, "0", "0", before)
                for r in records
            ]
        return [
            _script(lua.DROP, [r, self._sessions], self.prefix, "0", "1", before) for r in records
        ]

    def _drop_cleanup(self, records: Sequence[str], replies: Sequence[Any]) -> list[_Call]:
        """On a cluster: the calls that finish :meth:`_drop_calls` in the other slots."""
        cleanup: list[_Call] = []
        for record, reply in zip(records, replies, strict=True):
            if reply is None:
                continue
            status, *rest = (_text(x) for x in reply)
            if status == "0":  # not expired after all: keep its place in the index right
                cleanup.append(_cmd("ZADD", self._sessions, rest[0], record))
                continue
            cleanup += [
                _cmd("ZREM", self._sessions, record),
                _cmd("DEL", self._id_pointer(rest[0])),
            ]
            if status == "1":
                cleanup.append(_cmd("DEL", self._skey_pointer(rest[1])))
        return cleanup

    def _revoke(self, session_id: str) -> _Plan[bool]:
        pointer = self._id_pointer(session_id)
        if not self._cluster:
            (reply,) = yield [
                _script(lua.DROP, [pointer, self._sessions], self.prefix, "1", "1", "")
            ]
        else:
            (record,) = yield [_cmd("GET", pointer)]
            if record is None:
                return False
            records = [_text(record)]
            (reply,) = yield self._drop_calls(records, "")
            cleanup = self._drop_cleanup(records, [reply])
            if cleanup:
                yield cleanup
        return reply is not None and _text(reply[0]) == "1"

    def revoke_session(self, session_id: str) -> bool:
        return self._run(self._revoke(session_id))

    def revoke_user(self, openid: str) -> int:
        if self._proxy:
            return self._run(redis_proxy.revoke_user(self, openid))
        index = self._base(openid) + ":sessions"
        if not self._cluster:
            (reply,) = self._do(_script(lua.REVOKE_USER, [index, self._sessions], self.prefix, "1"))
            return int(reply[0])
        # The revocation is one script in the user's slot; the pointers and the expiry
        # index live in other slots and follow.
        (reply,) = self._do(_script(lua.REVOKE_USER, [index], self.prefix, "0"))
        cleanup = self._revoked_cleanup(openid, [_text(x) for x in reply[1:]])
        if cleanup:
            self._do(*cleanup)
        return int(reply[0])

    def _revoked_cleanup(self, openid: str, done: Sequence[str]) -> list[_Call]:
        """On a cluster: after a user's sessions are deleted (``done``: id, skey hash,
        ...), the calls that drop their pointers and their place in the expiry index."""
        base = self._base(openid)
        cleanup: list[_Call] = []
        for session_id, skey_hash in zip(done[::2], done[1::2], strict=True):
            cleanup += [
                _cmd("DEL", self._id_pointer(session_id)),
                _cmd("DEL", self._skey_pointer(skey_hash)),
                _cmd("ZREM", self._sessions, f"{base}:s:{session_id}"),
            ]
        return cleanup

    def list_sessions(self, openid: str) -> list[Session]:
        if self._proxy:
            reply = self._run(redis_proxy.list_sessions(self, openid))
        else:
            (reply,) = self._do(_script(lua.LIST, [self._base(openid) + ":sessions"]))
        return sorted(map(_session, json.loads(reply)), key=lambda s: (s.created_at, s.id))

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

    # -- entries ----------------------------------------------------------------
    def get_entry(self, key: str, *, now: float) -> str | None:
        ((value, expires_at),) = self._do(_cmd("HMGET", self._entry(key), "v", "t"))
        if value is None or float(expires_at) <= now:
            return None
        return _text(value)

    def set_entry(self, key: str, value: str, *, expires_at: float) -> None:
        entry = self._entry(key)
        gc = _ttl_ms(max(expires_at - time.time(), 0.0) + ENTRY_GC)
        self._do(
            _cmd("HSET", entry, "v", value, "t", expires_at),
            _cmd("PEXPIRE", entry, gc),
            _cmd("ZADD", self._entries, expires_at, entry),
        )

    def delete_entry(self, key: str) -> bool:
        entry = self._entry(key)
        deleted, _ = self._do(_cmd("DEL", entry), _cmd("ZREM", self._entries, entry))
        return int(deleted) > 0

    # -- locks ------------------------------------------------------------------
    def acquire_lock(self, name: str, owner: str, *, ttl: float, now: float) -> bool:
        (taken,) = self._do(
            _script(lua.ACQUIRE, [self._lock(name)], owner, now, now + ttl, _ttl_ms(ttl + GRACE))
        )
        return int(taken) == 1

    def release_lock(self, name: str, owner: str) -> bool:
        (released,) = self._do(_script(lua.RELEASE, [self._lock(name)], owner))
        return int(released) == 1

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
