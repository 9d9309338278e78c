"""The pages wafer_py serves, at a phone's size in headless Chromium posing as WeChat's
in-app browser (375x667 CSS pixels, 2x, touch, a MicroMessenger user agent), in Chinese
and in English: no horizontal scroll (also at 320px), the main button at least 44px high
and on the first screen, the right language. Each page is saved as a PNG in the test's
tmp dir, and also under ``$WAFER_SCREENSHOTS`` when that names a directory.

The Chromium fixture is test_browser_oauth's (``/usr/bin/chromium``, nothing downloaded;
under ``CI=true`` a missing Chromium fails).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, cast

import pytest

from tests import test_browser_oauth as browser_tests
from tests.support.servers import serve_example
from tests.test_weblogin_csrf import mallorys_callback
from wafer_py import WaferAuth
from wafer_py.exceptions import WeChatUnavailable
from wafer_py.fakewechat import FakeWeChat, FakeWeChatServer
from wafer_py.web.pages import error_page_html
from wafer_py.web.texts import PageLang, PageTexts

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page

pytestmark = pytest.mark.browser

chromium = browser_tests.chromium

WIDTH, HEIGHT = 375, 667
_ANDROID_WECHAT = (
    "Mozilla/5.0 (Linux; Android 13; Pixel 7 Build/TQ3A.230901.001; wv) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Version/4.0 Chrome/116.0.0.0 Mobile Safari/537.36 XWEB/1160065 "
    "MMWEBSDK/20231202 MMWEBID/2247 MicroMessenger/8.0.47.2560(0x28002F35) WeChat/arm64 "
    "Weixin NetType/WIFI Language/{lang} ABI/arm64"
)
PHONES = {
    "zh": ("zh-CN", "zh-CN,zh;q=0.9", _ANDROID_WECHAT.format(lang="zh_CN")),
    "en": ("en-US", "en-US,en;q=0.9", _ANDROID_WECHAT.format(lang="en")),
}
HTML_LANG = {"zh": "zh-CN", "en": "en"}
CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture
def phone(chromium: Browser) -> Iterator[Callable[[str], BrowserContext]]:
    """Fresh phone profiles in a language, which reach nothing but 127.0.0.1."""
    made: list[BrowserContext] = []

    def make(lang: str) -> BrowserContext:
        locale, accept_language, user_agent = PHONES[lang]
        context = chromium.new_context(
            viewport={"width": WIDTH, "height": HEIGHT},
            device_scale_factor=2,
            is_mobile=True,
            has_touch=True,
            user_agent=user_agent,
            locale=locale,
            extra_http_headers={"Accept-Language": accept_language},
        )
        context.set_default_timeout(15_000)
        context.route(browser_tests.NOT_LOOPBACK, lambda route: route.abort())
        made.append(context)
        return context

    yield make
    for context in made:
        context.close()


@pytest.fixture
def site(
    make_auth: Callable[..., WaferAuth], fake: FakeWeChat, fake_server: FakeWeChatServer
) -> Iterator[str]:
    fake.oauth.set_profile("mallory", nickname="Mallory")
    auth = make_auth(open_base=fake_server.url, clock=fake.now)
    with serve_example("starlette", auth) as url:
        yield url


def check_page(page: Page, lang: str, main: str | None, says: str, shot: Path) -> None:
    """The page fits the phone, speaks ``lang``, says ``says`` and has a big ``main``."""
    assert page.evaluate("window.innerWidth") == WIDTH  # the viewport meta took effect
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert page.evaluate("document.documentElement.lang") == HTML_LANG[lang]
    assert says in page.inner_text("body")
    title = page.inner_text("h1")
    assert bool(CJK.search(title)) == (lang == "zh"), title
    size = page.evaluate("parseFloat(getComputedStyle(document.body).fontSize)")
    assert size >= 16
    if main is not None:
        box = page.locator(main).bounding_box()
        assert box is not None
        assert box["height"] >= 44 and box["width"] >= 44, box
        assert box["y"] + box["height"] <= HEIGHT, box  # on the first screen
    page.screenshot(path=str(shot), full_page=True)
    keep = os.environ.get("WAFER_SCREENSHOTS")
    if keep and Path(keep).is_dir():
        shutil.copy(shot, Path(keep) / shot.name)
    page.set_viewport_size({"width": 320, "height": 568})  # the narrowest phones
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    page.set_viewport_size({"width": WIDTH, "height": HEIGHT})


WORDS = {
    "zh": {
        "consent": "微信授权登录",
        "confirm": "以 Mallory 的身份继续",
        "current": "本浏览器当前登录的是 Alice",
        "error": "这个登录链接无效或已失效",
        "wechat-error": "appid不能为空",
        "later": "暂时无法连接微信",
    },
    "en": {
        "consent": "Log in with WeChat",
        "confirm": "Continue as Mallory",
        "current": "This browser is signed in as Alice",
        "error": "The login link has no state",
        "wechat-error": "appid is empty",
        "later": "WeChat is unreachable",
    },
}


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_every_page_on_a_phone(
    lang: str,
    site: str,
    fake_server: FakeWeChatServer,
    phone: Callable[[str], BrowserContext],
    tmp_path: Path,
) -> None:
    words = WORDS[lang]
    page = phone(lang).new_page()

    # WeChat's consent page (the fake's), then logged in as Alice.
    page.goto(f"{site}/web/profile")
    page.wait_for_url(re.compile(re.escape(f"{fake_server.url}/connect/oauth2/authorize?")))
    check_page(page, lang, "#allow", words["consent"], tmp_path / f"consent-{lang}.png")
    page.click("#allow")
    page.wait_for_url(re.compile(re.escape(f"{site}/web/profile")))
    assert page.inner_text("#nickname") == "Alice"

    # A login this browser did not start: the page asking to continue.
    response = page.goto(mallorys_callback(site))
    assert response is not None and response.status == 200
    assert response.headers["vary"] == "Accept-Language"
    check_page(page, lang, "#continue", words["confirm"], tmp_path / f"confirm-{lang}.png")
    assert words["current"] in page.inner_text("#current")
    second = page.locator("#start-over").bounding_box()
    assert second is not None and second["height"] >= 44
    page.click("#start-over")
    page.wait_for_url(re.compile(re.escape(f"{site}/web/profile")))
    assert page.inner_text("#nickname") == "Alice"

    # A broken callback: the error page, whose button starts over.
    response = page.goto(f"{site}/wechat/oauth/callback?next=%2Fweb%2Fprofile")
    assert response is not None and response.status == 400
    check_page(page, lang, "#retry", words["error"], tmp_path / f"error-{lang}.png")
    page.click("#retry")
    page.wait_for_url(re.compile(re.escape(f"{site}/web/profile")))

    # The same page for trouble on our side (a 5xx: "wait, then try again").
    later = error_page_html(PageTexts(), cast("PageLang", lang), WeChatUnavailable(), "/", 503)
    page.set_content(later)
    check_page(page, lang, "#retry", words["later"], tmp_path / f"error-503-{lang}.png")

    # WeChat's own error page (the fake's): no button, as on WeChat.
    page.goto(f"{fake_server.url}/connect/oauth2/authorize?response_type=code")
    check_page(page, lang, None, words["wechat-error"], tmp_path / f"wechat-error-{lang}.png")
