"""The web OAuth client (:mod:`wafer_py.web.oauth`) and signed states, against the fake WeChat
over real HTTP."""

from __future__ import annotations

import logging
import re
import socket
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from tests.support.clock import Clock
from tests.support.constants import (
    CALLBACK,
    DEMO_APP,
    DEMO_ENV,
    OTHER_APPID,
    OTHER_SECRET,
    TWO_APPS,
)
from wafer_py.config import DEMO_APP_SECRET, DEMO_APPID, WaferConfig
from wafer_py.exceptions import (
    AccessTokenExpired,
    CodeAlreadyUsed,
    CodeExpired,
    ConsentDenied,
    InvalidAccessToken,
    InvalidAppId,
    InvalidAppSecret,
    InvalidCode,
    InvalidOpenId,
    InvalidRefreshToken,
    InvalidState,
    RefreshTokenExpired,
    ScopeUnauthorized,
    StateExpired,
    StateReplayed,
    WeChatBusy,
    WeChatUnavailable,
)
from wafer_py.fakewechat import FakeWeChat, FakeWeChatServer
from wafer_py.protocol import error_response
from wafer_py.stores import MemoryStore, SQLiteStore
from wafer_py.web.oauth import (
    OAuthToken,
    OAuthUserInfo,
    WeChatOAuth,
    is_valid_state,
    parse_callback,
)
from wafer_py.web.state import OAuthStateSigner, b62decode, b62encode

pytestmark = pytest.mark.fake_apps(TWO_APPS)


@pytest.fixture
def oauth(server: FakeWeChatServer) -> Iterator[WeChatOAuth]:
    client = WeChatOAuth(DEMO_APPID, DEMO_APP_SECRET, api_base=server.url, open_base=server.url)
    yield client
    client.close()


def browse(url: str) -> str:
    """What a browser does with a snsapi_base authorize URL: the Location it lands on."""
    response = requests.get(url, allow_redirects=False, timeout=10)
    assert response.status_code == 302, response.text
    return response.headers["Location"]


# ------------------------------------------------------------------- authorize_url


def test_authorize_url_shape(oauth: WeChatOAuth, server: FakeWeChatServer) -> None:
    start = oauth.authorize_url(CALLBACK, state="abc123", scope="snsapi_userinfo")
    assert start.state == "abc123"
    assert start.url.startswith(f"{server.url}/connect/oauth2/authorize?appid={DEMO_APPID}&")
    assert start.url.endswith("#wechat_redirect")
    query = parse_qs(urlsplit(start.url).query)
    assert query == {
        "appid": [DEMO_APPID],
        "redirect_uri": [CALLBACK],
        "response_type": ["code"],
        "scope": ["snsapi_userinfo"],
        "state": ["abc123"],
    }
    assert (
        "redirect_uri=https%3A%2F%2Fexample.com%2Fwechat%2Foauth%2Fcallback%3Fnext%3D" in start.url
    )


def test_authorize_url_defaults_to_silent_scope_and_a_fresh_state(oauth: WeChatOAuth) -> None:
    first, second = oauth.authorize_url(CALLBACK), oauth.authorize_url(CALLBACK)
    assert "scope=snsapi_base" in first.url
    assert is_valid_state(first.state) and len(first.state) == 32
    assert first.state != second.state


@pytest.mark.parametrize(
    ("redirect_uri", "state", "scope"),
    [
        ("/relative", None, "snsapi_base"),
        ("ftp://example.com/x", None, "snsapi_base"),
        (CALLBACK, "has-dash", "snsapi_base"),
        (CALLBACK, "a" * 129, "snsapi_base"),
        (CALLBACK, "", "snsapi_base"),
        (CALLBACK, None, "snsapi_login"),
    ],
)
def test_authorize_url_refuses_what_wechat_would(
    oauth: WeChatOAuth, redirect_uri: str, state: str | None, scope: str
) -> None:
    with pytest.raises(ValueError):
        oauth.authorize_url(redirect_uri, state=state, scope=scope)  # type: ignore[arg-type]


# -------------------------------------------------------------------- fetch_token


def test_fetch_token_from_the_whole_callback_url(oauth: WeChatOAuth, fake: FakeWeChat) -> None:
    start = oauth.authorize_url(CALLBACK)
    callback = browse(start.url)
    token = oauth.fetch_token(callback, expected_state=start.state)
    assert isinstance(token, OAuthToken)
    assert token.openid == fake.login(DEMO_APPID, "alice", rotate=False)["openid"]
    assert token.scope == "snsapi_base" and token.expires_in == 7200
    assert token.unionid is None and not token.is_snapshotuser
    assert token.has_scope("snsapi_base") and not token.has_scope("snsapi_userinfo")


