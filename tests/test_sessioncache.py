"""The per-process session cache (issue #17), driven by a test-only channel."""

from __future__ import annotations

import os
import threading
from typing import Any

import pytest

from tests.support.channel import ChannelStore, PolledChannel, PolledStore
from tests.support.clock import Clock
from tests.support.constants import DEMO_ENV, TEST_SECRET
from wafer_py import Credentials, InvalidSession, WaferAuth, WaferConfig
from wafer_py.plans import StoreCall, run
from wafer_py.sessioncache import HISTORY, SessionCache
from wafer_py.stores.invalidation import ALL, Invalidation
from wafer_py.stores.memory import MemoryStore
from wafer_py.wechat.client import Code2Session

OLD_SECRET = "an-older-secret-key-of-the-wafer-py-tests"


def make(store: Any = None, clock: Clock | None = None, **options: Any) -> WaferAuth:
    options.setdefault("secret_keys", (TEST_SECRET,))
    config = WaferConfig(api_base="http://127.0.0.1:9", fake_wechat=True, **options)
    return WaferAuth(config, store=store or ChannelStore(), clock=clock or Clock())


def login(auth: WaferAuth, openid: str = "o-cache") -> tuple[Credentials, Credentials, str]:
    """A new session: its v2 and v1 credentials and its id."""
    result = auth.complete_login(Code2Session(openid, "sk-" + openid))
    return Credentials(result.skey), Credentials(result.skey, result.session_id), result.session_id


def channel_store(auth: WaferAuth) -> ChannelStore:
    assert isinstance(auth.store, ChannelStore)
    return auth.store


def test_a_hit_asks_nothing_of_the_store() -> None:
    auth = make()
    store = channel_store(auth)
    v2, v1, _ = login(auth)
    for creds in (v2, v1):
        auth.validate(creds)  # the fill
        reads = store.reads
        plan = auth.validation(creds)
        with pytest.raises(StopIteration) as done:
            next(plan)  # a hit yields no step at all
        assert done.value.value.openid == "o-cache"
        assert auth.validate(creds).generation == creds.generation
        assert store.reads == reads


def test_no_cache_without_a_channel_or_when_off() -> None:
    assert make(MemoryStore()).session_cache is None
    assert make(session_cache=0).session_cache is None
    assert make().session_cache is not None


def test_size_setting_is_checked() -> None:
    with pytest.raises(ValueError, match="WAFER_SESSION_CACHE"):
        make(session_cache=-1)
    with pytest.raises(ValueError, match="WAFER_SESSION_CACHE"):
        WaferConfig.from_env({**DEMO_ENV, "WAFER_SESSION_CACHE": "lots"})
    with pytest.raises(ValueError, match="WAFER_SESSION_CACHE"):
        WaferConfig.from_env({**DEMO_ENV, "WAFER_SESSION_CACHE": "-5"})
    assert WaferConfig.from_env({**DEMO_ENV, "WAFER_SESSION_CACHE": "0"}).session_cache == 0
    assert WaferConfig.from_env(DEMO_ENV).session_cache == 10_000


def test_own_revocations_are_seen_at_once() -> None:
    store = ChannelStore(deliver="later")  # the channel never delivers in this test
    auth = make(store)
    v2, v1, session_id = login(auth)
    auth.validate(v2)
    auth.validate(v1)
    assert auth.revoke(session_id)
    for creds in (v2, v1):
        with pytest.raises(InvalidSession):
            auth.validate(creds)
    v2, _, _ = login(auth)
    auth.validate(v2)
    auth.revoke_user("o-cache")
    with pytest.raises(InvalidSession):
        auth.validate(v2)


def test_another_process_is_seen_when_the_channel_delivers() -> None:
    store = ChannelStore(deliver="later")
    auth, other = make(store), make(store)
    v2, v1, session_id = login(auth)
    auth.validate(v2)
    auth.validate(v1)
    other.revoke(session_id)
    auth.validate(v2)  # not delivered yet: the channel's latency
    store.deliver()
    for creds in (v2, v1):
        with pytest.raises(InvalidSession):
            auth.validate(creds)


def test_profile_changes_elsewhere_are_seen() -> None:
    store = ChannelStore()
    auth, other = make(store), make(store)
    v2, _, _ = login(auth)
    assert auth.validate(v2).user.nickname == "微信用户"
    other.store.update_profile("o-cache", {"nickName": "Ada"}, now=1.0)
    assert auth.validate(v2).user.nickname == "Ada"


