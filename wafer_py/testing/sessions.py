"""The contract of :class:`~wafer_py.stores.SessionStore`: users and sessions."""

from __future__ import annotations

from dataclasses import replace

import pytest

from ..auth import Credentials
from ..crypto import new_session_id
from ..exceptions import InvalidSession
from ..models import User
from ..stores.base import SessionStore
from ..wechat.client import Code2Session
from .churn import SupersedeContract
from .common import BOX, SESSION_KEY, contract_auth, make_session, run_threads

__all__ = ["SessionStoreContract"]


class SessionStoreContract(SupersedeContract):
    """The behaviour every :class:`~wafer_py.stores.SessionStore` must have (superseded
    sessions: :class:`~wafer_py.testing.churn.SupersedeContract`)."""

    def make_store(self) -> SessionStore:
        """A store to test."""
        raise NotImplementedError

    # -- users ------------------------------------------------------------------
    def test_ensure_user_creates_once(self, store: SessionStore, openid: str) -> None:
        first = store.ensure_user(openid, unionid=None, profile={"nickName": "A"}, now=10.0)
        assert isinstance(first, User)
        assert first.openid == openid and first.profile == {"nickName": "A"}
        again = store.ensure_user(openid, unionid=None, profile={"nickName": "B"}, now=20.0)
        assert again.profile == {"nickName": "A"}
        assert again.created_at == 10.0

    def test_ensure_user_fills_missing_unionid(self, store: SessionStore, openid: str) -> None:
        store.ensure_user(openid, unionid=None, profile={}, now=1.0)
        user = store.ensure_user(openid, unionid="u1", profile={}, now=2.0)
        assert user.unionid == "u1"
        user = store.ensure_user(openid, unionid="u2", profile={}, now=3.0)
        assert user.unionid == "u1"

    def test_update_profile_merges(self, store: SessionStore, openid: str) -> None:
        assert store.update_profile(openid, {"nickName": "x"}, now=1.0) is None
        store.ensure_user(openid, unionid=None, profile={"nickName": "A", "gender": 0}, now=1.0)
        user = store.update_profile(openid, {"nickName": "Bé", "city": "广州"}, now=5.0)
        assert user is not None
        assert user.profile == {"nickName": "Bé", "gender": 0, "city": "广州"}
        assert user.updated_at == 5.0
        stored = store.get_user(openid)
        assert stored is not None and stored.profile == user.profile

    def test_find_users_by_unionid(self, store: SessionStore, openid: str) -> None:
        """The users of one person (one per mini-program), by the unionid they share."""
        unionid = "u" + openid
        assert store.find_users_by_unionid(unionid) == []
        store.ensure_user(openid + "b", unionid=unionid, profile={"nickName": "B"}, now=20.0)
        store.ensure_user(openid, unionid=None, profile={"nickName": "A"}, now=10.0)
        store.ensure_user(openid + "c", unionid=None, profile={}, now=5.0)  # not linked
        store.ensure_user(openid + "d", unionid="v" + openid, profile={}, now=5.0)
        assert [u.openid for u in store.find_users_by_unionid(unionid)] == [openid + "b"]
        # A unionid learnt later (a later login, or encrypted data) joins the index.
        store.update_profile(openid, {"city": "深圳"}, now=30.0, unionid=unionid)
        found = store.find_users_by_unionid(unionid)
        assert [u.openid for u in found] == [openid, openid + "b"]  # oldest first
        assert found[0].profile == {"nickName": "A", "city": "深圳"}
        store.ensure_user(openid + "c", unionid=unionid, profile={}, now=40.0)
        assert [u.openid for u in store.find_users_by_unionid(unionid)] == [
            openid + "c",
            openid,
            openid + "b",
        ]
        assert store.find_users_by_unionid("v" + openid)[0].openid == openid + "d"

    def test_auth_finds_users_by_openid_and_unionid(self, store: SessionStore, openid: str) -> None:
        unionid = "u" + openid
        first = contract_auth(store, "wxcontract0000000a")
        second = contract_auth(store, "wxcontract0000000b")
        mine = first.complete_login(Code2Session(openid, SESSION_KEY, unionid)).user
        theirs = second.complete_login(Code2Session(openid + "b", SESSION_KEY, unionid)).user
        assert first.find_user(openid=openid) == mine
        assert first.find_user(openid=openid, unionid=unionid) == mine
        assert first.find_user(openid=openid, unionid="u-other") is None
        assert first.find_user(openid="o-nobody" + openid) is None
        assert first.find_user(unionid="u-nobody" + openid) is None
        assert first.find_users(unionid=unionid) == second.find_users(unionid=unionid)
        assert {u.openid for u in first.find_users(unionid=unionid)} == {
            mine.openid,
            theirs.openid,
        }
        assert first.find_user(unionid=unionid) in (mine, theirs)
        with pytest.raises(ValueError):
            first.find_user()

    def test_get_unknown_user(self, store: SessionStore) -> None:
        assert store.get_user("o-nobody-" + new_session_id()) is None

    def test_update_phone(self, store: SessionStore, openid: str) -> None:
        assert store.update_phone(openid, "+8613800138000", now=1.0) is None
        created = store.ensure_user(openid, unionid=None, profile={"nickName": "A"}, now=1.0)
        assert created.phone is None
        user = store.update_phone(openid, "+8613800138000", now=5.0)
        assert user is not None
        assert (user.phone, user.updated_at, user.profile) == (
            "+8613800138000",
            5.0,
            {"nickName": "A"},
        )
        # The phone survives profile updates and repeated logins, and can be cleared.
        store.update_profile(openid, {"nickName": "B"}, now=6.0)
        again = store.ensure_user(openid, unionid=None, profile={}, now=7.0)
        assert again.phone == "+8613800138000"
        cleared = store.update_phone(openid, None, now=8.0)
        assert cleared is not None and cleared.phone is None
        stored = store.get_user(openid)
        assert stored is not None and stored.phone is None and stored.nickname == "B"

    def test_concurrent_first_logins_agree(self, store: SessionStore, openid: str) -> None:
        users: list[User] = []
        errors: list[BaseException] = []

        def login(i: int) -> None:
            try:
                users.append(
                    store.ensure_user(
                        openid, unionid=None, profile={"nickName": str(i)}, now=float(i)
                    )
                )
            except BaseException as exc:
                errors.append(exc)

        run_threads(login, 16)
        assert not errors
        assert len(users) == 16
        assert len({(u.openid, u.created_at, str(u.profile)) for u in users}) == 1

    # -- sessions ---------------------------------------------------------------
    def test_session_round_trip(self, store: SessionStore, openid: str) -> None:
        session, _ = make_session(openid)
        store.create_session(session)
        assert store.get_session(session.id) == session
        assert store.find_session(session.skey_hash) == session
        assert store.get_session("nope" + new_session_id()) is None
        assert store.find_session("0" * 64) is None

    def test_many_sessions_per_user(self, store: SessionStore, openid: str) -> None:
        sessions = [make_session(openid, now=100.0 + i)[0] for i in range(3)]
        for s in sessions:
            store.create_session(s)
        assert [s.id for s in store.list_sessions(openid)] == [s.id for s in sessions]

    def test_list_orders_equal_creation_times_by_id(self, store: SessionStore, openid: str) -> None:
        sessions = [make_session(openid, now=100.0)[0] for _ in range(6)]
        for s in sessions:
            store.create_session(s)
        assert [s.id for s in store.list_sessions(openid)] == sorted(s.id for s in sessions)

    def test_session_cap_keeps_the_newest_logins_under_a_frozen_clock(
        self, store: SessionStore, openid: str
    ) -> None:
        """Every login has the same timestamp: the cap still ends the oldest logins and
        never the one it just made."""
        auth = contract_auth(store, "wxcontract0000000a", max_sessions_per_user=3)
        logins = []
        for _ in range(10):
            result = auth.complete_login(Code2Session(openid, SESSION_KEY))
            logins.append(result)
            assert auth.validate(Credentials(result.skey)).session.id == result.session_id
            kept = [s.id for s in store.list_sessions(openid)]
            assert kept == [r.session_id for r in logins[-3:]]
        for old in logins[:-3]:
            with pytest.raises(InvalidSession):
                auth.validate(Credentials(old.skey))
        with pytest.raises(ValueError):
            contract_auth(store, "wxcontract0000000a", max_sessions_per_user=0)
        single = contract_auth(store, "wxcontract0000000a", max_sessions_per_user=1)
        last = single.complete_login(Code2Session(openid, SESSION_KEY))
        assert [s.id for s in store.list_sessions(openid)] == [last.session_id]

    def test_sessions_belong_to_the_appid_that_made_them(
        self, store: SessionStore, openid: str
    ) -> None:
        """Two mini-programs on one store with one secret key: neither accepts the
        other's skey, whichever way the client sends it (v2: skey; v1: id and skey)."""
        first = contract_auth(store, "wxcontract0000000a")
        second = contract_auth(store, "wxcontract0000000b")
        mine = first.complete_login(Code2Session(openid, SESSION_KEY))
        theirs = second.complete_login(Code2Session(openid + "b", SESSION_KEY))
        for auth, own, other in ((first, mine, theirs), (second, theirs, mine)):
            for skey, session_id in ((own.skey, None), (own.skey, own.session_id)):
                assert auth.validate(Credentials(skey, session_id)).session.id == own.session_id
            for creds in (Credentials(other.skey), Credentials(other.skey, other.session_id)):
                with pytest.raises(InvalidSession):
                    auth.validate(creds)

    def test_reseal_session(self, store: SessionStore, openid: str) -> None:
        """A new sealed session_key replaces the old one; nothing else changes."""
        session, _ = make_session(openid, now=100.0)
        other, _ = make_session(openid, now=101.0)
        store.create_session(session)
        store.create_session(other)
        sealed = BOX.seal("bmV3c2Vzc2lvbmtleTEyMw==", context=openid)
        assert store.reseal_session(session.id, sealed, openid=openid) is True
        found = store.get_session(session.id)
        assert found is not None and found.sealed_session_key == sealed
        assert found == replace(session, sealed_session_key=sealed)
        assert store.get_session(other.id) == other
        assert store.reseal_session("nobody-" + session.id, sealed, openid=openid) is False
        assert store.reseal_session(session.id, "x", openid=openid + "-other") is False
        assert store.get_session(session.id) == found
        # The session is still found by its skey hash, with its new key.
        login = store.find_login(skey_hashes=[session.skey_hash])
        assert login is not None and login[0].sealed_session_key == sealed

    def test_touch_moves_expiry(self, store: SessionStore, openid: str) -> None:
        session, _ = make_session(openid, now=100.0)
        store.create_session(session)
        store.touch_session(session.id, last_seen=200.0, expires_at=5000.0)
        found = store.get_session(session.id)
        assert found is not None
        assert (found.last_seen, found.expires_at) == (200.0, 5000.0)
        assert found.created_at == 100.0

    def test_revoke_session(self, store: SessionStore, openid: str) -> None:
        a, _ = make_session(openid)
        b, _ = make_session(openid)
        store.create_session(a)
        store.create_session(b)
        assert store.revoke_session(a.id) is True
        assert store.revoke_session(a.id) is False
        assert store.get_session(a.id) is None
        assert store.find_session(a.skey_hash) is None
        assert store.get_session(b.id) == b

    def test_revoke_user(self, store: SessionStore, openid: str) -> None:
        other = openid + "x"
        mine = [make_session(openid)[0] for _ in range(3)]
        theirs, _ = make_session(other)
        for s in [*mine, theirs]:
            store.create_session(s)
        assert store.revoke_user(openid) == 3
        assert store.list_sessions(openid) == []
        assert all(store.get_session(s.id) is None for s in mine)
        assert store.get_session(theirs.id) == theirs
        assert store.revoke_user(openid) == 0

    def test_purge_expired(self, store: SessionStore, openid: str) -> None:
        old, _ = make_session(openid, now=0.0, ttl=10.0)
        live, _ = make_session(openid, now=0.0, ttl=10_000_000_000.0)
        store.create_session(old)
        store.create_session(live)
        assert store.purge_expired(now=100.0) >= 1
        assert store.get_session(old.id) is None
        assert store.get_session(live.id) == live

    def test_purge_in_batches(self, store: SessionStore, openid: str) -> None:
        old = [make_session(openid, now=0.0, ttl=10.0)[0] for _ in range(5)]
        live, _ = make_session(openid, now=0.0, ttl=10_000_000_000.0)
        for s in [*old, live]:
            store.create_session(s)
        removed = 0
        while True:
            batch = store.purge_expired(now=100.0, limit=2)
            assert batch <= 2
            removed += batch
            if batch < 2:
                break
        assert all(store.get_session(s.id) is None for s in old)
        assert store.get_session(live.id) == live
        assert removed >= 5  # a store shared with other tests may purge theirs too

    def test_stats(self, store: SessionStore, openid: str) -> None:
        before = store.stats(now=100.0)
        store.ensure_user(openid, unionid=None, profile={}, now=1.0)
        for ttl in (10.0, 10.0, 10_000_000_000.0):
            store.create_session(make_session(openid, now=0.0, ttl=ttl)[0])
        after = store.stats(now=100.0)
        assert after.users - before.users == 1
        assert after.active_sessions - before.active_sessions == 1
        assert after.expired_sessions - before.expired_sessions == 2
        assert after.sessions == after.active_sessions + after.expired_sessions

    def test_find_login(self, store: SessionStore, openid: str) -> None:
        user = store.ensure_user(openid, unionid="u", profile={"nickName": "A"}, now=1.0)
        session, _ = make_session(openid)
        store.create_session(session)
        assert store.find_login(session_id=session.id) == (session, user)
        assert store.find_login(skey_hashes=["0" * 64, session.skey_hash]) == (session, user)
        assert store.find_login(session_id="nope" + new_session_id()) is None
        assert store.find_login(skey_hashes=["0" * 64]) is None
        assert store.find_login() is None
        orphan, _ = make_session(openid + "-gone")
        store.create_session(orphan)
        assert store.find_login(session_id=orphan.id) == (orphan, None)

    def test_async_lookup(self, store: SessionStore, openid: str) -> None:
        import asyncio

        user = store.ensure_user(openid, unionid=None, profile={}, now=1.0)
        session, _ = make_session(openid, now=100.0)
        store.create_session(session)

        async def check() -> None:
            assert await store.afind_login(skey_hashes=[session.skey_hash]) == (session, user)
            assert await store.afind_login(session_id=session.id) == (session, user)
            assert await store.afind_login(skey_hashes=["0" * 64]) is None
            await store.atouch_session(session.id, last_seen=200.0, expires_at=9000.0)

        asyncio.run(check())
        found = store.get_session(session.id)
        assert found is not None and (found.last_seen, found.expires_at) == (200.0, 9000.0)

    def test_secrets_are_stored_as_given(self, store: SessionStore, openid: str) -> None:
        session, skey = make_session(openid)
        store.create_session(session)
        found = store.get_session(session.id)
        assert found is not None
        assert skey not in (found.skey_hash, found.sealed_session_key)
        assert found.sealed_session_key == session.sealed_session_key
