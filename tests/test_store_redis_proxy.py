"""The Redis store behind a proxy in front of shards (``?cluster=proxy``), through twemproxy
in front of two Redis servers: the stand-in for the managed "cluster" editions.

The contract suite runs through the proxy; the other tests check what only a proxy shows:
every script call's keys share one hash tag, the keys spread over both shards and each
lies on the shard the proxy looks for it on, a revocation cut short refuses, and the
standalone mode through the proxy fails (503, or worse: sessions lost).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.asyncio

from tests.support.probe import wait_until
from tests.support.redis_instance import send
from tests.support.twemproxy import Twemproxy
from wafer_py.exceptions import StoreUnavailable
from wafer_py.models import Session
from wafer_py.stores import SessionStore, open_store, redis_proxy
from wafer_py.stores import redis_scripts as lua
from wafer_py.stores.redis import RedisStore
from wafer_py.stores.redis_proxy import CLIENT_OPTIONS, REVOKE_GIVEN, cluster_mode, revoke_user
from wafer_py.stores.redis_scripts import Script
from wafer_py.testing import StoreContract, make_session

from .test_store_redis import CountingConnection, round_trips

TAG = re.compile(r"\{([^}]*)\}")


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Twemproxy]:
    with Twemproxy(tmp_path_factory.mktemp("twemproxy")) as server:
        yield server


_counter = iter(range(1_000_000))


def fresh_prefix() -> str:
    return f"p{next(_counter)}:"


class TestRedisProxyStore(StoreContract):
    @pytest.fixture(autouse=True)
    def _server(self, proxy: Twemproxy) -> None:
        self.url = proxy.url

    def make_store(self) -> SessionStore:
        return RedisStore.from_url(f"{self.url}?cluster=proxy&prefix={fresh_prefix()}")


class TestRedisProxyStoreOnClientsPassedIn(StoreContract):
    """Clients made by the caller (bytes replies), with ``proxy=True``."""

    @pytest.fixture(autouse=True)
    def _server(self, proxy: Twemproxy) -> None:
        self.url = proxy.url

    def make_store(self) -> SessionStore:
        return RedisStore(
            redis.Redis.from_url(self.url, **CLIENT_OPTIONS),
            prefix=fresh_prefix(),
            async_client=lambda: redis.asyncio.Redis.from_url(self.url, **CLIENT_OPTIONS),
            proxy=True,
        )


#: Put after a script's first line: ``redis.call`` on a key not in ``KEYS`` is an error,
#: as on the managed proxies (twemproxy checks nothing: a stray key of the same tag is on
#: the same shard, so only this shows that a script names every key it touches).
STRICT = """
local declared = {}
for _, k in ipairs(KEYS) do declared[k] = true end
local real = redis
local redis = setmetatable({call = function(command, key, ...)
  if not declared[key] then error('a key not in KEYS: ' .. tostring(key)) end
  return real.call(command, key, ...)
end}, {__index = real})
"""


def strict(script: Script) -> Script:
    first, rest = script.source.split("\n", 1)
    return Script(first + STRICT + rest)


@pytest.fixture
def strict_scripts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every script of the store refuses to touch a key it was not given."""
    for name in lua.__all__:
        value = getattr(lua, name)
        if isinstance(value, Script):
            monkeypatch.setattr(lua, name, strict(value))
    monkeypatch.setattr(redis_proxy, "REVOKE_GIVEN", strict(REVOKE_GIVEN))


@pytest.mark.usefixtures("strict_scripts")
class TestRedisProxyStoreWithStrictScripts(StoreContract):
    """The contract with scripts that refuse keys not in KEYS: no script reaches a key
    it was not given."""

    @pytest.fixture(autouse=True)
    def _server(self, proxy: Twemproxy) -> None:
        self.url = proxy.url

    def make_store(self) -> SessionStore:
        return RedisStore.from_url(f"{self.url}?cluster=proxy&prefix={fresh_prefix()}")


@pytest.mark.usefixtures("strict_scripts")
def test_the_strict_scripts_refuse_a_key_not_given(proxy: Twemproxy) -> None:
    """The check above works: the standalone scripts follow pointers, and are refused
    (on one shard, read directly, where the pointers lead somewhere)."""
    store = RedisStore(redis.Redis(port=proxy.shards[0].port), prefix=fresh_prefix())
    session, _ = make_session("o-strict")
    store.create_session(session)
    with pytest.raises(StoreUnavailable) as caught:
        store.find_login(session_id=session.id)
    assert "a key not in KEYS" in str(caught.value.detail)
    store.close()


def tag(key: str) -> str:
    match = TAG.search(key)
    assert match is not None, key
    return match.group(1)


def shard_keys(proxy: Twemproxy, prefix: str) -> list[set[str]]:
    """The keys under ``prefix`` on each shard, read from the shards directly."""
    found = []
    for shard in proxy.shards:
        client = redis.Redis(port=shard.port, decode_responses=True)
        found.append(set(client.scan_iter(match=prefix + "*", count=1000)))
        client.close()
    return found