def test_channel_down_bypasses_and_up_empties() -> None:
    auth = make()
    store = channel_store(auth)
    v2, _, session_id = login(auth)
    auth.validate(v2)
    assert auth.session_cache is not None and len(auth.session_cache) == 1
    channel = store.channels[0]
    channel.down()
    assert len(auth.session_cache) == 0
    reads = store.reads
    auth.validate(v2)
    auth.validate(v2)
    assert store.reads == reads + 2  # every validation asks the store while down
    store.revoke_session(session_id)  # missed: the channel is down
    channel.up()
    with pytest.raises(InvalidSession):
        auth.validate(v2)


def test_an_invalidation_racing_a_fill_drops_it() -> None:
    store = ChannelStore()
    auth, other = make(store), make(store)
    v2, _, session_id = login(auth)
    plan = auth.validation(v2)
    step = next(plan)
    assert isinstance(step, StoreCall) and step.name == "find_login"
    answer = step.run()  # the store read, then a revocation before the answer is used
    other.revoke(session_id)
    with pytest.raises(StopIteration):
        plan.send(answer)  # accepted: the read came first, as without a cache
    with pytest.raises(InvalidSession):
        auth.validate(v2)  # but not cached: the store is asked and refuses


def test_a_fill_older_than_the_history_is_dropped() -> None:
    auth = make()
    cache = auth.session_cache
    assert cache is not None
    v2, _, _ = login(auth)
    token = cache.token()
    for n in range(HISTORY + 1):
        cache.invalidate(Invalidation("session", f"other-{n}"))
    found = auth.store.find_login(skey_hashes=auth.secrets.skey_hashes(v2.skey))
    assert found is not None and found[1] is not None
    assert not cache.fill(token, ("v2", found[0].skey_hash), found[0], found[1])
    assert cache.fill(cache.token(), ("v2", found[0].skey_hash), found[0], found[1])


def test_v1_skey_is_checked_on_every_hit() -> None:
    auth = make()
    _, v1, session_id = login(auth)
    auth.validate(v1)
    with pytest.raises(InvalidSession):
        auth.validate(Credentials("not-the-skey", session_id))
    assert auth.validate(v1).session.id == session_id


def test_expiry_and_cap_are_never_passed() -> None:
    clock = Clock()
    auth = make(clock=clock, session_ttl=100, session_max_age=250, touch_interval=60)
    store = channel_store(auth)
    v2, _, _ = login(auth)
    auth.validate(v2)
    clock.advance(99)  # touch due: written to the store, the entry renewed
    touches = store.touches
    assert auth.validate(v2).session.expires_at == clock.now + 100
    assert store.touches == touches + 1
    reads = store.reads
    clock.advance(30)
    auth.validate(v2)
    assert store.reads == reads  # a hit, no touch due
    clock.advance(100)  # past the sliding expiry
    with pytest.raises(InvalidSession, match="expired"):
        auth.validate(v2)


def test_the_cap_holds_on_a_hit() -> None:
    clock = Clock()
    auth = make(
        clock=clock, session_ttl=100, session_max_age=150, touch_interval=1000, superseded_ttl=0
    )
    v2, _, _ = login(auth)
    clock.advance(90)
    auth.validate(v2)
    clock.advance(61)  # 151 s after login: past the cap
    with pytest.raises(InvalidSession):
        auth.validate(v2)


def test_renewal_elsewhere_is_picked_up() -> None:
    clock = Clock()
    store = ChannelStore()
    auth, other = make(store, clock, session_ttl=100), make(store, clock, session_ttl=100)
    v2, _, _ = login(auth)
    auth.validate(v2)
    clock.advance(90)
    other.validate(v2)  # renews the session in the store
    clock.advance(20)  # past what this process cached, not past the store's expiry
    assert auth.validate(v2).session.expires_at == clock.now + 80  # the store's answer


def test_sessions_under_an_older_key_are_not_cached() -> None:
    store = ChannelStore()
    old = make(store, secret_keys=(OLD_SECRET,))
    v2, _, _ = login(old)
    auth = make(store, secret_keys=(TEST_SECRET, OLD_SECRET))
    auth.validate(v2)
    reads = store.reads
    auth.validate(v2)
    assert store.reads == reads + 1  # looked up in the store every time
    fresh, _, _ = login(auth, "o-new")
    auth.validate(fresh)
    reads = store.reads
    auth.validate(fresh)
    assert store.reads == reads