def test_fetch_token_from_a_path_and_query(oauth: WeChatOAuth) -> None:
    callback = browse(oauth.authorize_url(CALLBACK).url)
    parts = urlsplit(callback)
    assert oauth.fetch_token(f"{parts.path}?{parts.query}").openid


def test_fetch_token_from_the_code_alone(oauth: WeChatOAuth, fake: FakeWeChat) -> None:
    token = oauth.fetch_token(fake.oauth.authorize(scope="snsapi_userinfo"))
    assert token.scope == "snsapi_userinfo" and token.unionid
    assert token.has_scope("snsapi_base") and token.has_scope("snsapi_userinfo")


def test_fetch_token_checks_the_expected_state(oauth: WeChatOAuth, fake: FakeWeChat) -> None:
    start = oauth.authorize_url(CALLBACK)
    callback = browse(start.url)
    with pytest.raises(InvalidState):
        oauth.fetch_token(callback, expected_state="somethingelse")
    with pytest.raises(InvalidState):  # a bare code has no state to check
        oauth.fetch_token(fake.oauth.authorize(), expected_state=start.state)
    assert fake.calls["/sns/oauth2/access_token"] == 0  # refused before asking WeChat
    assert oauth.fetch_token(callback, expected_state=start.state).openid


def test_fetch_token_after_a_denial(oauth: WeChatOAuth) -> None:
    with pytest.raises(ConsentDenied):
        oauth.fetch_token(f"{CALLBACK}&state=abc")
    with pytest.raises(ConsentDenied):
        oauth.fetch_token("")


def test_parse_callback() -> None:
    found = parse_callback("https://x.test/cb?next=%2Fa&code=C0DE&state=S1")
    assert (found.code, found.state) == ("C0DE", "S1")
    assert "C0DE" not in repr(found)
    assert parse_callback("/cb?state=S1").code is None
    assert parse_callback("  C0DE ").code == "C0DE"


@pytest.mark.parametrize(
    ("make_code", "error"),
    [
        (lambda fake: "0" * 32, InvalidCode),
        (lambda fake: fake.oauth.authorize(OTHER_APPID), InvalidCode),
    ],
)
def test_fetch_token_invalid_codes(
    oauth: WeChatOAuth, fake: FakeWeChat, make_code: object, error: type[Exception]
) -> None:
    with pytest.raises(error) as caught:
        oauth.fetch_token(make_code(fake))  # type: ignore[operator]
    assert caught.value.errcode == 40029  # type: ignore[attr-defined]


def test_fetch_token_code_used_and_expired(oauth: WeChatOAuth, fake: FakeWeChat) -> None:
    code = fake.oauth.authorize()
    oauth.fetch_token(code)
    with pytest.raises(CodeAlreadyUsed) as used:
        oauth.fetch_token(code)
    assert used.value.errcode == 40163 and error_response(used.value).status == 400
    stale = fake.oauth.authorize()
    fake.advance(301)
    with pytest.raises(CodeExpired) as expired:
        oauth.fetch_token(stale)
    assert expired.value.errcode == 42003


def test_wrong_app_credentials(server: FakeWeChatServer, fake: FakeWeChat) -> None:
    unknown = WeChatOAuth("wxdoesnotexist000", DEMO_APP_SECRET, api_base=server.url)
    with pytest.raises(InvalidAppId) as bad_appid:
        unknown.fetch_token(fake.oauth.authorize())
    assert bad_appid.value.errcode == 40013
    with pytest.raises(InvalidAppId):
        unknown.refresh_token("whatever")
    wrong = WeChatOAuth(DEMO_APPID, "not-the-secret", api_base=server.url)
    with pytest.raises(InvalidAppSecret) as bad_secret:
        wrong.fetch_token(fake.oauth.authorize())
    assert bad_secret.value.errcode == 40125
    assert "not-the-secret" not in repr(wrong) and "not-the-secret" not in str(bad_secret.value)


def test_busy_and_unreachable(oauth: WeChatOAuth, fake: FakeWeChat) -> None:
    fake.inject("/sns/oauth2/access_token", -1)
    with pytest.raises(WeChatBusy):
        oauth.fetch_token(fake.oauth.authorize())
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    closed = WeChatOAuth(
        DEMO_APPID, DEMO_APP_SECRET, api_base=f"http://127.0.0.1:{port}", timeout=2
    )
    with pytest.raises(WeChatUnavailable):
        closed.fetch_token("C0DE")


# ------------------------------------------------------------------ refresh_token


