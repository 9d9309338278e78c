"""Web login (official-account OAuth) over real HTTP: both examples and small test apps,
driven hop by hop like a browser (requests with cookies; the browser tests use Chromium).

Every bad callback must get a human-readable 4xx page (never a 500) and no web session.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests

from tests.support.constants import OTHER_APPID, TEST_SECRET, TIMEOUT, TWO_APPS, WEB_FRAMEWORKS
from tests.support.fake_http import confirm_consent, consent_form
from tests.support.servers import serve_asgi, serve_example, serve_wsgi
from wafer_py import WaferAuth
from wafer_py.config import DEMO_APP_SECRET, DEMO_APPID
from wafer_py.fakewechat import FakeWeChat, FakeWeChatServer
from wafer_py.web.login import WebLogin, WebUser, local_path

pytestmark = pytest.mark.fake_apps(TWO_APPS)


@pytest.fixture(params=WEB_FRAMEWORKS)
def framework(request: pytest.FixtureRequest) -> str:
    """Each example app with the web login page in turn."""
    return str(request.param)


@pytest.fixture
def auth(
    make_auth: Callable[..., WaferAuth], fake: FakeWeChat, fake_server: FakeWeChatServer
) -> WaferAuth:
    # The app tells the time by the fake's clock, so fake.advance() ages both.
    return make_auth(open_base=fake_server.url, clock=fake.now)


@pytest.fixture
def base(framework: str, auth: WaferAuth) -> Iterator[str]:
    with serve_example(framework, auth) as url:
        yield url


ENGLISH = "en-US,en;q=0.9"


class Browser:
    """A cookie jar that follows no redirect by itself, to look at every hop.

    It asks for English pages (``accept_language``) unless told otherwise: the tests read
    the errors' own English messages; ``None`` sends no header (Chinese pages).
    """

    def __init__(self, accept_language: str | None = ENGLISH) -> None:
        self.http = requests.Session()
        if accept_language is not None:
            self.http.headers["Accept-Language"] = accept_language

    def get(self, url: str, **kwargs: Any) -> requests.Response:
        return self.http.get(url, allow_redirects=False, timeout=TIMEOUT, **kwargs)

    def authorize(self, base: str, path: str = "/web/profile") -> str:
        """Open a guarded page without a session: WeChat's authorize URL it redirects to."""
        first = self.get(base + path)
        assert first.status_code == 302, first.text
        return first.headers["Location"]

    def consent(self, authorize_url: str, decision: str = "allow") -> str:
        """Go through the fake's authorize page: the callback URL it sends us back to."""
        page = self.get(authorize_url)
        if page.status_code == 302:  # snsapi_base: silent
            return page.headers["Location"]
        assert page.status_code == 200 and 'id="allow"' in page.text, page.text
        origin = "{0.scheme}://{0.netloc}".format(urlsplit(authorize_url))
        answer = confirm_consent(origin, consent_form(page), decision, self.http)
        assert answer.status_code == 302
        return answer.headers["Location"]

    def login(self, base: str, path: str = "/web/profile") -> requests.Response:
        """The whole trip; returns the callback's answer."""
        return self.get(self.consent(self.authorize(base, path)))

    @property
    def session_cookie(self) -> str | None:
        return self.http.cookies.get("wafer_web")


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query, keep_blank_values=True).items()}


def with_query(url: str, **changes: str | None) -> str:
    parts = urlsplit(url)
    query = {**query_of(url), **changes}
    kept = {k: v for k, v in query.items() if v is not None}
    return parts._replace(query=urlencode(kept)).geturl()


ERROR_TITLES = {"en": "WeChat login did not complete", "zh": "微信登录未完成"}
HTML_LANG = {"en": "en", "zh": "zh-CN"}


