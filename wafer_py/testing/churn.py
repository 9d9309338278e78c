"""The contract of :meth:`~wafer_py.stores.SessionStore.supersede_sessions`, and what the
login makes of it: superseded sessions end soon, sessions in use never do."""

from __future__ import annotations

import math

import pytest

from ..auth import Credentials, LoginResult, WaferAuth
from ..config import WaferConfig
from ..exceptions import InvalidSession
from ..stores.base import SessionStore
from ..wechat.client import Code2Session
from .common import SESSION_KEY, SHARED_KEY, Contract, make_session, run_threads

__all__ = ["SupersedeContract", "Clock", "churn_auth"]


class Clock:
    """A clock the test moves (seconds)."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def churn_auth(store: SessionStore, clock: Clock, **options: object) -> WaferAuth:
    """A WaferAuth on ``store`` with the suite's key and ``clock``; logins skip WeChat."""
    config = WaferConfig(
        appid="wxcontract0000000c",
        app_secret="contract",  # noqa: S106 - never sent
        secret_keys=(SHARED_KEY,),
        **options,  # type: ignore[arg-type]
    )
    return WaferAuth(config, store=store, clock=clock)


def _login(auth: WaferAuth, openid: str) -> LoginResult:
    return auth.complete_login(Code2Session(openid, SESSION_KEY))


class SupersedeContract(Contract):
    """Superseded sessions: the store operation, and logins on a clock that moves."""

    def test_supersede_lowers_later_expiries_only(self, store: SessionStore, openid: str) -> None:
        late, _ = make_session(openid, now=1000.0, ttl=4000.0)
        early, _ = make_session(openid, now=1000.0, ttl=500.0)
        untold, _ = make_session(openid, now=1000.0, ttl=9000.0)
        theirs, _ = make_session(openid + "x", now=1000.0, ttl=9000.0)
        for s in (late, early, untold, theirs):
            store.create_session(s)
        ids = [late.id, early.id, theirs.id, "nobody-" + late.id]
        assert store.supersede_sessions(openid, ids, expires_at=2000.0, now=1100.0) == 1
        assert store.supersede_sessions(openid, [], expires_at=2000.0, now=1100.0) == 0
        found = store.get_session(late.id)
        assert found is not None
        assert (found.expires_at, found.last_seen, found.created_at) == (2000.0, 1000.0, 1000.0)
        assert found == store.find_session(late.skey_hash)
        for kept in (early, untold, theirs):
            assert store.get_session(kept.id) == kept
        # Never lengthens: a later expiry asked for changes nothing.
        assert store.supersede_sessions(openid, [late.id], expires_at=3000.0, now=1100.0) == 0
        store.purge_expired(now=2000.0)  # the expiry index follows too
        assert store.get_session(late.id) is None and store.get_session(early.id) is None
        assert store.get_session(untold.id) == untold

    def test_a_touch_renews_a_superseded_session(self, store: SessionStore, openid: str) -> None:
        session, _ = make_session(openid, now=1000.0, ttl=4000.0)
        store.create_session(session)
        store.supersede_sessions(openid, [session.id], expires_at=1300.0, now=1000.0)
        store.touch_session(session.id, last_seen=1200.0, expires_at=8000.0)
        found = store.get_session(session.id)
        assert found is not None and found.expires_at == 8000.0
        store.purge_expired(now=1400.0)
        assert store.get_session(session.id) is not None

    def test_a_login_supersedes_older_sessions_never_itself(
        self, store: SessionStore, openid: str
    ) -> None:
        clock = Clock()
        auth = churn_auth(store, clock, superseded_ttl=300)
        first = _login(auth, openid)
        clock.now += 10
        second = _login(auth, openid)
        sessions = {s.id: s for s in store.list_sessions(openid)}
        assert sessions[first.session_id].expires_at == clock.now + 300
        assert sessions[second.session_id] == second.session  # untouched: full life
        clock.now += 299
        assert auth.validate(Credentials(first.skey)).session.id == first.session_id
        clock.now += 600  # the touch above renewed the first; now both are idle
        assert auth.validate(Credentials(first.skey)).session.id == first.session_id
        assert auth.validate(Credentials(second.skey)).session.id == second.session_id

    def test_unused_superseded_sessions_end(self, store: SessionStore, openid: str) -> None:
        clock = Clock()
        auth = churn_auth(store, clock, superseded_ttl=300)
        first = _login(auth, openid)
        clock.now += 10
        second = _login(auth, openid)
        clock.now += 300
        with pytest.raises(InvalidSession):
            auth.validate(Credentials(first.skey))
        assert auth.validate(Credentials(second.skey)).session.id == second.session_id

    def test_off_keeps_superseded_sessions(self, store: SessionStore, openid: str) -> None:
        clock = Clock()
        auth = churn_auth(store, clock, superseded_ttl=0)
        first = _login(auth, openid)
        clock.now += 10
        _login(auth, openid)
        assert store.get_session(first.session_id) == first.session

    def test_two_devices_one_logging_in_again_and_again(
        self, store: SessionStore, openid: str
    ) -> None:
        """Device A validates every minute; device B (a v2 client) logs in before each of
        its requests, every 20 s, for two hours: A is never logged out, and B's sessions
        stay few."""
        clock = Clock()
        auth = churn_auth(store, clock, superseded_ttl=150, touch_interval=60)
        device_a = _login(auth, openid)
        start = clock.now
        for step in range(1, 2 * 3600 // 20 + 1):
            clock.now = start + 20 * step
            device_b = _login(auth, openid)
            assert auth.validate(Credentials(device_b.skey)).session.id == device_b.session_id
            if step % 3 == 0:
                who = auth.validate(Credentials(device_a.skey, device_a.session_id))
                assert who.session.id == device_a.session_id
            live = [s for s in store.list_sessions(openid) if not s.is_expired(clock.now)]
            # A, B's newest, and B's logins of the last 150 s.
            assert len(live) <= 2 + math.ceil(150 / 20)

    def test_concurrent_logins_all_succeed(self, store: SessionStore, openid: str) -> None:
        clock = Clock()
        auth = churn_auth(store, clock, superseded_ttl=300)
        _login(auth, openid)
        clock.now += 60
        results: list[LoginResult] = []
        errors: list[BaseException] = []

        def login(i: int) -> None:
            try:
                results.append(_login(auth, openid))
            except BaseException as exc:
                errors.append(exc)

        run_threads(login, 8)
        assert not errors and len(results) == 8
        for result in results:
            assert auth.validate(Credentials(result.skey)).session.id == result.session_id

    def test_a_v2_day_keeps_a_heavy_user_bounded(self, store: SessionStore, openid: str) -> None:
        """A login before each of 288 requests, one every 5 minutes, for a day: the user's
        live sessions never exceed the newest plus those of the last ``superseded_ttl``,
        and once it has passed, one is left."""
        clock = Clock()
        auth = churn_auth(store, clock, superseded_ttl=600)
        start = clock.now
        for step in range(288):
            clock.now = start + 300 * step
            result = _login(auth, openid)
            auth.validate(Credentials(result.skey))
            live = [s for s in store.list_sessions(openid) if not s.is_expired(clock.now)]
            assert len(live) <= 1 + 600 // 300
        clock.now += 600
        store.purge_expired(now=clock.now)
        assert [s.id for s in store.list_sessions(openid)] == [result.session_id]