def exercise(store: RedisStore, users: int) -> None:
    """Every kind of call, for several users."""
    for n in range(users):
        openid = f"o-spread-{n}"
        store.ensure_user(openid, unionid=f"u-{n % 3}", profile={"n": n}, now=1.0)
        sessions = [make_session(openid, now=1.0, ttl=10.0)[0] for _ in range(3)]
        for session in sessions:
            store.create_session(session)
        assert store.find_login(skey_hashes=["0" * 64, sessions[0].skey_hash]) is not None
        assert store.find_login(session_id=sessions[1].id) is not None
        store.touch_session(sessions[0].id, last_seen=2.0, expires_at=20.0)
        store.reseal_session(sessions[0].id, "resealed", openid=openid)
        assert len(store.list_sessions(openid)) == 3
        assert store.revoke_session(sessions[2].id)
        store.set_entry(f"e-{n}", "v", expires_at=5.0 + n)
        store.acquire_lock(f"l-{n}", "me", ttl=5.0, now=1.0)
    store.find_users_by_unionid("u-1")
    store.stats(now=6.0)
    store.purge_expired(now=15.0)  # the untouched sessions and some entries
    store.revoke_user("o-spread-0")


@pytest.mark.usefixtures("strict_scripts")
def test_each_call_keeps_to_one_tag_and_the_keys_spread_over_both_shards(
    proxy: Twemproxy,
) -> None:
    prefix = fresh_prefix()
    store = RedisStore.from_url(f"{proxy.url}?cluster=proxy&prefix={prefix}")
    sent: list[Any] = []
    real_send = store._send

    def recording(calls: list[Any]) -> list[Any]:
        sent.extend(calls)
        return real_send(calls)

    store._send = recording  # type: ignore[method-assign]
    exercise(store, users=8)
    store.close()
    scripts = [c for c in sent if not isinstance(c.command, str)]
    used = {c.command for c in scripts}
    assert {lua.LOOKUP, lua.TOUCH, lua.DROP, lua.LIST, redis_proxy.REVOKE_GIVEN} <= used
    for call in scripts:
        assert call.keys >= 1, call  # twemproxy routes a script by its first key
        assert len({tag(k) for k in call.args[: call.keys]}) == 1, call
    for call in sent:
        assert call.command not in ("SCRIPT", "KEYS", "SCAN", "MULTI", "SELECT"), call
    # Both shards hold keys, each key of one tag is on one shard, and that shard is the
    # one the proxy reads it from: no script wrote a key it was not given.
    left = shard_keys(proxy, prefix)
    assert all(left), left
    assert not left[0] & left[1]
    for i, keys in enumerate(left):
        for key in keys:
            assert send(proxy.port, "EXISTS", key) == "1", (key, i)
    by_tag: dict[str, set[int]] = {}
    for i, keys in enumerate(left):
        for key in keys:
            by_tag.setdefault(tag(key), set()).add(i)
    assert all(len(shards) == 1 for shards in by_tag.values()), by_tag


def test_round_trips_through_the_proxy(proxy: Twemproxy) -> None:
    pool = redis.ConnectionPool.from_url(
        proxy.url, connection_class=CountingConnection, decode_responses=True, **CLIENT_OPTIONS
    )
    store = RedisStore(redis.Redis(connection_pool=pool), prefix=fresh_prefix(), proxy=True)
    session, _ = make_session("o-trips")
    old, _ = make_session("o-trips", now=0.0, ttl=1.0)
    store.ensure_user("o-trips", unionid=None, profile={}, now=1.0)
    costs = {
        "create_session": lambda: store.create_session(session),
        "create old": lambda: store.create_session(old),
        "find_login by skey": lambda: store.find_login(skey_hashes=["0" * 64, session.skey_hash]),
        "find_login by id": lambda: store.find_login(session_id=session.id),
        "touch_session": lambda: store.touch_session(session.id, last_seen=2.0, expires_at=9.0),
        "list_sessions": lambda: store.list_sessions("o-trips"),
        "revoke_session": lambda: store.revoke_session(old.id),
        "stats": lambda: store.stats(now=5.0),
        "revoke_user": lambda: store.revoke_user("o-trips"),
    }
    for call in costs.values():  # the first run of each script sends it whole
        call()
    trips = {name: round_trips(call) for name, call in costs.items()}
    assert trips == {
        "create_session": 2,
        "create old": 2,
        "find_login by skey": 2,
        "find_login by id": 2,
        "touch_session": 3,
        "list_sessions": 2,
        "revoke_session": 3,
        "stats": 1,
        "revoke_user": 3,
    }
    store.close()