def assert_error_page(response: requests.Response, *words: str, lang: str = "en") -> None:
    """A 4xx error page in ``lang`` saying ``words``, with a way back, and no session."""
    assert 400 <= response.status_code < 500, (response.status_code, response.text)
    assert response.headers["Content-Type"].startswith("text/html")
    assert response.headers["Vary"] == "Accept-Language"
    assert f'<html lang="{HTML_LANG[lang]}">' in response.text
    assert f'<h1 id="title">{ERROR_TITLES[lang]}</h1>' in response.text
    message = re.search(r'<p id="message">([^<]+)</p>', response.text)
    assert message is not None, response.text
    for word in words:
        assert word in message.group(1)
    assert re.search(r'<a id="retry" class="btn primary" href="/[^"]*">', response.text)
    assert "wafer_web=." not in response.headers.get("Set-Cookie", "")


# ---------------------------------------------------------------- the happy path


def test_login_reload_and_refresh(base: str, fake: FakeWeChat) -> None:
    browser = Browser()
    authorize_url = browser.authorize(base)
    query = query_of(authorize_url)
    assert query["scope"] == "snsapi_userinfo" and query["appid"] == DEMO_APPID
    assert re.fullmatch(r"[A-Za-z0-9]{1,128}", query["state"])
    assert query["redirect_uri"] == f"{base}/wechat/oauth/callback?next=%2Fweb%2Fprofile"

    callback = browser.get(browser.consent(authorize_url))
    assert callback.status_code == 302 and callback.headers["Location"] == "/web/profile"
    cookie = callback.headers["Set-Cookie"]
    assert cookie.startswith("wafer_web=")
    for attribute in ("HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=2592000"):
        assert attribute.lower() in cookie.lower()
    assert "secure" not in cookie.lower()  # plain http on 127.0.0.1

    page = browser.get(base + "/web/profile")
    assert page.status_code == 200 and '<h1 id="nickname">Alice</h1>' in page.text
    calls = dict(fake.calls)
    assert calls["/sns/oauth2/access_token"] == 1 and calls["/sns/userinfo"] == 1

    assert browser.get(base + "/web/profile").status_code == 200
    assert dict(fake.calls) == calls  # a reload does not go back to WeChat

    fake.oauth.set_profile("alice", nickname="Alice Liddell")
    fake.advance(7201)
    refreshed = browser.get(base + "/web/profile")
    assert refreshed.status_code == 200 and "Alice Liddell" in refreshed.text
    assert fake.calls["/sns/oauth2/refresh_token"] == 1
    assert fake.calls["/sns/userinfo"] == 2
    assert fake.calls["/connect/oauth2/authorize"] == 1  # no second trip through WeChat
    assert "Alice Liddell" in browser.get(base + "/web/profile").text  # the renewed cookie
    assert fake.calls["/sns/oauth2/refresh_token"] == 1


def test_the_profile_is_escaped(base: str, fake: FakeWeChat) -> None:
    fake.oauth.set_profile(
        "mallory",
        nickname="<script>alert(1)</script>",
        headimgurl='https://x.test/a.png" onerror="alert(1)',
    )
    browser = Browser()
    browser.http.cookies.set("fakewechat_user", "mallory")
    assert browser.login(base).status_code == 302
    page = browser.get(base + "/web/profile").text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>" not in page
    assert '" onerror="' not in page


def test_the_mini_program_login_works_alongside(base: str, fake: FakeWeChat) -> None:
    browser = Browser()
    browser.login(base)
    # The web cookie is no mini-program session...
    assert browser.get(base + "/weapp/user").status_code == 401
    # ...and the mini-program login is untouched.
    code = fake.login(DEMO_APPID, "alice")["code"]
    skey = requests.get(f"{base}/weapp/login", headers={"X-WX-Code": code}, timeout=TIMEOUT).json()[
        "data"
    ]["skey"]
    user = requests.get(f"{base}/weapp/user", headers={"X-WX-Skey": skey}, timeout=TIMEOUT)
    assert user.status_code == 200 and user.json()["code"] == 0


