"""Web login CSRF (issue #11, item 2) and the web cookies' ``Secure`` flag (item 8), over
real HTTP against both frameworks, driven hop by hop like browsers.

The attack: Mallory authorizes with her own WeChat, keeps the callback URL (code and
state) and sends it to Alice. Alice's browser must stay Alice's: the callback asks whose
login it is (a page naming Mallory) instead of switching sessions, and only a POST from
the browser that was shown that page, once, continues.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator

import pytest
import requests

from tests.support.constants import OTHER_APPID, OTHER_SECRET, TIMEOUT, TWO_APPS, WEB_FRAMEWORKS
from tests.support.servers import serve_example, serve_wsgi, start_asgi
from tests.test_weblogin import (
    ENGLISH,
    Browser,
    assert_error_page,
    query_of,
    serve_test_app,
)
from wafer_py import WaferAuth
from wafer_py.config import DEMO_APPID
from wafer_py.fakewechat import FakeWeChat, FakeWeChatServer
from wafer_py.web.login import CONFIRM_BODY_LIMIT, WebLogin
from wafer_py.web.oauth import WeChatOAuth

pytestmark = pytest.mark.fake_apps(TWO_APPS)

NONCE = "wafer_web_nonce"
TOKEN = re.compile(r'name="token" value="([A-Za-z0-9_-]+)"')


@pytest.fixture(params=WEB_FRAMEWORKS)
def framework(request: pytest.FixtureRequest) -> str:
    """Each example app with the web login page in turn."""
    return str(request.param)


@pytest.fixture
def auth(
    make_auth: Callable[..., WaferAuth], fake: FakeWeChat, fake_server: FakeWeChatServer
) -> WaferAuth:
    fake.oauth.set_profile("mallory", nickname="Mallory")
    return make_auth(open_base=fake_server.url, clock=fake.now)


@pytest.fixture
def base(framework: str, auth: WaferAuth) -> Iterator[str]:
    with serve_example(framework, auth) as url:
        yield url


def as_user(user: str, accept_language: str | None = ENGLISH) -> Browser:
    """A browser whose WeChat (the fake's authorize page) is ``user``'s."""
    browser = Browser(accept_language)
    browser.http.cookies.set("fakewechat_user", user)
    return browser


def mallorys_callback(base: str, path: str = "/web/profile") -> str:
    """The attacker's half: authorize as Mallory, keep the callback URL, do not open it."""
    return as_user("mallory").consent(as_user("mallory").authorize(base, path))


def assert_confirm_page(page: requests.Response, who: str) -> str:
    """The page asking to continue as ``who``: nothing logged in. Returns its token."""
    assert page.status_code == 200, page.text
    assert '<html lang="en">' in page.text
    assert f'<h1 id="title">Continue as <span id="wechat-user">{who}</span>?</h1>' in page.text
    assert "not started in this browser" in page.text
    assert f'id="continue" class="btn primary">Continue as {who}</button>' in page.text
    assert page.headers["Vary"] == "Accept-Language"
    assert page.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    assert page.headers["Cache-Control"] == "no-store"
    assert "wafer_web=" not in page.headers.get("Set-Cookie", "")
    found = TOKEN.search(page.text)
    assert found is not None
    return found.group(1)


def post_confirm(
    browser: Browser, base: str, token: str, action: str = "continue"
) -> requests.Response:
    return browser.http.post(
        base + "/wechat/oauth/callback",
        data={"token": token, "action": action},
        allow_redirects=False,
        timeout=TIMEOUT,
    )


# ---------------------------------------------------------------- the attack itself


def test_a_callback_sent_to_a_logged_in_victim_leaves_her_browser_hers(
    base: str, fake: FakeWeChat
) -> None:
    alice = as_user("alice")
    assert alice.login(base).status_code == 302
    her_cookie = alice.session_cookie
    assert "Alice" in alice.get(base + "/web/profile").text

    page = alice.get(mallorys_callback(base))  # the link Mallory sent
    assert_confirm_page(page, "Mallory")
    assert 'id="current">This browser is signed in as Alice' in page.text
    assert alice.session_cookie == her_cookie
    profile = alice.get(base + "/web/profile")
    assert profile.status_code == 200 and '<h1 id="nickname">Alice</h1>' in profile.text


def test_a_callback_sent_to_a_new_browser_logs_nobody_in(base: str) -> None:
    victim = Browser()
    assert_confirm_page(victim.get(mallorys_callback(base)), "Mallory")
    assert victim.session_cookie is None
    assert victim.get(base + "/web/profile").status_code == 302  # off to WeChat


def test_the_same_browser_without_its_nonce_cookie_is_asked(base: str, fake: FakeWeChat) -> None:
    # WeChat's in-app browser may drop cookies: the user confirms, nothing breaks.
    browser = as_user("alice")
    callback = browser.consent(browser.authorize(base))
    browser.http.cookies.clear(domain="127.0.0.1", path="/", name=NONCE)
    token = assert_confirm_page(browser.get(callback), "Alice")
    assert NONCE in browser.http.cookies  # a fresh nonce binds the page to this browser
    done = post_confirm(browser, base, token)
    assert done.status_code == 303 and done.headers["Location"] == "/web/profile"
    assert '<h1 id="nickname">Alice</h1>' in browser.get(base + "/web/profile").text
    assert fake.calls["/sns/oauth2/access_token"] == 1  # the code was exchanged once


def test_a_forged_nonce_cookie_is_no_match(base: str) -> None:
    victim = Browser()
    victim.http.cookies.set(NONCE, "A" * 24)  # well-formed, but not the state's
    assert_confirm_page(victim.get(mallorys_callback(base)), "Mallory")
    assert victim.session_cookie is None


# ------------------------------------------------------------- the confirmation page


def test_continue_switches_the_session_once(base: str, fake: FakeWeChat) -> None:
    alice = as_user("alice")
    alice.login(base)
    old = alice.session_cookie
    token = assert_confirm_page(alice.get(mallorys_callback(base)), "Mallory")

    done = post_confirm(alice, base, token)
    assert done.status_code == 303 and done.headers["Location"] == "/web/profile"
    assert done.headers["Set-Cookie"].startswith("wafer_web=")
    assert '<h1 id="nickname">Mallory</h1>' in alice.get(base + "/web/profile").text
    thief = Browser()  # the session she chose to leave is over
    thief.http.cookies.set("wafer_web", old or "")
    assert thief.get(base + "/web/profile").status_code == 302

    assert_error_page(post_confirm(alice, base, token), "already used")
    assert fake.calls["/sns/oauth2/access_token"] == 2  # Alice's, Mallory's: once each


def test_the_confirmation_in_chinese_continues_once(base: str, fake: FakeWeChat) -> None:
    alice = as_user("alice", accept_language=None)  # no header: the Chinese pages
    alice.login(base)
    page = alice.get(mallorys_callback(base))
    assert page.status_code == 200 and '<html lang="zh-CN">' in page.text
    assert '<h1 id="title">以 <span id="wechat-user">Mallory</span> 的身份继续？</h1>' in page.text
    assert '<p id="current">本浏览器当前登录的是 Alice' in page.text
    assert 'id="continue" class="btn primary">以 Mallory 的身份继续</button>' in page.text
    assert 'id="start-over" class="btn secondary">重新开始</button>' in page.text
    assert page.headers["Vary"] == "Accept-Language"
    found = TOKEN.search(page.text)
    assert found is not None
    done = post_confirm(alice, base, found.group(1))
    assert done.status_code == 303 and done.headers["Set-Cookie"].startswith("wafer_web=")
    assert '<h1 id="nickname">Mallory</h1>' in alice.get(base + "/web/profile").text
    assert_error_page(post_confirm(alice, base, found.group(1)), "已失效", lang="zh")
    assert fake.calls["/sns/oauth2/access_token"] == 2


def test_start_over_keeps_the_session_and_drops_the_login(base: str) -> None:
    alice = as_user("alice")
    alice.login(base)
    token = assert_confirm_page(alice.get(mallorys_callback(base)), "Mallory")
    back = post_confirm(alice, base, token, action="start-over")
    assert back.status_code == 303 and back.headers["Location"] == "/web/profile"
    assert "wafer_web=" not in back.headers.get("Set-Cookie", "")
    assert '<h1 id="nickname">Alice</h1>' in alice.get(base + "/web/profile").text
    assert_error_page(post_confirm(alice, base, token), "already used")  # dropped


def test_the_confirm_form_posted_from_another_browser_is_refused(base: str) -> None:
    # Mallory opens her own callback: a page whose token she can read. Posting it from
    # Alice's browser (a cross-site form: it carries no SameSite=Lax nonce; or any other
    # browser's nonce) must not log Alice in as Mallory.
    mallory = as_user("mallory")
    token = assert_confirm_page(mallory.get(mallorys_callback(base)), "Mallory")
    alice = as_user("alice")
    alice.login(base)
    her_cookie = alice.session_cookie

    cross_site = requests.post(  # Alice's session cookie alone, no nonce
        base + "/wechat/oauth/callback",
        data={"token": token, "action": "continue"},
        cookies={"wafer_web": her_cookie or ""},
        headers={"Accept-Language": ENGLISH},
        allow_redirects=False,
        timeout=TIMEOUT,
    )
    assert_error_page(cross_site, "another browser")
    assert_error_page(post_confirm(alice, base, token), "another browser")  # her nonce
    assert alice.session_cookie == her_cookie
    assert '<h1 id="nickname">Alice</h1>' in alice.get(base + "/web/profile").text
    # Nor can another browser drop it: "start over" there only goes back.
    assert post_confirm(alice, base, token, action="start-over").status_code == 303
    assert post_confirm(mallory, base, token).status_code == 303  # still Mallory's to take
    assert '<h1 id="nickname">Alice</h1>' in alice.get(base + "/web/profile").text


@pytest.mark.parametrize(
    "form",
    [
        {},
        {"token": ""},
        {"token": "x" * 32, "action": "continue"},
        {"token": "<script>", "action": "continue"},
        {"action": "continue"},
    ],
)
def test_bad_confirmations_get_a_4xx_page(base: str, form: dict[str, str]) -> None:
    response = Browser().http.post(
        base + "/wechat/oauth/callback", data=form, allow_redirects=False, timeout=TIMEOUT
    )
    assert_error_page(response, "expired or was already used")


def test_a_big_confirmation_body_gets_413(base: str, framework: str) -> None:
    body = b"token=" + b"a" * (64 * 1024)
    response = requests.post(
        base + "/wechat/oauth/callback",
        data=body,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        timeout=TIMEOUT,
    )
    assert response.status_code == 413

    def chunks() -> Iterator[bytes]:  # no Content-Length: the server stops reading
        for _ in range(64):
            yield b"a" * 1024

    chunked = requests.post(base + "/wechat/oauth/callback", data=chunks(), timeout=TIMEOUT)
    if framework == "django-wsgi":
        # Django under WSGI reads no body without a Content-Length: an empty confirmation
        assert chunked.status_code == 400
    else:
        assert chunked.status_code == 413
    assert CONFIRM_BODY_LIMIT < 64 * 1024


def test_concurrent_confirmations_log_in_once(base: str) -> None:
    victim = Browser()
    token = assert_confirm_page(victim.get(mallorys_callback(base)), "Mallory")
    nonce = victim.http.cookies[NONCE]
    statuses: list[int] = []

    def confirm() -> None:
        response = requests.post(
            base + "/wechat/oauth/callback",
            data={"token": token, "action": "continue"},
            cookies={NONCE: nonce},
            allow_redirects=False,
            timeout=TIMEOUT,
        )
        statuses.append(response.status_code)

    threads = [threading.Thread(target=confirm) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [303] + [400] * 7


# ------------------------------------------------------------ replays and expiry


def test_the_callback_replayed(base: str) -> None:
    callback = mallorys_callback(base)
    victim = Browser()
    assert_confirm_page(victim.get(callback), "Mallory")
    assert_error_page(victim.get(callback), "already used")  # opened twice
    assert_error_page(as_user("mallory").get(callback), "already used")
    assert victim.session_cookie is None


def test_an_expired_nonce_and_state(base: str, fake: FakeWeChat) -> None:
    browser = as_user("alice")
    start = browser.get(base + "/web/profile")
    nonce_cookie = next(c for c in start.headers["Set-Cookie"].split(", ") if NONCE in c)
    assert "Max-Age=600" in nonce_cookie  # the browser drops it when the state expires
    callback = browser.consent(start.headers["Location"])
    fake.advance(601)
    assert_error_page(browser.get(callback), "expired")  # no page asking to continue either
    assert browser.session_cookie is None


def test_a_confirmation_expires(base: str, fake: FakeWeChat) -> None:
    victim = Browser()
    token = assert_confirm_page(victim.get(mallorys_callback(base)), "Mallory")
    fake.advance(301)
    assert_error_page(post_confirm(victim, base, token), "expired or was already used")
    assert victim.session_cookie is None


def test_the_nonce_cookie(base: str) -> None:
    start = Browser().get(base + "/web/profile")
    cookie = next(c for c in start.headers["Set-Cookie"].split(", ") if NONCE in c)
    for attribute in ("HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=600"):
        assert attribute in cookie
    assert "Secure" not in cookie  # plain http, no public_url
    state = query_of(start.headers["Location"])["state"]
    value = cookie.split(";", 1)[0].split("=", 1)[1]
    assert value not in state and len(value) >= 22


# -------------------------------------------------- sessions, tabs, other apps


def test_two_tabs_of_one_browser_both_come_back_as_it(app_url: str) -> None:
    browser = as_user("alice")
    first = browser.authorize(app_url, "/base")
    second = browser.authorize(app_url, "/full")  # another tab, before the first returns
    assert browser.get(browser.consent(first)).status_code == 302
    assert browser.get(browser.consent(second)).status_code == 302
    assert browser.get(app_url + "/full").text == "nickname=Alice"


@pytest.fixture
def app_url(framework: str, auth: WaferAuth) -> Iterator[str]:
    with serve_test_app(framework, auth) as url:
        yield url


def test_a_state_of_another_app_is_refused(auth: WaferAuth, fake: FakeWeChat) -> None:
    # Two official accounts sharing the server's keys: a state made for one is not the
    # other's, even with the right browser nonce.
    ours = WebLogin.from_auth(auth)
    other_oauth = WeChatOAuth(
        OTHER_APPID, OTHER_SECRET, api_base=ours.oauth.api_base, open_base=ours.oauth.open_base
    )
    theirs = WebLogin.from_auth(auth, oauth=other_oauth)
    nonce = "n" * 24
    query = {
        "code": fake.oauth.authorize(scope="snsapi_userinfo"),
        "next": "/p",
        "state": theirs.states.issue(bound="/p", browser=nonce),
    }
    answer = ours.finish(query, nonce=nonce, accept_language="en")
    assert answer.status == 400 and b'<p id="message">This login link is invalid' in answer.body
    assert not any(v.startswith("wafer_web=") for _, v in answer.headers)
    ours.close()
    theirs.close()


def test_the_core_without_a_browser_nonce_asks(auth: WaferAuth, fake: FakeWeChat) -> None:
    login = WebLogin.from_auth(auth)
    query = {
        "code": fake.oauth.authorize(scope="snsapi_userinfo"),
        "next": "/p",
        "state": login.states.issue(bound="/p"),  # issued for no browser
    }
    answer = login.finish(query, nonce="")  # no Accept-Language: Chinese
    assert answer.status == 200 and "的身份继续".encode() in answer.body
    assert not any(v.startswith("wafer_web=") for _, v in answer.headers)
    login.close()


def test_the_pending_login_is_sealed(auth: WaferAuth, fake: FakeWeChat) -> None:
    import sqlite3

    login = WebLogin.from_auth(auth)
    query = {
        "code": fake.oauth.authorize(scope="snsapi_userinfo"),
        "next": "/p",
        "state": login.states.issue(bound="/p"),
    }
    page = login.finish(query).body.decode()
    tokens = fake.oauth.tokens_of(DEMO_APPID, "alice")
    assert tokens
    db = sqlite3.connect(auth.config.store_url.removeprefix("sqlite:///"))
    stored = " ".join(f"{k} {v}" for k, v in db.execute("SELECT key, value FROM wafer_entries"))
    db.close()
    found = TOKEN.search(page)
    assert found is not None and "wafer-web-pending:" in stored
    assert found.group(1) not in stored  # the store holds a hash of the page's token
    for token in tokens:
        assert token not in stored and token not in page
    login.close()


# ------------------------------------------------------------- Secure cookies (item 8)


def secure_flags(headers: str) -> dict[str, bool]:
    """Which cookies of a joined ``Set-Cookie`` header are ``Secure``."""
    flags: dict[str, bool] = {}
    for cookie in headers.split(", "):
        name = cookie.split("=", 1)[0]
        flags[name] = "; secure" in cookie.lower()
    return flags


def test_public_url_https_makes_the_cookies_secure(framework: str, auth: WaferAuth) -> None:
    # TLS ends at a proxy, the app hears plain http: public_url says what users see.
    with serve_test_app(framework, auth, public_url="https://shop.example.com") as url:
        browser = as_user("alice")
        start = browser.get(url + "/base")
        assert secure_flags(start.headers["Set-Cookie"]) == {NONCE: True}
        callback = browser.consent(start.headers["Location"])
        nonce = start.headers["Set-Cookie"].split(";", 1)[0].split("=", 1)[1]
        path = callback.split("://", 1)[1].split("/", 1)[1]
        done = browser.get(f"{url}/{path}", headers={"Cookie": f"{NONCE}={nonce}"})
        assert done.status_code == 302
        assert secure_flags(done.headers["Set-Cookie"]) == {"wafer_web": True}
        out = browser.get(url + "/logout")
        assert secure_flags(out.headers["Set-Cookie"]) == {"wafer_web": True}


def forwarded_https(url: str) -> dict[str, bool]:
    start = requests.get(
        url + "/base",
        headers={"X-Forwarded-Proto": "https"},
        allow_redirects=False,
        timeout=TIMEOUT,
    )
    assert start.status_code == 302
    return secure_flags(start.headers["Set-Cookie"])


def test_flask_trusts_x_forwarded_proto_only_through_proxyfix(auth: WaferAuth) -> None:
    from werkzeug.middleware.proxy_fix import ProxyFix

    from tests.test_weblogin import flask_app

    app = flask_app(auth)
    with serve_wsgi(app) as url:
        assert forwarded_https(url) == {NONCE: False}  # by default the header is ignored
    app.wsgi_app = ProxyFix(app.wsgi_app, x_proto=1)  # type: ignore[method-assign]
    with serve_wsgi(app) as url:
        assert forwarded_https(url) == {NONCE: True}


def test_uvicorn_trusts_x_forwarded_proto_only_from_the_allowed_proxy(auth: WaferAuth) -> None:
    from tests.test_weblogin import starlette_app

    app = starlette_app(auth)
    with start_asgi(app, proxy_headers=False) as url:
        assert forwarded_https(url) == {NONCE: False}
    with start_asgi(app, proxy_headers=True, forwarded_allow_ips="10.9.9.9") as url:
        assert forwarded_https(url) == {NONCE: False}  # not from the proxy: ignored
    with start_asgi(app, proxy_headers=True, forwarded_allow_ips="127.0.0.1") as url:
        assert forwarded_https(url) == {NONCE: True}


def test_a_public_url_without_a_scheme_stops_at_start(auth: WaferAuth) -> None:
    with pytest.raises(ValueError, match="public_url"):
        WebLogin.from_auth(auth, public_url="shop.example.com")
