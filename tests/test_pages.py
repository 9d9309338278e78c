"""The web login's own pages, without a server: language choice, escaping, words, hooks.

Over HTTP they are checked in test_weblogin / test_weblogin_csrf, and at a phone's size in
headless Chromium in test_pages_mobile.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from wafer_py import WaferAuth
from wafer_py.exceptions import (
    ConsentDenied,
    InvalidState,
    StateExpired,
    StoreUnavailable,
    WaferError,
    WeChatUnavailable,
)
from wafer_py.web.login import WebAnswer, WebLogin
from wafer_py.web.pages import (
    HTML_HEADERS,
    confirm_page_html,
    error_page_html,
    page_language,
    who_label,
)
from wafer_py.web.texts import TEXTS, PageTexts, known_reasons


@pytest.mark.parametrize(
    ("header", "lang"),
    [
        (None, "zh"),
        ("", "zh"),
        ("*", "zh"),
        ("zh-CN", "zh"),
        ("zh-Hans-CN,zh;q=0.9", "zh"),
        ("en-US,en;q=0.9", "en"),
        ("EN-us", "en"),
        ("en", "en"),
        ("en;q=0", "zh"),
        ("fr-FR,fr;q=0.9", "zh"),
        ("fr-FR,fr;q=0.9,en;q=0.1", "en"),
        ("zh-CN,zh;q=0.9,en;q=0.8", "zh"),
        ("en;q=0.8,zh-CN;q=0.9", "zh"),
        ("zh;q=0.5, en;q=0.7", "en"),
        ("en, zh", "en"),  # a tie: the first listed
        ("zh, en", "zh"),
        ("en;q=2", "zh"),  # out of range: ignored
        ("en;q=nan", "zh"),
        ("en;q=abc", "zh"),
        ("en ; Q=0.5", "en"),
        ("english", "zh"),
        ("en-", "en"),
        (",,;;=", "zh"),
    ],
)
def test_page_language(header: str | None, lang: str) -> None:
    assert page_language(header) == lang


def test_error_pages_say_what_happened_and_what_to_do() -> None:
    texts = PageTexts()
    zh = error_page_html(texts, "zh", StateExpired(), "/p?a=1&b=2", 400)
    assert '<html lang="zh-CN">' in zh
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in zh
    assert "PingFang SC" in zh and "Microsoft YaHei" in zh
    assert '<p id="message">这个登录链接已过期。</p>' in zh
    assert '<a id="retry" class="btn primary" href="/p?a=1&amp;b=2">重新登录</a>' in zh
    assert "state_expired" in zh
    en = error_page_html(texts, "en", StateExpired(), "/p", 400)
    assert '<html lang="en">' in en
    assert '<p id="message">This login link has expired; please start again.</p>' in en
    assert ">Log in again</a>" in en
    later = error_page_html(texts, "en", WeChatUnavailable(), "/p", 503)
    assert "Wait a moment" in later and ">Try again</a>" in later
    assert ">重试</a>" in error_page_html(texts, "zh", StoreUnavailable(), "/p", 503)


def test_a_chinese_sentence_for_every_error_the_pages_can_show() -> None:
    # Looked up along the MRO: every wafer_py error has at least the generic sentence,
    # and each of the web login's own has its own.
    texts = PageTexts()
    for exc in (InvalidState(), StateExpired(), ConsentDenied(), WaferError()):
        row = TEXTS["zh"][f"reason.{exc.reason}"]
        assert texts.what_happened(exc, "zh") == row
    assert texts.what_happened(StoreUnavailable("secret detail"), "zh") == (
        "服务器暂时无法保存登录状态。"
    )
    rows = [key.removeprefix("reason.") for key in TEXTS["zh"] if key.startswith("reason.")]
    assert rows and set(rows) <= known_reasons()  # no row for a reason that does not exist


def test_everything_is_escaped() -> None:
    texts = PageTexts()
    nasty = '<script>alert("x")</script>'
    page = confirm_page_html(texts, "en", nasty, nasty, '/cb"><script>', '"><script>')
    assert "<script>" not in page and "&lt;script&gt;" in page
    error = error_page_html(texts, "en", InvalidState(nasty), '/"><script>', 400)
    assert "<script>" not in error
    overridden = PageTexts({"zh": {"error.help": "<b>客服</b>"}})
    assert "<b>" not in error_page_html(overridden, "zh", InvalidState(), "/", 400)


def test_who_names_a_silent_login_by_its_openids_end() -> None:
    texts = PageTexts()
    assert who_label(texts, "zh", "", "oABCDEFGHwxyz") == "微信用户 …wxyz"
    assert who_label(texts, "en", "", "oABCDEFGHwxyz") == "the WeChat user …wxyz"
    assert who_label(texts, "en", "Alice", "oABCDEFGHwxyz") == "Alice"


def test_the_confirmation_page_in_both_languages() -> None:
    texts = PageTexts()
    zh = confirm_page_html(texts, "zh", "Mallory", "Alice", "/wechat/oauth/callback", "tok")
    assert '<h1 id="title">以 <span id="wechat-user">Mallory</span> 的身份继续？</h1>' in zh
    assert '<p id="current">本浏览器当前登录的是 Alice，继续将退出该账号。</p>' in zh
    assert '<form method="post" action="/wechat/oauth/callback">' in zh
    assert '<input type="hidden" name="token" value="tok">' in zh
    en = confirm_page_html(texts, "en", "Mallory", None, "/cb", "tok")
    assert '<h1 id="title">Continue as <span id="wechat-user">Mallory</span>?</h1>' in en
    assert 'id="current"' not in en and ">Start over</button>" in en


def test_texts_can_be_overridden_and_mistakes_stop_at_start(
    make_auth: Callable[..., WaferAuth],
) -> None:
    auth = make_auth()
    login = WebLogin.from_auth(
        auth,
        page_texts={
            "zh": {"error.help": "仍有问题请联系客服。", "reason.state_expired": "链接超时了。"},
            "en": {"reason.state_expired": "That link timed out."},
        },
    )
    zh = login.error_page(StateExpired(), "/p", "zh").body.decode()
    assert "仍有问题请联系客服。" in zh and "链接超时了。" in zh
    assert "That link timed out." in login.error_page(StateExpired(), "/p", "en").body.decode()
    # an English row is for that reason only: a subclass keeps its own message
    assert "invalid" in login.error_page(InvalidState(), "/p", "en").body.decode()
    login.close()
    with pytest.raises(ValueError, match="unknown language 'fr'"):
        WebLogin.from_auth(auth, page_texts={"fr": {}})
    with pytest.raises(ValueError, match=r"'error\.hlep'.*did you mean 'error\.help'"):
        WebLogin.from_auth(auth, page_texts={"zh": {"error.hlep": "x"}})
    with pytest.raises(ValueError, match=r"'reason\.nope'"):
        WebLogin.from_auth(auth, page_texts={"en": {"reason.nope": "x"}})


def test_on_error_gets_the_language(make_auth: Callable[..., WaferAuth]) -> None:
    seen: list[tuple[str, str, str]] = []

    def on_error(exc: WaferError, next_path: str, lang: str) -> WebAnswer:
        seen.append((exc.reason, next_path, lang))
        return WebAnswer(418, [("Content-Type", "text/plain")], b"custom")

    login = WebLogin.from_auth(make_auth(), on_error=on_error)
    answer = login.finish({"next": "/p"}, accept_language="en-US,en;q=0.9")
    assert answer.status == 418 and seen == [("invalid_state", "/p", "en")]
    login.finish({"next": "/q"})
    assert seen[-1] == ("invalid_state", "/q", "zh")
    login.close()


def test_the_pages_headers() -> None:
    assert ("Vary", "Accept-Language") in HTML_HEADERS
    assert ("Cache-Control", "no-store") in HTML_HEADERS