def test_the_web_user_is_linked_to_the_mini_program_user_by_unionid(
    base: str, fake: FakeWeChat, auth: WaferAuth
) -> None:
    """The same person (one unionid) in the mini-program and on the official account's
    page: /web/profile shows the mini-program profile; a person who never used the
    mini-program gets the page without it."""
    code = fake.login(DEMO_APPID, "alice")
    answer = requests.get(
        f"{base}/weapp/login", headers={"X-WX-Code": code["code"]}, timeout=TIMEOUT
    )
    assert answer.status_code == 200
    openid = code["openid"]
    auth.store.update_profile(openid, {"nickName": "小爱 <b>"}, now=auth.clock())
    user = auth.store.get_user(openid)
    assert user is not None and user.unionid

    browser = Browser()
    assert browser.login(base).status_code == 302
    page = browser.get(base + "/web/profile").text
    assert '<h1 id="nickname">Alice</h1>' in page  # the official account's profile
    assert '<p id="mini-nickname">小爱 &lt;b&gt;</p>' in page  # the mini-program's
    web_user = auth_web_user(auth, browser)
    assert web_user.unionid == user.unionid and web_user.linked_user == user

    stranger = Browser()
    stranger.http.cookies.set("fakewechat_user", "bob")
    assert stranger.login(base).status_code == 302
    page = stranger.get(base + "/web/profile").text
    assert '<h1 id="nickname">Bob</h1>' in page and "mini-program" not in page


def auth_web_user(auth: WaferAuth, browser: Browser) -> WebUser:
    """The web user the browser's cookie names, as the app's WebLogin reads it."""
    user, _ = WebLogin.from_auth(auth).authenticate(browser.session_cookie)
    assert user is not None
    return user


def test_tokens_stay_on_the_server_sealed(base: str, fake: FakeWeChat, auth: WaferAuth) -> None:
    browser = Browser()
    browser.login(base)
    tokens = fake.oauth.tokens_of(DEMO_APPID, "alice")
    assert len(tokens) == 2
    cookie = browser.session_cookie
    assert cookie is not None
    db = sqlite3.connect(auth.config.store_url.removeprefix("sqlite:///"))
    stored = " ".join(f"{k} {v}" for k, v in db.execute("SELECT key, value FROM wafer_entries"))
    db.close()
    assert "wafer-web:" in stored
    for token in tokens:
        assert token not in stored and token not in cookie


# ----------------------------------------------------------- bad input at the callback


def test_consent_denied(base: str) -> None:
    browser = Browser()
    callback = browser.consent(browser.authorize(base), decision="deny")
    assert "code" not in query_of(callback)
    assert_error_page(browser.get(callback), "declined")
    assert browser.session_cookie is None


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"code": None}, ("declined",)),
        ({"state": None}, ("no state",)),
        ({"state": "garbled0state0that0is0not0signed"}, ("invalid",)),
        ({"state": "a" * 400}, ("invalid",)),
        ({"state": "\x00<script>"}, ("invalid",)),
        ({"next": "/somewhere/else"}, ("invalid",)),
        ({"next": "//evil.example.net/"}, ("invalid",)),
        ({"next": None}, ("invalid",)),
        ({"code": "0" * 32}, ("login code",)),
    ],
)
def test_bad_callbacks_get_a_4xx_page_and_no_session(
    base: str, fake: FakeWeChat, changes: dict[str, str | None], words: tuple[str, ...]
) -> None:
    browser = Browser()
    callback = browser.consent(browser.authorize(base))
    bad = browser.get(with_query(callback, **changes))
    assert_error_page(bad, *words)
    assert browser.session_cookie is None
    assert browser.get(base + "/web/profile").status_code == 302  # still not logged in


def test_a_code_of_another_app(base: str, fake: FakeWeChat) -> None:
    browser = Browser()
    callback = browser.consent(browser.authorize(base))
    foreign = fake.oauth.authorize(OTHER_APPID, scope="snsapi_userinfo")
    assert_error_page(browser.get(with_query(callback, code=foreign)), "login code")
    assert browser.session_cookie is None


def test_a_replayed_state(base: str) -> None:
    browser = Browser()
    callback = browser.consent(browser.authorize(base))
    assert browser.get(callback).status_code == 302
    replay = Browser().get(callback)  # e.g. a leaked callback URL, in another browser
    assert_error_page(replay, "already used")
    again = browser.get(callback)  # the same browser, back button
    assert_error_page(again, "already used")