def test_entries_are_bounded() -> None:
    auth = make(session_cache=3)
    creds = [login(auth, f"o-{n}")[0] for n in range(5)]
    for c in creds:
        auth.validate(c)
    assert auth.session_cache is not None and len(auth.session_cache) == 3
    reads = channel_store(auth).reads
    auth.validate(creds[-1])
    assert channel_store(auth).reads == reads
    auth.validate(creds[0])  # evicted: asked again
    assert channel_store(auth).reads == reads + 1


def test_close_stops_the_channel() -> None:
    auth = make()
    store = channel_store(auth)
    auth.validate(login(auth)[0])
    channel = store.channels[0]
    auth.close()
    assert channel.closed
    assert auth.session_cache is not None and not auth.session_cache.live
    channel.up()  # a late report after close changes nothing
    assert not auth.session_cache.live


def test_channel_starts_on_first_use_only() -> None:
    auth = make()
    store = channel_store(auth)
    assert store.channels and store.channels[0].starts == 0
    v2, _, _ = login(auth)
    auth.validate(v2)
    auth.validate(v2)
    assert store.channels[0].starts == 1


def test_threads_racing_revocations_never_keep_a_revoked_session() -> None:
    store = ChannelStore()
    auth = make(store)
    sessions = [login(auth, f"o-t{n}") for n in range(20)]
    revoked: set[str] = set()
    stop = threading.Event()
    errors: list[str] = []

    def validate_all() -> None:
        while not stop.is_set():
            for v2, _, session_id in sessions:
                done = session_id in revoked  # revoked before this validation began
                try:
                    auth.validate(v2)
                except InvalidSession:
                    continue
                if done:
                    errors.append(session_id)

    threads = [threading.Thread(target=validate_all) for _ in range(4)]
    for thread in threads:
        thread.start()
    try:
        for _, _, session_id in sessions:
            store.revoke_session(session_id)  # another process's write, delivered
            revoked.add(session_id)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert errors == []  # a validation that began after a revocation never accepts it
    for v2, _, _ in sessions:
        with pytest.raises(InvalidSession):
            auth.validate(v2)


def test_run_of_a_hit_plan_is_the_validation() -> None:
    auth = make()
    v2, _, _ = login(auth)
    first = auth.validate(v2)
    assert run(auth.validation(v2)) == first


def test_unknown_kind_forgets_everything() -> None:
    auth = make()
    assert auth.session_cache is not None
    auth.validate(login(auth)[0])
    auth.session_cache.invalidate(Invalidation("later-kind", "x"))  # type: ignore[arg-type]
    assert len(auth.session_cache) == 0
    auth.validate(login(auth, "o-2")[0])
    auth.session_cache.invalidate(ALL)
    assert len(auth.session_cache) == 0


def test_for_store_does_not_start_anything() -> None:
    store = ChannelStore()
    cache = SessionCache.for_store(store, 10)
    assert cache is not None and not cache.live and store.channels[0].starts == 0
    assert SessionCache.for_store(store, 0) is None


def test_a_failed_poll_bypasses_the_cache() -> None:
    store = PolledStore()
    auth = make(store)
    v2, _, _ = login(auth)
    auth.validate(v2)
    channel = store.channels[0]
    assert isinstance(channel, PolledChannel) and channel.polls == 1
    reads = store.reads
    auth.validate(v2)
    assert store.reads == reads  # polled, then a hit
    channel.ok = False
    auth.validate(v2)
    auth.validate(v2)
    assert store.reads == reads + 2  # the store answers while the poll fails
    channel.ok = True
    auth.validate(v2)
    assert store.reads == reads + 2


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_opens_a_channel_of_its_own() -> None:
    store = ChannelStore()
    auth = make(store)
    v2, _, _ = login(auth)
    auth.validate(v2)
    parent = store.channels[0]
    assert auth.session_cache is not None and len(auth.session_cache) == 1
    pid = os.fork()
    if pid == 0:  # the child: nothing of the parent's cache or channel is used
        code = 1
        try:
            cache = auth.session_cache
            fresh = not cache.live and len(cache) == 0 and len(store.channels) == 2
            reads = store.reads
            auth.validate(v2)  # starts the child's own channel
            auth.validate(v2)
            own = store.channels[1].started and parent.starts == 1
            code = 0 if fresh and own and store.reads == reads + 1 else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
