"""A current session_key (issue #13, item 5).

WeChat hands out a new session_key on a new login (it may) and on ``resetusersessionkey``;
encrypted data from the client is then under the new key. What wafer_py does:

* a new login: its own session holds the new key; the user's older sessions keep theirs
  and answer ``stale_session_key`` for data under the new key, as before (no write per
  session on every login; the client logs in again);
* ``WaferAuth.reset_session_key(who)``: wafer_py asked for the new key itself, so every
  live session of the user is resealed under it.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.support.clock import Clock
from wafer_py import Credentials, WaferAuth
from wafer_py.auth import Authenticated
from wafer_py.config import DEMO_APPID
from wafer_py.exceptions import StaleSessionKey
from wafer_py.fakewechat import FakeWeChat


def log_in(auth: WaferAuth, fake: FakeWeChat, user: str, rotate: bool = True) -> Authenticated:
    result = auth.login(fake.login(DEMO_APPID, user, rotate=rotate)["code"])
    return auth.validate(Credentials(skey=result.skey))


def decrypts(auth: WaferAuth, who: Authenticated, fake: FakeWeChat, user: str) -> bool:
    """Whether data the client encrypts now (under the user's current key) opens."""
    info = fake.user_info(DEMO_APPID, user, nickName="Now")
    try:
        return auth.decrypt(who, info["encryptedData"], info["iv"])["nickName"] == "Now"
    except StaleSessionKey:
        return False


def test_a_new_login_leaves_older_sessions_stale(
    make_auth: Callable[..., WaferAuth], fake: FakeWeChat
) -> None:
    auth = make_auth()
    first = log_in(auth, fake, "kai")
    assert decrypts(auth, first, fake, "kai")
    second = log_in(auth, fake, "kai")  # WeChat rotates the key
    assert decrypts(auth, second, fake, "kai")
    assert not decrypts(auth, first, fake, "kai")  # answered stale_session_key, as before
    with pytest.raises(StaleSessionKey):
        auth.update_profile(first, **encrypted(fake, "kai"))


def encrypted(fake: FakeWeChat, user: str) -> dict[str, str]:
    info = fake.user_info(DEMO_APPID, user, nickName="Later")
    return {"encrypted_data": info["encryptedData"], "iv": info["iv"]}


def test_reset_session_key_reseals_every_live_session(
    make_auth: Callable[..., WaferAuth], fake: FakeWeChat
) -> None:
    clock = Clock()
    # superseded_ttl off: each login here must leave the user's older sessions their full
    # life (this test is about several live sessions, not about superseded ones).
    auth = make_auth(clock=clock, session_ttl=3600, superseded_ttl=0)
    doomed = log_in(auth, fake, "lin")
    clock.advance(3000)
    mine = log_in(auth, fake, "lin", rotate=False)  # the same key in both
    other = log_in(auth, fake, "lin", rotate=False)
    clock.advance(1000)  # the first session has expired, the others live
    before = fake.calls["/wxa/resetusersessionkey"]

    fresh = auth.reset_session_key(mine)
    assert fake.calls["/wxa/resetusersessionkey"] == before + 1
    assert fresh.session.sealed_session_key != mine.session.sealed_session_key
    assert decrypts(auth, fresh, fake, "lin")
    assert auth.check_session_key(fresh)
    # The user's other live session got the new key too (read back from the store).
    stored = auth.store.get_session(other.session.id)
    assert stored is not None
    assert decrypts(auth, Authenticated(other.user, stored), fake, "lin")
    # The expired one was left alone (a store write would be wasted on it).
    assert auth.store.get_session(doomed.session.id) == doomed.session
    # The old key is dead at WeChat: the session as it was does not decrypt.
    assert not decrypts(auth, mine, fake, "lin")
    # Nothing but the sealed key changed.
    after = auth.store.get_session(mine.session.id)
    assert after is not None
    assert (after.skey_hash, after.expires_at) == (mine.session.skey_hash, mine.session.expires_at)


def test_reset_with_a_stale_key_is_refused(
    make_auth: Callable[..., WaferAuth], fake: FakeWeChat
) -> None:
    auth = make_auth()
    old = log_in(auth, fake, "mo")
    log_in(auth, fake, "mo")  # a newer key: old's is stale at WeChat
    before = auth.store.get_session(old.session.id)  # (its life shortened: superseded)
    with pytest.raises(StaleSessionKey):
        auth.reset_session_key(old)
    assert before is not None and auth.store.get_session(old.session.id) == before
