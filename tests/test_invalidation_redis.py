"""The Redis store's invalidation channel (client tracking, issue #17): every change made
through another store object is reported; a frozen server, a killed connection and a
restart turn it down, and it comes back live after.

The shared Redis for what changes nothing but keys under a prefix of this run; private
servers (:mod:`tests.support.redis_instance`) for freezing, killing and restarting.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from tests.support.channels import Recorder, check_every_change
from tests.support.redis_instance import RedisInstance, require_redis_server
from tests.support.sentinel_cluster import SERVICE, SentinelCluster, require_redis_sentinel
from tests.support.services import require
from wafer_py.stores import open_store
from wafer_py.stores.invalidation import ALL, Invalidation
from wafer_py.stores.redis import RedisStore
from wafer_py.stores.redis_tracking import RedisTrackingChannel, invalidation_for

RUN_PREFIX = f"wafer-test-{secrets.token_hex(4)}:"


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    url = require("redis")
    yield url
    client = redis.Redis.from_url(url)
    keys = list(client.scan_iter(match=RUN_PREFIX + "*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


def _watch(store: RedisStore) -> tuple[RedisTrackingChannel, Recorder]:
    channel = store.invalidation_channel()
    assert isinstance(channel, RedisTrackingChannel)
    recorder = Recorder()
    channel.start(recorder.change, recorder.state)
    return channel, recorder


def _kill_channel(port: int, channel: RedisTrackingChannel) -> None:
    admin = redis.Redis(port=port, decode_responses=True)
    try:
        found = [c for c in admin.client_list() if c["name"] == channel.connection_name]
        assert found, "the channel's connection is not in CLIENT LIST"
        admin.client_kill_filter(_id=found[0]["id"])
    finally:
        admin.close()


def test_keys_map_to_invalidations() -> None:
    p = "app:"
    assert invalidation_for(p, "app:{u:o%7Bx%7D%25}:user") == Invalidation("user", "o{x}%")
    assert invalidation_for(p, "app:{u:o1}:s:AbC-_1") == Invalidation("session", "AbC-_1")
    assert invalidation_for(p, "app:{u:o1}:sessions") is None
    assert invalidation_for(p, "other:{u:o1}:user") is None
    assert invalidation_for(p, "app:{x}:sessions") is None


def test_every_change_is_reported(redis_url: str) -> None:
    prefix = f"{RUN_PREFIX}{secrets.token_hex(3)}:"
    store = RedisStore.from_url(redis_url, prefix=prefix)
    writer = RedisStore.from_url(redis_url, prefix=prefix)
    channel, recorder = _watch(store)
    try:
        recorder.wait_live()
        check_every_change(writer, recorder, openid="o{pen}%id")
        # Nothing of another prefix, nor any heartbeat, is reported as a change.
        other = RedisStore.from_url(redis_url, prefix=prefix + "other:")
        other.update_profile("o{pen}%id", {"x": 1}, now=1.0)
        other.ensure_user("someone", unionid=None, profile={}, now=1.0)
        other.update_profile("someone", {"x": 1}, now=1.0)
        other.close()
        assert Invalidation("user", "someone") not in recorder.changes
        assert all(c.kind in ("session", "user") for c in recorder.changes)
    finally:
        channel.close()
        store.close()
        writer.close()
    assert recorder.states[-1] is False


def test_a_flush_invalidates_everything(tmp_path: Path) -> None:
    require_redis_server()
    with RedisInstance(tmp_path) as server:
        store = RedisStore.from_url(server.url, prefix="app:")
        channel, recorder = _watch(store)
        try:
            recorder.wait_live()
            redis.Redis(port=server.port).flushdb()
            recorder.wait_for(ALL)
        finally:
            channel.close()
            store.close()


def test_cluster_and_proxy_stores_offer_no_channel(redis_url: str, tmp_path: Path) -> None:
    proxy = open_store(f"{redis_url}?cluster=proxy&prefix={RUN_PREFIX}p:")
    assert isinstance(proxy, RedisStore)
    assert proxy.invalidation_channel() is None
    proxy.close()
    require_redis_server()
    with RedisInstance(tmp_path, cluster=True) as server:
        cluster = open_store(f"{server.url}?cluster=true")
        assert isinstance(cluster, RedisStore)
        assert cluster.invalidation_channel() is None
        cluster.close()


def test_overdue_heartbeat_then_a_killed_connection_then_a_restart(tmp_path: Path) -> None:
    require_redis_server()
    with RedisInstance(tmp_path, persist=True) as server:
        store = RedisStore.from_url(server.url, prefix="app:")
        writer = RedisStore.from_url(server.url, prefix="app:")
        channel, recorder = _watch(store)
        try:
            recorder.wait_live()
            seen = len(recorder.states)

            # A frozen server answers nothing: the heartbeat is overdue.
            server.freeze()
            try:
                seen = recorder.wait_state(False, after=seen)
            finally:
                server.thaw()
            seen = recorder.wait_state(True, after=seen)

            # The channel's own connection killed: down, reconnected, live again.
            _kill_channel(server.port, channel)
            seen = recorder.wait_state(False, after=seen)
            seen = recorder.wait_state(True, after=seen)

            # A restart (the data kept): down, then live again on the new server.
            server.stop()
            seen = recorder.wait_state(False, after=seen)
            server.start()
            seen = recorder.wait_state(True, after=seen)

            # And it hears changes again.
            writer.ensure_user("o1", unionid=None, profile={}, now=1.0)
            writer.update_profile("o1", {"a": 1}, now=2.0)
            recorder.wait_for(Invalidation("user", "o1"))
        finally:
            channel.close()
            store.close()
            writer.close()


def test_a_sentinel_failover_moves_the_channel_to_the_new_master(tmp_path: Path) -> None:
    """``SENTINEL FAILOVER`` with an old master that stays a master (pinned): nothing
    closes the channel's connection to it, but the heartbeat, written where the store
    writes, goes to the new master and is not heard: the channel goes down, reconnects
    through the sentinels to the new master, and is live there."""
    require_redis_sentinel()
    with SentinelCluster(tmp_path / "sentinel", pinned_master=True) as cluster:
        store = open_store(cluster.url("prefix=fo:"))
        writer = open_store(cluster.url("prefix=fo:"))
        assert isinstance(store, RedisStore) and isinstance(writer, RedisStore)
        channel, recorder = _watch(store)
        try:
            recorder.wait_live()
            seen = len(recorder.states)
            cluster.wait_replicated()
            old = cluster.master_port()
            with cluster.sentinels[0].client() as sentinel:
                assert sentinel.execute_command("SENTINEL", "FAILOVER", SERVICE)
            new = cluster.wait_for_failover(old)
            seen = recorder.wait_state(False, after=seen)
            recorder.wait_state(True, after=seen, timeout=60)

            def on(port: int) -> bool:
                with redis.Redis(port=port, decode_responses=True) as admin:
                    return any(c["name"] == channel.connection_name for c in admin.client_list())

            assert on(new) and not on(old)
            writer.ensure_user("o1", unionid=None, profile={}, now=1.0)
            writer.update_profile("o1", {"a": 1}, now=2.0)
            recorder.wait_for(Invalidation("user", "o1"))
        finally:
            channel.close()
            store.close()
            writer.close()


def test_a_process_that_was_paused_answers_from_the_store_until_a_new_heartbeat(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cache asks ``poll()`` before each lookup: after a pause longer than a heartbeat
    interval plus its bound (SIGSTOP, a frozen VM: the clock jumps, no thread ran), the
    channel is not current until a heartbeat sent after the pause comes back, whatever
    its reader thread has reported so far."""
    import wafer_py.stores.heartbeat as heartbeat

    store = RedisStore.from_url(redis_url, prefix=f"{RUN_PREFIX}{secrets.token_hex(3)}:")
    channel, recorder = _watch(store)
    try:
        recorder.wait_live()
        assert _eventually(channel.poll)
        real = time.monotonic
        monkeypatch.setattr(heartbeat.time, "monotonic", lambda: real() + 5.0)
        assert not channel.poll()  # the clock moved on 5 s: nothing answered since
        monkeypatch.setattr(heartbeat.time, "monotonic", real)
        assert _eventually(channel.poll)
    finally:
        channel.close()
        store.close()


def _eventually(check: Callable[[], bool], within: float = 10.0) -> bool:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True