def test_revoke_user_takes_a_session_made_while_it_runs(proxy: Twemproxy) -> None:
    store = RedisStore.from_url(f"{proxy.url}?cluster=proxy&prefix={fresh_prefix()}")
    first, _ = make_session("o-race")
    store.create_session(first)
    plan = revoke_user(store, "o-race")
    calls = next(plan)  # asks which sessions the user has
    replies = store._send(calls)
    late, _ = make_session("o-race")
    store.create_session(late)  # not among the ids the first call returned
    with pytest.raises(StopIteration) as done:
        while True:
            calls = plan.send(replies)
            replies = store._send(calls)
    assert done.value.value == 2
    assert store.list_sessions("o-race") == []
    assert store.find_login(skey_hashes=[late.skey_hash]) is None
    store.close()


def test_a_revocation_cut_short_refuses_the_sessions(proxy: Twemproxy) -> None:
    """A crash after the records are deleted, before their pointers are: every lookup
    finds nothing, by skey hash and by id."""
    store = RedisStore.from_url(f"{proxy.url}?cluster=proxy&prefix={fresh_prefix()}")
    store.ensure_user("o-crash", unionid=None, profile={}, now=1.0)
    sessions = [make_session("o-crash")[0] for _ in range(3)]
    for session in sessions:
        store.create_session(session)
    plan = revoke_user(store, "o-crash")
    replies = store._send(next(plan))
    calls = plan.send(replies)  # deletes the records
    store._send(calls)
    plan.close()  # the pointers' cleanup never runs
    for session in sessions:
        assert store.find_login(skey_hashes=[session.skey_hash]) is None
        assert store.find_login(session_id=session.id) is None
        assert store.get_session(session.id) is None
    assert store.list_sessions("o-crash") == []
    assert store.revoke_user("o-crash") == 0
    store.close()


def test_the_standalone_way_through_the_proxy_answers_unavailable(proxy: Twemproxy) -> None:
    """Without ?cluster=proxy, redis-py opens with HELLO and CLIENT SETINFO, which
    twemproxy answers by closing the connection: every call is a 503, never a 401."""
    store = open_store(f"{proxy.url}?prefix={fresh_prefix()}")
    with pytest.raises(StoreUnavailable) as caught:
        store.find_login(skey_hashes=["0" * 64])
    assert caught.value.detail is not None and "ConnectionError" in caught.value.detail
    store.close()


def test_the_standalone_scripts_lose_sessions_behind_the_proxy(proxy: Twemproxy) -> None:
    """Why the mode exists: with a client the proxy accepts, the standalone scripts
    follow pointers to keys on the other shard, and most sessions are not found."""
    store = RedisStore(redis.Redis.from_url(proxy.url, **CLIENT_OPTIONS), prefix=fresh_prefix())
    sessions = [make_session(f"o-lost-{n}")[0] for n in range(20)]
    for session in sessions:
        store.create_session(session)
    found = [store.find_login(session_id=s.id) is not None for s in sessions]
    assert not all(found)
    store.close()


def test_the_cluster_value_is_checked() -> None:
    assert [cluster_mode(v) for v in ("proxy", "PROXY", "true", "1", "false", "")] == [
        "proxy",
        "proxy",
        "cluster",
        "cluster",
        "standalone",
        "standalone",
    ]
    store = RedisStore.from_url("redis://127.0.0.1:1/0?cluster=proxy&prefix=x:")
    assert store._proxy and store._cluster and store.prefix == "x:"
    store.close()
    with pytest.raises(ValueError, match=r"\?cluster= must be true .* not 'twemproxy'"):
        RedisStore.from_url("redis://127.0.0.1:1/0?cluster=twemproxy")


def test_a_shard_down_is_a_503_for_the_sessions_it_holds(tmp_path: Path) -> None:
    """twemproxy with hosts never ejected: a validation that needs the stopped shard (for
    the skey's pointer or for the user's keys) gets StoreUnavailable (503), never "no such
    session"; one that does not still validates; all validate again once the shard is
    back, with the same store."""
    with Twemproxy(tmp_path, persist=True) as proxy:
        store = RedisStore.from_url(f"{proxy.url}?cluster=proxy", socket_timeout=1.0)
        needs: dict[bool, list[Session]] = {True: [], False: []}
        for n in range(200):
            openid = f"o-down-{n}"
            store.ensure_user(openid, unionid=None, profile={}, now=1.0)
            session, _ = make_session(openid)
            store.create_session(session)
            keys = [f"wafer:{{k:{session.skey_hash}}}", f"wafer:{{u:{openid}}}:user"]
            needs[0 in {proxy.shard_of(k) for k in keys}].append(session)
            if len(needs[True]) >= 3 and len(needs[False]) >= 3:
                break
        proxy.shards[0].stop()
        for session in needs[True]:
            with pytest.raises(StoreUnavailable):
                store.find_login(skey_hashes=[session.skey_hash])
        for session in needs[False]:
            assert store.find_login(skey_hashes=[session.skey_hash]) is not None
        proxy.shards[0].start()

        def all_back() -> bool:
            try:
                return all(
                    store.find_login(skey_hashes=[s.skey_hash]) for s in needs[True] + needs[False]
                )
            except StoreUnavailable:
                return False

        wait_until(all_back, "every session to validate again")
        store.close()