def test_refresh_token(oauth: WeChatOAuth, fake: FakeWeChat) -> None:
    first = oauth.fetch_token(fake.oauth.authorize(scope="snsapi_userinfo"))
    fake.advance(7201)
    assert not oauth.check_access_token(first.access_token, first.openid)
    again = oauth.refresh_token(first.refresh_token)
    assert again.access_token != first.access_token
    assert again.refresh_token == first.refresh_token
    assert (again.openid, again.scope) == (first.openid, "snsapi_userinfo")
    assert oauth.check_access_token(again.access_token, again.openid)


def test_refresh_token_errors(
    oauth: WeChatOAuth, fake: FakeWeChat, server: FakeWeChatServer
) -> None:
    with pytest.raises(InvalidRefreshToken) as invalid:
        oauth.refresh_token("not-a-refresh-token")
    assert invalid.value.errcode == 40030
    token = oauth.fetch_token(fake.oauth.authorize())
    other = WeChatOAuth(OTHER_APPID, OTHER_SECRET, api_base=server.url)
    with pytest.raises(InvalidRefreshToken):
        other.refresh_token(token.refresh_token)
    fake.advance(30 * 24 * 3600 + 1)
    with pytest.raises(RefreshTokenExpired) as expired:
        oauth.refresh_token(token.refresh_token)
    assert expired.value.errcode == 42002
    assert isinstance(expired.value, InvalidRefreshToken)


# -------------------------------------------------------------------- get_userinfo


@pytest.mark.parametrize(
    ("lang", "country"), [("zh_CN", "中国"), ("zh_TW", "中國"), ("en", "China")]
)
def test_get_userinfo(oauth: WeChatOAuth, fake: FakeWeChat, lang: str, country: str) -> None:
    fake.oauth.set_profile("alice", country="China", sex=1)
    token = oauth.fetch_token(fake.oauth.authorize(scope="snsapi_userinfo"))
    info = oauth.get_userinfo(token.access_token, token.openid, lang)  # type: ignore[arg-type]
    assert isinstance(info, OAuthUserInfo)
    assert info.openid == token.openid and info.unionid == token.unionid
    assert info.nickname == "Alice" and info.sex == 1 and info.country == country
    assert info.headimgurl.startswith("https://") and info.privilege == ()


def test_get_userinfo_refuses_an_unknown_lang(oauth: WeChatOAuth) -> None:
    with pytest.raises(ValueError):
        oauth.get_userinfo("token", "openid", "fr")  # type: ignore[arg-type]


def test_get_userinfo_errors(oauth: WeChatOAuth, fake: FakeWeChat) -> None:
    base = oauth.fetch_token(fake.oauth.authorize(scope="snsapi_base"))
    with pytest.raises(ScopeUnauthorized) as scope:
        oauth.get_userinfo(base.access_token, base.openid)
    assert scope.value.errcode == 48001
    full = oauth.fetch_token(fake.oauth.authorize(scope="snsapi_userinfo"))
    bob = oauth.fetch_token(fake.oauth.authorize(user="bob"))
    with pytest.raises(InvalidOpenId) as openid:
        oauth.get_userinfo(full.access_token, bob.openid)
    assert openid.value.errcode == 40003
    with pytest.raises(InvalidAccessToken) as malformed:
        oauth.get_userinfo("bad token!", full.openid)
    assert malformed.value.errcode == 40014
    with pytest.raises(InvalidAccessToken) as unknown:
        oauth.get_userinfo("A" * 88, full.openid)
    assert unknown.value.errcode == 40001
    fake.advance(7201)
    with pytest.raises(AccessTokenExpired) as expired:
        oauth.get_userinfo(full.access_token, full.openid)
    assert expired.value.errcode == 42001


# --------------------------------------------------------------- check_access_token


def test_check_access_token(oauth: WeChatOAuth, fake: FakeWeChat) -> None:
    token = oauth.fetch_token(fake.oauth.authorize())
    bob = oauth.fetch_token(fake.oauth.authorize(user="bob"))
    assert oauth.check_access_token(token.access_token, token.openid) is True
    assert oauth.check_access_token(token.access_token, bob.openid) is False  # 40003
    assert oauth.check_access_token("bad token!", token.openid) is False  # 40014
    assert oauth.check_access_token("A" * 88, token.openid) is False  # 40001
    fake.advance(7201)
    assert oauth.check_access_token(token.access_token, token.openid) is False  # 42001
    assert fake.calls["/sns/auth"] == 5


def test_check_access_token_raises_when_it_cannot_tell(
    oauth: WeChatOAuth, fake: FakeWeChat
) -> None:
    fake.inject("/sns/auth", -1)
    with pytest.raises(WeChatBusy):
        oauth.check_access_token("A" * 88, "openid")


