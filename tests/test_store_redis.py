"""The store contract suite on Redis, and what is Redis's own: the key layout (one slot per
multi-key call), native expiry, round trips, no secrets in the clear, outages.

Uses the shared Redis of :mod:`tests.support.services` under a prefix unique to this run (its keys
are deleted at the end), and private servers of :mod:`tests.support.redis_instance` for what must
not happen to the shared one (a stop, a one-node cluster).
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.asyncio
from redis.crc import key_slot

from tests.support.redis_instance import RedisInstance, free_port, send
from tests.support.services import require
from wafer_py.exceptions import StoreUnavailable
from wafer_py.stores import SessionStore, StoreStats, open_store
from wafer_py.stores.redis import ENTRY_GC, GRACE, RedisStore
from wafer_py.testing import StoreContract, make_session

#: Every key this run writes to the shared Redis starts with this.
RUN_PREFIX = f"wafer-test-{secrets.token_hex(4)}:"
SESSION_KEY = "c2Vzc2lvbmtleTEyMzQ1Ng=="  # the session_key make_session seals


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    url = require("redis")
    yield url
    client = redis.Redis.from_url(url)
    keys = list(client.scan_iter(match=RUN_PREFIX + "*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture
def prefix() -> str:
    return f"{RUN_PREFIX}{secrets.token_hex(3)}:"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisInstance]:
    """A private one-node Redis Cluster: it refuses any call that spans two hash slots."""
    with RedisInstance(tmp_path_factory.mktemp("redis-cluster"), cluster=True) as server:
        yield server


class TestRedisStore(StoreContract):
    @pytest.fixture(autouse=True)
    def _server(self, redis_url: str) -> None:
        self.url = redis_url

    def make_store(self) -> SessionStore:
        return RedisStore.from_url(self.url, prefix=RUN_PREFIX + "contract:")


class TestRedisStoreOnBytesClients(StoreContract):
    """Clients made by the caller, without ``decode_responses``, the async one per loop."""

    @pytest.fixture(autouse=True)
    def _server(self, redis_url: str) -> None:
        self.url = redis_url

    def make_store(self) -> SessionStore:
        return RedisStore(
            redis.Redis.from_url(self.url),
            prefix=RUN_PREFIX + "bytes:",
            async_client=lambda: redis.asyncio.Redis.from_url(self.url),
        )


class TestRedisClusterStore(StoreContract):
    """The cluster way (per-slot calls) on a real cluster node, which enforces the slots."""

    @pytest.fixture(autouse=True)
    def _server(self, cluster: RedisInstance) -> None:
        self.url = cluster.url + "?cluster=true"

    def make_store(self) -> SessionStore:
        return RedisStore.from_url(self.url)


# ------------------------------------------------------------------------ helpers
class CountingConnection(redis.connection.Connection):
    """Counts what it sends: one ``send_packed_command`` is one round trip."""

    sends = 0

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        CountingConnection.sends += 1
        super().send_packed_command(command, check_health)


def counting_store(url: str, prefix: str) -> RedisStore:
    pool = redis.ConnectionPool.from_url(
        url, connection_class=CountingConnection, decode_responses=True
    )
    return RedisStore(redis.Redis(connection_pool=pool), prefix=prefix)


def round_trips(call: Callable[[], object]) -> int:
    before = CountingConnection.sends
    call()
    return CountingConnection.sends - before


def dump(client: redis.Redis, prefix: str) -> dict[str, Any]:
    """Every key under ``prefix`` and its value, read by type."""
    readers: dict[str, Callable[[str], Any]] = {
        "string": client.get,
        "hash": client.hgetall,
        "zset": lambda key: client.zrange(key, 0, -1, withscores=True),
        "set": client.smembers,
    }
    return {
        key: readers[client.type(key)](key)
        for key in client.scan_iter(match=prefix + "*", count=1000)
    }


# --------------------------------------------------------------------------- tests
def test_open_store_by_url(redis_url: str, prefix: str) -> None:
    store = open_store(f"{redis_url}?prefix={prefix}")
    assert isinstance(store, RedisStore)
    assert store.prefix == prefix
    store.close()


def test_dump_has_no_secrets_in_the_clear(redis_url: str, prefix: str) -> None:
    with RedisStore.from_url(redis_url, prefix=prefix) as store:
        store.ensure_user("o-dump", unionid=None, profile={"nickName": "A"}, now=1.0)
        session, skey = make_session("o-dump")
        store.create_session(session)
        store.set_entry("entry", "value", expires_at=2000.0)
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    text = repr(dump(client, prefix))
    client.close()
    assert session.skey_hash in text and session.sealed_session_key in text  # it read them
    assert skey not in text
    assert SESSION_KEY not in text


def test_key_layout_puts_each_multi_key_group_in_one_slot(redis_url: str, prefix: str) -> None:
    session, _ = make_session("o{odd}id%7B")
    with RedisStore.from_url(redis_url, prefix=prefix) as store:
        store.ensure_user(session.openid, unionid=None, profile={}, now=1.0)
        store.create_session(session)
        store.set_entry("e", "v", expires_at=2000.0)
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    keys = set(dump(client, prefix))
    client.close()
    base = f"{prefix}{{u:o%7Bodd%7Did%257B}}"
    user_slot = {f"{base}:user", f"{base}:sessions", f"{base}:s:{session.id}"}
    indexes = {f"{prefix}{{x}}:sessions", f"{prefix}{{x}}:entries", f"{prefix}{{x}}:users"}
    pointers = {f"{prefix}{{i:{session.id}}}", f"{prefix}{{k:{session.skey_hash}}}"}
    assert keys == user_slot | indexes | pointers | {f"{prefix}{{e:e}}"}
    assert len({key_slot(k.encode()) for k in user_slot}) == 1
    assert len({key_slot(k.encode()) for k in indexes}) == 1


def test_cluster_calls_touch_one_slot_each(cluster: RedisInstance) -> None:
    """Every script the cluster way runs is given keys of one slot. (The node checks that
    too, and also refuses a script touching an undeclared key of another slot, which is
    how the contract suite above proves the rest of the cluster way.)"""
    store = RedisStore.from_url(cluster.url + "?cluster=true")
    sent: list[Any] = []
    real_send = store._send

    def recording(calls: list[Any]) -> list[Any]:
        sent.extend(calls)
        return real_send(calls)

    store._send = recording  # type: ignore[method-assign]
    session, _ = make_session("o-slots", now=0.0, ttl=10.0)
    store.ensure_user("o-slots", unionid=None, profile={}, now=0.0)
    store.create_session(session)
    assert store.find_login(skey_hashes=[session.skey_hash]) is not None
    store.touch_session(session.id, last_seen=1.0, expires_at=11.0)
    store.set_entry("e-slots", "v", expires_at=5.0)
    store.purge_expired(now=100.0)
    other, _ = make_session("o-slots")
    store.create_session(other)
    store.revoke_user("o-slots")
    store.close()
    scripts = [c for c in sent if not isinstance(c.command, str)]
    assert scripts
    for call in scripts:
        keys = call.args[: call.keys]
        assert len({key_slot(k.encode()) for k in keys}) == 1, call


def test_round_trips_on_a_standalone_server(redis_url: str, prefix: str) -> None:
    store = counting_store(redis_url, prefix)
    session, _ = make_session("o-trips")
    old, _ = make_session("o-trips", now=0.0, ttl=1.0)
    store._client.ping()  # connects
    assert round_trips(store._client.ping) == 1
    costs = {
        "ensure_user": lambda: store.ensure_user("o-trips", unionid=None, profile={}, now=1.0),
        "create_session": lambda: store.create_session(session),
        "create old": lambda: store.create_session(old),
        "find_login by id": lambda: store.find_login(session_id=session.id),
        "find_login by skey": lambda: store.find_login(skey_hashes=["0" * 64, session.skey_hash]),
        "touch_session": lambda: store.touch_session(session.id, last_seen=2.0, expires_at=9.0),
        "list_sessions": lambda: store.list_sessions("o-trips"),
        "revoke_session": lambda: store.revoke_session(old.id),
        "stats": lambda: store.stats(now=5.0),
        "set_entry": lambda: store.set_entry("e", "v", expires_at=9.0),
        "get_entry": lambda: store.get_entry("e", now=1.0),
        "acquire_lock": lambda: store.acquire_lock("l", "me", ttl=5.0, now=1.0),
        "release_lock": lambda: store.release_lock("l", "me"),
        "revoke_user": lambda: store.revoke_user("o-trips"),
    }
    # The first run of each script sends it whole after NOSCRIPT: count the second.
    for call in costs.values():
        call()
    store.create_session(session)
    store.create_session(old)
    store.acquire_lock("l", "me", ttl=5.0, now=1.0)
    assert {name: round_trips(call) for name, call in costs.items()} == dict.fromkeys(costs, 1)
    store.create_session(make_session("o-trips", now=0.0, ttl=1.0)[0])
    assert round_trips(lambda: store.purge_expired(now=100.0, limit=10)) == 2
    store.close()


def test_native_expiry_follows_the_logical_clock(redis_url: str, prefix: str) -> None:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    store = RedisStore(client, prefix=prefix)
    session, _ = make_session("o-ttl", now=1000.0, ttl=3600.0)
    store.create_session(session)
    record = f"{prefix}{{u:o-ttl}}:s:{session.id}"
    keys = [record, f"{prefix}{{i:{session.id}}}", f"{prefix}{{k:{session.skey_hash}}}"]

    def ttls() -> set[float]:
        return {client.pttl(k) / 1000 for k in keys}

    assert all(3600 + GRACE - 5 < t <= 3600 + GRACE for t in ttls())
    store.touch_session(session.id, last_seen=2000.0, expires_at=9000.0)
    assert all(7000 + GRACE - 5 < t <= 7000 + GRACE for t in ttls())
    assert client.pttl(f"{prefix}{{u:o-ttl}}:sessions") / 1000 > 7000 + GRACE - 5
    store.acquire_lock("lock", "me", ttl=30.0, now=5.0)
    assert 30 + GRACE - 5 < client.pttl(f"{prefix}{{l:lock}}") / 1000 <= 30 + GRACE
    store.set_entry("small-clock", "v", expires_at=100.0)  # long past as wall-clock time
    assert ENTRY_GC - 5 < client.pttl(f"{prefix}{{e:small-clock}}") / 1000 <= ENTRY_GC
    store.set_entry("wall-clock", "v", expires_at=time.time() + 7200)
    assert client.pttl(f"{prefix}{{e:wall-clock}}") / 1000 > 7200 + ENTRY_GC - 5
    store.close()
    client.close()


def test_revoke_user_is_one_call_and_leaves_no_pointer(redis_url: str, prefix: str) -> None:
    store = counting_store(redis_url, prefix)
    store.revoke_user("o-warm")  # loads the script
    sessions = [make_session("o-revoke")[0] for _ in range(3)]
    for session in sessions:
        store.create_session(session)
    assert round_trips(lambda: store.revoke_user("o-revoke")) == 1
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    left = dump(client, prefix)
    client.close()
    assert set(left) == {f"{prefix}{{x}}:sessions"} or not left
    assert all(s.id not in repr(left) for s in sessions)
    store.close()


def test_purge_without_a_limit_goes_through_every_batch(
    redis_url: str, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("wafer_py.stores.redis._PURGE_BATCH", 3)
    with RedisStore.from_url(redis_url, prefix=prefix) as store:
        old = [make_session("o-batches", now=0.0, ttl=1.0)[0] for _ in range(8)]
        for session in old:
            store.create_session(session)
        for i in range(7):
            store.set_entry(f"old-{i}", "x", expires_at=1.0)
        assert store.purge_expired(now=10.0) == 8
        assert store.stats(now=0.5) == StoreStats(0, 0, 0, 0)


def test_repr_masks_the_password() -> None:
    store = RedisStore.from_url("redis://alice:s3cret@127.0.0.1:6390/2?prefix=app:")
    assert "s3cret" not in repr(store)
    assert repr(store) == "RedisStore('redis://alice:***@127.0.0.1:6390/2', prefix='app:')"
    store.close()
    store = RedisStore.from_url("unix:///run/redis.sock?db=1&password=s3cret")
    assert "s3cret" not in repr(store)
    store.close()
    client = redis.Redis(host="127.0.0.1", port=6390, password="s3cret")
    assert repr(RedisStore(client)) == "RedisStore('127.0.0.1:6390/0', prefix='wafer:')"
    with pytest.raises(ValueError, match="hash tag"):
        RedisStore(client, prefix="a{b}:")


def test_errors_become_store_unavailable_without_the_password() -> None:
    store = RedisStore.from_url(f"redis://:wrong-s3cret@127.0.0.1:{free_port()}/0")
    started = time.monotonic()
    with pytest.raises(StoreUnavailable) as caught:
        store.get_user("o")
    assert time.monotonic() - started < 1.0
    assert caught.value.detail.startswith("Redis: ConnectionError")
    assert "s3cret" not in caught.value.detail
    store.close()


def test_async_lookup_on_several_event_loops(redis_url: str, prefix: str) -> None:
    store = RedisStore.from_url(redis_url, prefix=prefix)
    user = store.ensure_user("o-async", unionid=None, profile={}, now=1.0)
    sessions = [make_session("o-async")[0] for _ in range(20)]
    for session in sessions:
        store.create_session(session)

    async def lookups() -> None:
        found = await asyncio.gather(
            *(store.afind_login(skey_hashes=[s.skey_hash]) for s in sessions)
        )
        assert found == [(s, user) for s in sessions]

    async def touch() -> None:
        await store.atouch_session(sessions[0].id, last_seen=5.0, expires_at=50.0)

    asyncio.run(lookups())
    asyncio.run(lookups())  # a new loop gets its own client
    asyncio.run(touch())
    touched = store.get_session(sessions[0].id)
    assert touched is not None and touched.expires_at == 50.0
    store.close()


def test_async_without_an_async_client_uses_a_thread(redis_url: str, prefix: str) -> None:
    store = RedisStore(redis.Redis.from_url(redis_url), prefix=prefix)
    session, _ = make_session("o-thread")
    store.create_session(session)

    async def lookup() -> Any:
        return await store.afind_login(session_id=session.id)

    assert asyncio.run(lookup()) == (session, None)
    store.close()


@pytest.mark.parametrize("cluster", [False, True], ids=["standalone", "cluster"])
def test_store_recovers_after_an_outage(tmp_path: Path, cluster: bool) -> None:
    with RedisInstance(tmp_path, persist=True, cluster=cluster) as server:
        url = server.url + ("?cluster=true" if cluster else "")
        store = RedisStore.from_url(url, socket_timeout=0.5)
        session, _ = make_session("o-outage")
        store.create_session(session)
        assert store.get_session(session.id) == session

        async def scenario() -> None:
            assert (await store.afind_login(session_id=session.id)) == (session, None)
            server.stop()
            started = time.monotonic()
            with pytest.raises(StoreUnavailable):
                await store.afind_login(session_id=session.id)
            with pytest.raises(StoreUnavailable):
                store.get_session(session.id)
            assert time.monotonic() - started < 1.0
            server.start()  # no scripts cached: they are sent again
            assert (await store.afind_login(session_id=session.id)) == (session, None)
            assert store.get_session(session.id) == session
            # A server that answers nothing: timeouts, then no stale reply once it is back.
            server.freeze()
            with pytest.raises(StoreUnavailable):
                await store.afind_login(session_id=session.id)
            with pytest.raises(StoreUnavailable):
                store.get_user("o-outage")
            server.thaw()
            assert (await store.afind_login(session_id=session.id)) == (session, None)
            assert store.get_user("o-outage") is None
            assert store.get_session(session.id) == session

        asyncio.run(scenario())
        store.close()


def test_redis_instance_restarts_with_or_without_its_data(tmp_path: Path) -> None:
    with RedisInstance(tmp_path / "kept", persist=True) as server:
        assert send(server.port, "SET", "k", "v") == "OK"
        port = server.port
        server.stop()
        assert not server.running
        with pytest.raises(OSError):
            send(server.port, "PING")
        server.start()
        assert server.port == port and send(server.port, "GET", "k") == "v"
        server.kill()  # a crash: the append-only file is fsynced on every write
        server.start()
        assert send(server.port, "GET", "k") == "v"
    assert not server.running
    with RedisInstance(tmp_path / "lost") as server:
        send(server.port, "SET", "k", "v")
        server.stop()
        server.start()
        assert send(server.port, "GET", "k") == ""


def test_a_user_written_before_the_unionid_index_joins_it_at_login(
    redis_url: str, prefix: str
) -> None:
    """Users stored by an earlier release have a unionid but no index entry: the next
    login (ensure_user with the unionid, as every login of a bound app passes) adds it."""
    with RedisStore.from_url(redis_url, prefix=prefix) as store:
        store.ensure_user("o-early", unionid="u-early", profile={"nickName": "E"}, now=1.0)
        client = redis.Redis.from_url(redis_url)
        assert client.delete(f"{prefix}{{n:u-early}}:users") == 1  # as an older release left it
        client.close()
        assert store.find_users_by_unionid("u-early") == []
        store.ensure_user("o-early", unionid="u-early", profile={}, now=2.0)
        (user,) = store.find_users_by_unionid("u-early")
        assert (user.openid, user.nickname, user.created_at) == ("o-early", "E", 1.0)
