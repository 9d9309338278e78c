"""Web login in a real browser: headless Chromium (Debian's) driven by Playwright, against
both example apps and the fake WeChat, all over HTTP on 127.0.0.1.

Nothing downloads a browser: Playwright drives ``/usr/bin/chromium``. Requests to any
other host (the fake's avatar URLs point at WeChat's CDN) are aborted, so the tests never
touch the internet.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

from tests.support.ci import skip_or_fail
from tests.support.constants import WEB_FRAMEWORKS
from tests.support.servers import serve_example
from wafer_py import WaferAuth
from wafer_py.fakewechat import FakeWeChat, FakeWeChatServer

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
FRAMEWORKS = WEB_FRAMEWORKS
NOT_LOOPBACK = re.compile(r"^(?!https?://127\.0\.0\.1[:/]).*")


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    if not os.access(CHROMIUM, os.X_OK):
        skip_or_fail(f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError:
        skip_or_fail(
            "Playwright for Python is not installed (pip install playwright; "
            "no `playwright install`: the system Chromium is used)"
        )
        raise  # unreachable: skip_or_fail raises
    with sync_playwright() as playwright:
        try:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
            )
        except Error as exc:
            skip_or_fail(f"Chromium at {CHROMIUM} does not start: {exc}")
            raise
        yield browser
        browser.close()


@pytest.fixture
def new_context(chromium: Browser) -> Iterator[Callable[[], BrowserContext]]:
    """Fresh browser profiles (no cookies), which reach nothing but 127.0.0.1; in English
    (``Accept-Language: en-US``), as the tests read the errors' English messages."""
    made: list[BrowserContext] = []

    def make() -> BrowserContext:
        context = chromium.new_context(locale="en-US")
        context.set_default_timeout(15_000)
        context.route(NOT_LOOPBACK, lambda route: route.abort())
        made.append(context)
        return context

    yield make
    for context in made:
        context.close()


@pytest.fixture(params=FRAMEWORKS)
def site(
    request: pytest.FixtureRequest,
    make_auth: Callable[..., WaferAuth],
    fake: FakeWeChat,
    fake_server: FakeWeChatServer,
) -> Iterator[str]:
    # The app tells the time by the fake's clock, so fake.advance() ages both.
    auth = make_auth(open_base=fake_server.url, clock=fake.now)
    with serve_example(str(request.param), auth) as url:
        yield url


def open_consent_page(page: Page, site: str, fake_server: FakeWeChatServer) -> None:
    page.goto(f"{site}/web/profile")
    page.wait_for_url(re.compile(re.escape(f"{fake_server.url}/connect/oauth2/authorize?")))
    assert page.locator("#allow").is_visible() and page.locator("#deny").is_visible()


def click_and_catch_callback(page: Page, button: str) -> Any:
    """Click a consent button; return the response of our callback that follows."""
    with page.expect_response(lambda r: "/wechat/oauth/callback" in r.url) as caught:
        page.click(button)
    return caught.value


def test_login_reload_refresh_and_replay(
    site: str,
    fake: FakeWeChat,
    fake_server: FakeWeChatServer,
    new_context: Callable[[], BrowserContext],
) -> None:
    page = new_context().new_page()
    open_consent_page(page, site, fake_server)
    assert "Alice" in page.inner_text("#user")
    callback = click_and_catch_callback(page, "#allow")
    assert callback.status == 302
    page.wait_for_url(re.compile(re.escape(f"{site}/web/profile")))
    assert page.inner_text("#nickname") == "Alice"
    avatar = page.get_attribute("#avatar", "src")
    assert avatar is not None and avatar.startswith("https://thirdwx.qlogo.cn/")
    counted = dict(fake.calls)
    assert counted["/connect/oauth2/authorize"] == 1
    assert counted["/sns/oauth2/access_token"] == 1

    # A reload stays logged in without another trip to WeChat.
    response = page.reload()
    assert response is not None and response.status == 200
    assert page.inner_text("#nickname") == "Alice"
    assert dict(fake.calls) == counted

    # The cookie is HttpOnly, SameSite=Lax: scripts cannot read it.
    cookie = next(c for c in page.context.cookies() if c["name"] == "wafer_web")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    assert "wafer_web" not in page.evaluate("document.cookie")

    # The callback URL used again, in another browser: refused, readably.
    other = new_context().new_page()
    replay = other.goto(callback.url)
    assert replay is not None and replay.status == 400
    assert other.inner_text("h1") == "WeChat login did not complete"
    assert "already used" in other.inner_text("#message")
    assert not [c for c in other.context.cookies() if c["name"] == "wafer_web"]

    # After the access token expires the page still works: the token is refreshed.
    fake.advance(7201)
    response = page.reload()
    assert response is not None and response.status == 200
    assert page.inner_text("#nickname") == "Alice"
    assert fake.calls["/sns/oauth2/refresh_token"] == 1
    assert fake.calls["/connect/oauth2/authorize"] == 1


def test_a_tampered_state_gets_an_error_page(
    site: str, fake_server: FakeWeChatServer, new_context: Callable[[], BrowserContext]
) -> None:
    page = new_context().new_page()
    open_consent_page(page, site, fake_server)
    page.eval_on_selector("input[name=state]", "e => { e.value = e.value.slice(0, -4) + 'AAAA'; }")
    callback = click_and_catch_callback(page, "#allow")
    assert callback.status == 400
    assert page.inner_text("h1") == "WeChat login did not complete"
    assert "invalid" in page.inner_text("#message")
    assert not [c for c in page.context.cookies() if c["name"] == "wafer_web"]


def test_deny_gets_an_error_page(
    site: str, fake_server: FakeWeChatServer, new_context: Callable[[], BrowserContext]
) -> None:
    page = new_context().new_page()
    open_consent_page(page, site, fake_server)
    callback = click_and_catch_callback(page, "#deny")
    assert callback.status == 400
    assert "declined" in page.inner_text("#message")
    page.click("#retry")  # "Log in again": back to the page, and so to WeChat again
    page.wait_for_url(re.compile(re.escape(f"{fake_server.url}/connect/oauth2/authorize?")))