def test_an_expired_state(base: str, fake: FakeWeChat) -> None:
    browser = Browser()
    callback = browser.consent(browser.authorize(base))
    fake.advance(601)
    assert_error_page(browser.get(callback), "expired")


def test_the_callback_without_anything(base: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="wafer_py")
    response = Browser().get(f"{base}/wechat/oauth/callback")
    assert_error_page(response, "no state")
    # the refusal is logged with its path and reason
    assert "web login refused on /wechat/oauth/callback: invalid_state" in caplog.text


@pytest.mark.parametrize(
    ("accept_language", "lang"),
    [
        (None, "zh"),
        ("zh-CN", "zh"),
        ("*", "zh"),
        ("fr-FR,fr;q=0.9", "zh"),
        ("zh-CN,zh;q=0.9,en;q=0.8", "zh"),
        ("en-US,en;q=0.9", "en"),
        ("fr;q=0.9, en;q=0.5", "en"),
        ("zh;q=0.4, en-GB;q=0.6", "en"),
        ("en;q=0", "zh"),
    ],
)
def test_the_error_page_speaks_the_browsers_language(
    base: str, accept_language: str | None, lang: str
) -> None:
    response = Browser(accept_language).get(f"{base}/wechat/oauth/callback")
    assert_error_page(response, "no state" if lang == "en" else "登录链接", lang=lang)
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in response.text
    assert '<p id="reason" class="code">' in response.text and "invalid_state" in response.text


def test_a_declined_login_in_chinese(base: str) -> None:
    browser = Browser(accept_language=None)  # WeChat in Chinese sends zh-CN, or nothing
    callback = browser.consent(browser.authorize(base), decision="deny")
    page = browser.get(callback)
    assert_error_page(page, "授权被拒绝", lang="zh")
    assert ">重新登录</a>" in page.text and 'href="/web/profile"' in page.text


def test_a_forged_cookie_is_ignored(base: str) -> None:
    browser = Browser()
    browser.http.cookies.set("wafer_web", "eyJzIjoiMSJ9.forged.signature")
    response = browser.get(base + "/web/profile")
    assert response.status_code == 302  # off to WeChat, and the bad cookie is cleared
    assert "wafer_web=;" in response.headers["Set-Cookie"]


# -------------------------------------------------------- sessions, scopes, instances


def flask_app(auth: WaferAuth, **options: Any) -> Any:
    from flask import Flask

    from wafer_py.flask import Wafer, WaferWeb, current_web_user, web_login_required

    app = Flask(__name__)
    Wafer(app, auth)
    web = WaferWeb(app, **options)

    @app.get("/base")
    @web_login_required
    def silent() -> str:
        return f"openid={current_web_user.openid} scope={current_web_user.scope}"

    @app.get("/full")
    @web_login_required(scope="snsapi_userinfo")
    def full() -> str:
        return f"nickname={current_web_user.nickname}"

    @app.get("/logout")
    def logout() -> Any:
        return web.logout("/base")

    return app


def starlette_app(auth: WaferAuth, **options: Any) -> Any:
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse, Response
    from starlette.routing import Route

    from wafer_py.asgi import WaferMiddleware
    from wafer_py.starlette import WaferWeb, get_web_user, web_login_required

    @web_login_required
    def silent(request: Request) -> Response:  # a sync endpoint: runs in a thread
        user = get_web_user(request)
        assert user is not None
        return PlainTextResponse(f"openid={user.openid} scope={user.scope}")

    @web_login_required(scope="snsapi_userinfo")
    async def full(request: Request) -> Response:
        user = get_web_user(request)
        assert user is not None
        return PlainTextResponse(f"nickname={user.nickname}")

    async def logout(request: Request) -> Response:
        return await web.logout(request, "/base")

    app = Starlette(
        routes=[Route("/base", silent), Route("/full", full), Route("/logout", logout)],
        middleware=[Middleware(WaferMiddleware, auth=auth)],
    )
    web = WaferWeb(app, auth, **options)
    return app