# ------------------------------------------------------------------ secrets stay out


def test_reprs_and_logs_hold_no_tokens(
    oauth: WeChatOAuth, fake: FakeWeChat, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    code = fake.oauth.authorize(scope="snsapi_userinfo")
    token = oauth.fetch_token(code)
    again = oauth.refresh_token(token.refresh_token)
    oauth.get_userinfo(again.access_token, again.openid)
    text = repr(token) + str(token) + repr(oauth) + caplog.text
    for secret in (
        code,
        token.access_token,
        token.refresh_token,
        again.access_token,
        DEMO_APP_SECRET,
    ):
        assert secret not in text
    assert "access_token=***" in repr(token)


def test_from_config_uses_the_official_account() -> None:
    config = WaferConfig(
        **DEMO_APP,
        oauth_appid=OTHER_APPID,
        oauth_app_secret=OTHER_SECRET,
        open_base="http://fake.test",
    )
    client = WeChatOAuth.from_config(config)
    assert client.appid == OTHER_APPID and client.open_base == "http://fake.test"
    assert WeChatOAuth.from_config(WaferConfig(**DEMO_APP)).appid == DEMO_APPID
    assert OTHER_SECRET not in repr(config)


def test_config_from_env() -> None:
    config = WaferConfig.from_env(
        {**DEMO_ENV, "WAFER_OAUTH_APPID": OTHER_APPID, "WAFER_OAUTH_APP_SECRET": OTHER_SECRET}
    )
    assert config.oauth_app() == (OTHER_APPID, OTHER_SECRET)
    assert WaferConfig.from_env(DEMO_ENV).oauth_app() == (DEMO_APPID, DEMO_APP_SECRET)


# ---------------------------------------------------------------- the signed state


@pytest.mark.parametrize("data", [b"", b"\x00", b"\x00\x00abc", bytes(range(256))])
def test_base62_round_trip(data: bytes) -> None:
    text = b62encode(data)
    assert re.fullmatch(r"[A-Za-z0-9]+", text)
    assert b62decode(text) == data


def test_state_is_what_wechat_accepts_and_checks_out() -> None:
    signer = OAuthStateSigner(["k1"])
    states = {signer.issue("/web/profile?tab=1") for _ in range(50)}
    assert len(states) == 50
    for state in states:
        assert is_valid_state(state) and len(state) <= 128
        assert signer.verify(state, "/web/profile?tab=1").nonce


def test_state_refusals() -> None:
    clock = Clock()
    signer = OAuthStateSigner(["k1"], max_age=600, clock=clock)
    state = signer.issue("/a")
    with pytest.raises(InvalidState):
        signer.verify(state, "/b")  # bound to another page
    # Every one-character change, the last one included (whose spare base64 bits a
    # lenient decoder would ignore), is refused.
    tampered = [
        state[:i] + ("A" if state[i] != "A" else "B") + state[i + 1 :] for i in range(len(state))
    ]
    for bad in (None, "", *tampered, "garbage", "a" * 129, state + "!", "0"):
        with pytest.raises(InvalidState):
            signer.verify(bad, "/a")
    with pytest.raises(InvalidState):
        OAuthStateSigner(["another key"]).verify(state, "/a")
    clock.advance(601)
    with pytest.raises(StateExpired):
        signer.verify(state, "/a")


def test_state_key_rotation() -> None:
    old = OAuthStateSigner(["old"])
    state = old.issue()
    rotated = OAuthStateSigner(["new", "old"])
    assert rotated.verify(state).nonce
    with pytest.raises(InvalidState):
        OAuthStateSigner(["new"]).verify(state)
    assert rotated.verify(rotated.issue()).nonce
    with pytest.raises(InvalidState):  # new states are signed with the new key
        old.verify(rotated.issue())


@pytest.mark.parametrize("make_store", [MemoryStore, lambda: SQLiteStore(":memory:")])
def test_state_is_single_use(make_store: object) -> None:
    store = make_store()  # type: ignore[operator]
    clock = Clock()
    signer = OAuthStateSigner(["k1"], max_age=600, clock=clock)
    claims = signer.verify(signer.issue())
    signer.spend(claims, store)
    with pytest.raises(StateReplayed):
        signer.spend(claims, store)
    other = signer.verify(signer.issue())
    signer.spend(other, store)  # another state is unaffected
    clock.advance(602)  # the state itself has expired by now, so its claim may lapse
    signer.spend(claims, store)
    store.close()


def test_state_signer_needs_a_key() -> None:
    with pytest.raises(ValueError):
        OAuthStateSigner([])
