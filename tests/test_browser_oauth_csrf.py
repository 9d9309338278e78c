"""Web login CSRF in a real browser (headless Chromium, as in test_browser_oauth): a
callback URL made by Mallory's WeChat, opened in Alice's browser, leaves it Alice's; the
page it shows works with a click; and Chromium really withholds the SameSite=Lax nonce
from a cross-site form, so such a form cannot press "continue" for her.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import pytest

from tests import test_browser_oauth as browser_tests
from tests.support.servers import serve_example
from tests.test_browser_oauth import click_and_catch_callback, open_consent_page
from wafer_py import WaferAuth
from wafer_py.fakewechat import FakeWeChat, FakeWeChatServer

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Page, Route

pytestmark = pytest.mark.browser

ATTACKER = "http://attacker.test/"

# The Chromium fixtures of test_browser_oauth, shared.
chromium = browser_tests.chromium
new_context = browser_tests.new_context


@pytest.fixture(params=["starlette", "flask"])
def site(
    request: pytest.FixtureRequest,
    make_auth: Callable[..., WaferAuth],
    fake: FakeWeChat,
    fake_server: FakeWeChatServer,
) -> Iterator[str]:
    fake.oauth.set_profile("mallory", nickname="Mallory")
    auth = make_auth(open_base=fake_server.url, clock=fake.now)
    with serve_example(str(request.param), auth) as url:
        yield url


def log_in_as_alice(page: Page, site: str, fake_server: FakeWeChatServer) -> None:
    open_consent_page(page, site, fake_server)
    assert click_and_catch_callback(page, "#allow").status == 302
    page.wait_for_url(re.compile(re.escape(f"{site}/web/profile")))
    assert page.inner_text("#nickname") == "Alice"


def mallorys_callback(
    make_context: Callable[[], BrowserContext], site: str, fake_server: FakeWeChatServer
) -> str:
    """Mallory authorizes in her own browser and keeps the callback URL unopened."""
    context = make_context()
    context.add_cookies([{"name": "fakewechat_user", "value": "mallory", "url": fake_server.url}])
    page = context.new_page()
    caught: list[str] = []

    def keep(route: Route) -> None:
        # Press "allow" at the fake, but keep its redirect to our callback, unfollowed.
        answer = route.fetch(max_redirects=0)
        caught.append(answer.headers["location"])
        route.fulfill(status=200, content_type="text/plain", body="kept")

    page.route(re.compile(r".*/connect/oauth2/authorize/confirm.*"), keep)
    open_consent_page(page, site, fake_server)
    assert "Mallory" in page.inner_text("#user")
    page.click("#allow")
    page.wait_for_load_state()
    assert caught and "/wechat/oauth/callback?" in caught[0], caught
    return caught[0]


def test_alice_opens_mallorys_callback_and_starts_over(
    site: str, fake_server: FakeWeChatServer, new_context: Callable[[], BrowserContext]
) -> None:
    alice = new_context().new_page()
    log_in_as_alice(alice, site, fake_server)
    response = alice.goto(mallorys_callback(new_context, site, fake_server))
    assert response is not None and response.status == 200
    assert alice.inner_text("#wechat-user") == "Mallory"
    assert "Alice" in alice.inner_text("#current")
    alice.click("#start-over")
    alice.wait_for_url(re.compile(re.escape(f"{site}/web/profile")))
    assert alice.inner_text("#nickname") == "Alice"


def test_continue_is_a_click_away_but_only_for_this_browser(
    site: str, fake_server: FakeWeChatServer, new_context: Callable[[], BrowserContext]
) -> None:
    alice = new_context().new_page()
    log_in_as_alice(alice, site, fake_server)
    alice.goto(mallorys_callback(new_context, site, fake_server))
    token = alice.get_attribute("input[name=token]", "value")
    assert token

    # A cross-site page auto-posting that very form (say Mallory guessed the token):
    # Chromium sends no SameSite=Lax nonce with it, so it is refused.
    def attacker_page(route: Route) -> None:
        route.fulfill(
            content_type="text/html",
            body=(
                f'<form id="f" method="post" action="{site}/wechat/oauth/callback">'
                f'<input name="token" value="{token}">'
                '<input name="action" value="continue"></form>'
                "<script>document.getElementById('f').submit()</script>"
            ),
        )

    cross = alice.context.new_page()
    cross.route(ATTACKER, attacker_page)
    with cross.expect_response(lambda r: "/wechat/oauth/callback" in r.url) as caught:
        cross.goto(ATTACKER)
    assert caught.value.status == 400
    cross.wait_for_load_state()
    assert "another browser" in cross.inner_text("#message")
    cross.goto(f"{site}/web/profile")
    assert cross.inner_text("#nickname") == "Alice"

    # The page itself (same site) carries the nonce: continuing is Alice's own choice.
    alice.click("#continue")
    alice.wait_for_url(re.compile(re.escape(f"{site}/web/profile")))
    assert alice.inner_text("#nickname") == "Mallory"