def serve_test_app(framework: str, auth: WaferAuth, **options: Any) -> AbstractContextManager[str]:
    if framework == "flask":
        return serve_wsgi(flask_app(auth, **options))
    if framework.startswith("django"):
        from tests.django.weburls import django_app

        if framework == "django-wsgi":
            return serve_wsgi(django_app(auth, wsgi=True, **options))
        return serve_asgi(django_app(auth, **options))
    return serve_asgi(starlette_app(auth, **options))


@pytest.fixture
def app_url(framework: str, auth: WaferAuth) -> Iterator[str]:
    with serve_test_app(framework, auth) as url:
        yield url


def test_silent_login_then_upgrade_to_userinfo(app_url: str, fake: FakeWeChat) -> None:
    browser = Browser()
    authorize_url = browser.authorize(app_url, "/base")
    assert query_of(authorize_url)["scope"] == "snsapi_base"
    callback = browser.get(browser.consent(authorize_url))
    assert callback.headers["Location"] == "/base"
    page = browser.get(app_url + "/base").text
    assert "scope=snsapi_base" in page
    assert fake.calls["/sns/userinfo"] == 0  # a silent login reads no profile

    upgrade = browser.get(app_url + "/full")  # needs more than the session has
    assert upgrade.status_code == 302
    assert query_of(upgrade.headers["Location"])["scope"] == "snsapi_userinfo"
    browser.get(browser.consent(upgrade.headers["Location"]))
    assert browser.get(app_url + "/full").text == "nickname=Alice"
    assert "scope=snsapi_userinfo" in browser.get(app_url + "/base").text


def test_next_keeps_the_query_string(app_url: str) -> None:
    browser = Browser()
    authorize_url = browser.authorize(app_url, "/base?tab=2&x=%2F")
    callback = browser.get(browser.consent(authorize_url))
    assert callback.headers["Location"] == "/base?tab=2&x=%2F"


def test_logout_ends_the_session(app_url: str, fake: FakeWeChat) -> None:
    browser = Browser()
    browser.login(app_url, "/base")
    stolen = browser.session_cookie
    out = browser.get(app_url + "/logout")
    assert out.status_code == 302 and "wafer_web=;" in out.headers["Set-Cookie"]
    assert browser.get(app_url + "/base").status_code == 302
    # The cookie taken before logging out no longer works: its tokens are gone.
    thief = Browser()
    thief.http.cookies.set("wafer_web", stolen or "")
    assert thief.get(app_url + "/base").status_code == 302


def test_an_expired_refresh_token_sends_the_browser_through_wechat(
    app_url: str, fake: FakeWeChat
) -> None:
    browser = Browser()
    browser.login(app_url, "/base")
    fake.advance(29 * 24 * 3600)
    assert browser.get(app_url + "/base").status_code == 200  # refreshed
    fake.advance(2 * 24 * 3600)
    again = browser.get(app_url + "/base")
    assert again.status_code == 302  # the web session is over: log in again
    assert "/connect/oauth2/authorize" in again.headers["Location"]


def test_a_revoked_refresh_token_ends_the_session(app_url: str, fake: FakeWeChat) -> None:
    browser = Browser()
    browser.login(app_url, "/base")
    fake.advance(7201)
    fake.inject("/sns/oauth2/refresh_token", 40030)
    response = browser.get(app_url + "/base")
    assert response.status_code == 302 and "wafer_web=;" in response.headers["Set-Cookie"]


def test_wechat_down_during_a_refresh_serves_the_page(app_url: str, fake: FakeWeChat) -> None:
    browser = Browser()
    browser.login(app_url, "/full")
    fake.advance(7201)
    fake.inject("/sns/oauth2/refresh_token", -1)
    assert browser.get(app_url + "/full").text == "nickname=Alice"
    assert browser.get(app_url + "/full").text == "nickname=Alice"  # retried, now refreshed
    assert fake.calls["/sns/oauth2/refresh_token"] == 2


