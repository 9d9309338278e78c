"""While WeChat keeps refusing a token, callers do not each refresh it, and forced
refreshes (20 a day) are never burnt in a loop."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.clock import Clock
from tests.test_tokens import StubWeChat
from wafer_py.config import DEMO_APP_SECRET, DEMO_APPID
from wafer_py.exceptions import InvalidAccessToken
from wafer_py.fakewechat import FakeWeChat
from wafer_py.fakewechat.tokens import STABLE_TOKEN_PATH
from wafer_py.stores import MemoryStore
from wafer_py.wechat import WeChatClient
from wafer_py.wechat.api import CHECK_SESSION, WeChatAPI
from wafer_py.wechat.tokens import FORCE_BACKOFF, AccessToken, AccessTokenCache


@pytest.fixture
def client(fake_server: Any) -> Iterator[WeChatClient]:
    made = WeChatClient(DEMO_APPID, DEMO_APP_SECRET, api_base=fake_server.url, backoff=0.01)
    yield made
    made.close()


def test_a_token_wechat_keeps_refusing_does_not_burn_forced_refreshes(
    fake: FakeWeChat, client: WeChatClient
) -> None:
    """The fake refuses every token on checksession for a day and stable_token hands the
    current one back: one call every 31 s (past WeChat's 30 s between forces). Each call
    is refused; forced refreshes back off, and the day's 20 are never reached."""
    cache = AccessTokenCache(MemoryStore(), client, clock=fake.state.now)
    api = WeChatAPI(client, cache)
    openid = fake.login(user="alice")["openid"]
    session_key = fake.session_key_of(DEMO_APPID, openid)
    fake.inject(CHECK_SESSION, 40001, times=10_000)
    authority = fake.server_api.tokens
    for _ in range(60):  # half an hour
        with pytest.raises(InvalidAccessToken):
            api.check_session_key(openid, session_key)
        fake.advance(31)
    forces = authority.used_today(DEMO_APPID, "force_refresh")
    # Due after 60, 120, 240, 480 and 960 s: the first and four more in 1860 s.
    assert 1 <= forces <= 5
    # Between forces nobody asks stable_token: the first get, then per force the look
    # that finds the refused token, the force, and the look that finds its token
    # refused (which starts the wait).
    assert authority.used_today(DEMO_APPID, STABLE_TOKEN_PATH) <= 1 + 3 * forces


def test_a_caller_refused_before_the_last_fetch_does_not_fetch_again() -> None:
    """Coalesced on the fetch time: a refusal of a call sent before the token was last
    fetched is answered with that fetch, even once the back-off has run out."""
    clock = Clock()
    wechat = StubWeChat()
    cache = AccessTokenCache(MemoryStore(), wechat, clock=clock)
    assert cache.get() == "t1"
    # The first refusal: stable_token hands t1 back, a forced refresh gives f1.
    wechat.script = [AccessToken("t1", 3000), AccessToken("f1", 7200)]
    sent = clock()
    assert cache.refresh(rejected="t1", since=sent) == "f1"
    # f1 is refused too, by two calls sent at the same moment.
    clock.advance(1)
    sent = clock()
    wechat.script = [AccessToken("f1", 7000)]
    clock.advance(1)
    assert cache.refresh(rejected="f1", since=sent) == "f1"  # the next force is not due
    calls = len(wechat.calls)
    clock.advance(FORCE_BACKOFF + 5)  # the back-off is over ...
    assert cache.refresh(rejected="f1", since=sent) == "f1"  # ... but WeChat was asked
    assert len(wechat.calls) == calls
    # A call sent now, refused, is a new refusal: the forced refresh is due.
    wechat.script = [AccessToken("f1", 6900), AccessToken("f2", 7200)]
    assert cache.refresh(rejected="f1", since=clock()) == "f2"
    assert wechat.calls[-2:] == [(True, False), (True, True)]


def test_forced_refreshes_back_off_and_the_streak_is_shared() -> None:
    """The streak lives in the store: a second cache (another process) backs off too."""
    clock = Clock()
    store = MemoryStore()
    wechat = StubWeChat()
    first = AccessTokenCache(store, wechat, clock=clock)
    second = AccessTokenCache(store, wechat, clock=clock)
    first.get()
    forced_at = []
    token = "t1"
    for _ in range(40):
        wechat.script = [AccessToken(token, 3000)]  # stable_token hands back the refused one
        cache = first if len(wechat.calls) % 2 else second
        before = len(wechat.calls)
        token = cache.refresh(rejected=token)
        if wechat.calls[before:] and wechat.calls[-1] == (True, True):
            forced_at.append(clock())
        wechat.script = []
        clock.advance(30)
    gaps = [b - a for a, b in itertools.pairwise(forced_at)]
    assert len(forced_at) >= 3
    assert all(gap >= FORCE_BACKOFF * 2**i for i, gap in enumerate(gaps))