def test_the_callback_may_reach_another_instance(
    framework: str,
    fake: FakeWeChat,
    make_auth: Callable[..., WaferAuth],
    fake_server: FakeWeChatServer,
    tmp_path: Path,
) -> None:
    # Two instances behind one load balancer: the same keys and the same store.
    shared = {
        "open_base": fake_server.url,
        "clock": fake.now,
        "store_url": f"sqlite:///{tmp_path}/shared.db",
        "secret_keys": ("shared-key-of-both-instances-000000",),
    }
    one, two = make_auth(**shared), make_auth(**shared)
    with serve_test_app(framework, one) as first, serve_test_app(framework, two) as second:
        browser = Browser()
        callback = browser.consent(browser.authorize(first, "/base"))
        elsewhere = callback.replace(first, second)  # no cookie was needed either
        assert browser.get(elsewhere).status_code == 302
        assert browser.get(second + "/base").status_code == 200
        assert browser.get(first + "/base").status_code == 200
        assert_error_page(Browser().get(callback), "already used")  # replay on the other


def test_public_url_fixes_the_callback_origin(framework: str, auth: WaferAuth) -> None:
    with serve_test_app(framework, auth, public_url="https://shop.example.com/") as url:
        location = Browser().authorize(url, "/base")
    redirect_uri = query_of(location)["redirect_uri"]
    assert redirect_uri == "https://shop.example.com/wechat/oauth/callback?next=%2Fbase"


# ---------------------------------------------------------------------- the core


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("/web/profile?x=1", "/web/profile?x=1"),
        (None, "/"),
        ("", "/"),
        ("//evil.test/", "/"),
        ("https://evil.test/", "/"),
        ("/\\evil.test", "/"),
        ("/a\r\nSet-Cookie: x", "/"),
        ("web", "/"),
        ("/a b", "/a b"),
        ("/a\tb", "/"),
    ],
)
def test_local_path(value: str | None, expected: str) -> None:
    assert local_path(value) == expected


def test_web_login_reprs_hold_no_secrets(auth: WaferAuth) -> None:
    login = WebLogin.from_auth(auth)
    text = repr(login) + repr(login.states) + repr(login.oauth)
    assert DEMO_APP_SECRET not in text and TEST_SECRET not in text


def test_the_core_imports_no_framework_and_no_http_client() -> None:
    import subprocess
    import sys

    code = (
        "import sys, wafer_py.web.login, wafer_py.web.state;"
        "print(','.join(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('starlette', 'werkzeug', 'flask', 'requests'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout.strip()
    assert out == ""


NONCE = "a-browser-nonce-0123456789"


def login_with_core(login: WebLogin, fake: FakeWeChat, scope: str = "snsapi_userinfo") -> str:
    """A web session made by the core alone; returns the cookie value."""
    query = {
        "code": fake.oauth.authorize(scope=scope),
        "next": "/p",
        "state": login.states.issue(bound="/p", browser=NONCE),
    }
    answer = login.finish(query, nonce=NONCE)
    assert answer.status == 302, answer.body
    headers = dict(answer.headers)
    assert headers["Location"] == "/p"
    return headers["Set-Cookie"].split(";", 1)[0].split("=", 1)[1]


def test_userinfo_on_demand_refreshes_when_wechat_says_expired(
    auth: WaferAuth, fake: FakeWeChat
) -> None:
    login = WebLogin.from_auth(auth)
    cookie = login_with_core(login, fake)
    user, headers = login.authenticate(cookie)
    assert user is not None and user.nickname == "Alice" and headers == []
    fake.oauth.set_profile("alice", nickname="New Alice", country="China")
    info = login.userinfo(user, lang="en")
    assert (info.nickname, info.country) == ("New Alice", "China")
    fake.advance(7201)
    assert login.userinfo(user).nickname == "New Alice"  # 42001, refreshed, asked again
    assert fake.calls["/sns/oauth2/refresh_token"] == 1
    # The refreshed token was saved: the next guarded request needs no refresh.
    again, _ = login.authenticate(cookie)
    assert again is not None and fake.calls["/sns/oauth2/refresh_token"] == 1
    login.close()


def test_core_logout_and_a_base_session_has_no_profile(auth: WaferAuth, fake: FakeWeChat) -> None:
    from wafer_py.exceptions import ScopeUnauthorized, WebSessionExpired

    login = WebLogin.from_auth(auth)
    cookie = login_with_core(login, fake, "snsapi_base")
    user, _ = login.authenticate(cookie)
    assert user is not None and user.nickname == "" and user.has_scope("snsapi_base")
    assert not user.has_scope("snsapi_userinfo") and "session_id" not in repr(user)
    with pytest.raises(ScopeUnauthorized):
        login.userinfo(user)
    answer = login.logout(cookie, redirect_to="//evil.test")
    assert ("Location", "/") in answer.headers
    assert login.authenticate(cookie)[0] is None
    with pytest.raises(WebSessionExpired):  # found here, not WeChat's 40030
        login.userinfo(user)
    login.close()


def test_tokens_sealed_under_a_retired_key_end_the_web_session_locally(
    auth: WaferAuth, fake: FakeWeChat
) -> None:
    """Tokens that no longer open under the configured keys: the web session is over, a
    local finding (WebSessionExpired), never a made-up WeChat 40030."""
    from wafer_py.crypto import SecretBox
    from wafer_py.exceptions import WebSessionExpired, WeChatAPIError

    login = WebLogin.from_auth(auth)
    cookie = login_with_core(login, fake)
    user, _ = login.authenticate(cookie)
    assert user is not None
    rotated = WebLogin.from_auth(auth, secret_box=SecretBox(["a-key-that-sealed-nothing-here-000"]))
    with pytest.raises(WebSessionExpired) as caught:
        rotated.userinfo(user)
    assert not isinstance(caught.value, WeChatAPIError) and not hasattr(caught.value, "errcode")
    fake.advance(7201)  # the access token expired: the guard would refresh, and cannot
    assert rotated.authenticate(cookie) == (None, [rotated.cookies.clear()])
    assert fake.calls["/sns/oauth2/refresh_token"] == 0
    assert login.authenticate(cookie)[0] is None  # the session's tokens are deleted
    rotated.close()
    login.close()


def test_a_broken_store_gives_a_503_page_not_a_500(auth: WaferAuth, fake: FakeWeChat) -> None:
    from wafer_py.stores import MemoryStore

    class BrokenStore(MemoryStore):
        def get_entry(self, key: str, *, now: float) -> str | None:
            raise OSError("disk on fire")

    login = WebLogin(auth.config, store=BrokenStore(), clock=fake.now)
    cookie = login_with_core(login, fake)
    access = login.guard(cookie, next_path="/p", base_url="http://app.test")
    assert access.user is None and access.answer is not None
    assert access.answer.status == 503
    assert b"disk on fire" not in access.answer.body
    assert ">重试</a>" in access.answer.body.decode()  # no Accept-Language: Chinese
    english = login.guard(cookie, next_path="/p", accept_language="en-US,en;q=0.9")
    assert english.answer is not None and b'href="/p">Try again</a>' in english.answer.body
    login.close()


def test_a_page_with_a_non_ascii_path(auth: WaferAuth, fake: FakeWeChat) -> None:
    login = WebLogin.from_auth(auth)
    location = login.authorize_url(
        next_path="/页面?q=1", base_url="http://app.test", browser_nonce=NONCE
    )
    redirect_uri = query_of(location)["redirect_uri"]
    assert redirect_uri.endswith("?next=%2F%E9%A1%B5%E9%9D%A2%3Fq%3D1")
    query = {
        "code": fake.oauth.authorize(),
        "next": "/页面?q=1",
        "state": query_of(location)["state"],
    }
    answer = login.finish(query, nonce=NONCE)
    assert ("Location", "/%E9%A1%B5%E9%9D%A2?q=1") in answer.headers
    login.close()
