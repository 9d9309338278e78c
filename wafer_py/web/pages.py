"""The HTML pages the web login serves itself, made for WeChat's in-app browser on a phone.

Each page is one column that fits a 320px-wide screen (no horizontal scroll), in the
system's Chinese font (PingFang SC, Microsoft YaHei, ...), with one large button for the
next step. The language follows ``Accept-Language`` (:func:`page_language`): Chinese unless
the browser prefers English; the answers carry ``Vary: Accept-Language``. The words are
in :mod:`wafer_py.web.texts`; every value that goes into a page is escaped.
"""

from __future__ import annotations

import html
import math

from ..exceptions import WaferError
from .texts import PageLang, PageTexts

__all__ = [
    "page_language",
    "render_page",
    "error_page_html",
    "confirm_page_html",
    "who_label",
    "HTML_HEADERS",
]

#: The headers of every page: HTML, never cached, chosen by the browser's language.
HTML_HEADERS: list[tuple[str, str]] = [
    ("Content-Type", "text/html; charset=utf-8"),
    ("Cache-Control", "no-store"),
    ("Vary", "Accept-Language"),
    ("Referrer-Policy", "no-referrer"),  # the callback's URL carries the code and state
]

_HTML_LANG = {"zh": "zh-CN", "en": "en"}

_STYLE = (
    "*{box-sizing:border-box}"
    "html{-webkit-text-size-adjust:100%;text-size-adjust:100%}"
    "body{margin:0;padding:24px 16px;background:#f7f7f7;color:#191919;"
    'font:17px/1.6 -apple-system,BlinkMacSystemFont,"PingFang SC","Hiragino Sans GB",'
    '"Microsoft YaHei","Noto Sans CJK SC","Source Han Sans SC","Helvetica Neue",Arial,'
    "sans-serif;overflow-wrap:anywhere;word-break:break-word}"
    "main{max-width:480px;margin:0 auto;padding:32px 20px 24px;background:#fff;"
    "border-radius:12px}"
    ".icon{width:56px;height:56px;margin:0 auto 16px;border-radius:50%;color:#fff;"
    "font:700 32px/56px Arial,sans-serif;text-align:center}"
    ".warn{background:#fa5151}.ask{background:#10aeff}"
    "h1{margin:0 0 16px;font-size:22px;line-height:1.4;text-align:center}"
    "p{margin:0 0 12px}"
    ".btn{display:block;width:100%;min-height:48px;margin:16px 0 0;padding:12px 16px;"
    "border:0;border-radius:8px;font:inherit;font-weight:600;text-align:center;"
    "text-decoration:none;cursor:pointer;-webkit-appearance:none;appearance:none}"
    ".primary{background:#07c160;color:#fff}"
    ".secondary{background:#f2f2f2;color:#191919}"
    ".note{margin-top:20px;color:#7f7f7f;font-size:14px}"
    ".code{color:#b2b2b2;font-size:12px;text-align:center}"
)


def page_language(accept_language: str | None) -> PageLang:
    """The page language for an ``Accept-Language`` header: ``"en"`` if English has the
    highest q-value among Chinese and English, else ``"zh"`` (no header, ``*``, neither).

    ``en-US,en;q=0.9`` gives English; ``zh-CN``, ``fr`` and ``en;q=0`` Chinese; on a tie the
    first listed wins.
    """
    best: PageLang = "zh"
    best_q = 0.0
    for item in (accept_language or "").split(",")[:32]:
        tag, _, params = item.partition(";")
        primary = tag.strip().lower().split("-")[0]
        q = 1.0
        for param in params.split(";"):
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value.strip())
                except ValueError:
                    q = 0.0
                if math.isnan(q) or not 0.0 <= q <= 1.0:
                    q = 0.0
        lang: PageLang | None = (
            "en" if primary == "en" else "zh" if primary in ("zh", "*") else None
        )
        if lang is not None and q > best_q:
            best, best_q = lang, q
    return best


def render_page(lang: PageLang, title: str, body: str) -> str:
    """A whole page: ``title`` (text, escaped here) and ``body`` (HTML, escaped by the
    caller) in the phone-sized column."""
    return (
        f'<!doctype html><html lang="{_HTML_LANG[lang]}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="format-detection" content="telephone=no">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body><main>{body}</main></body></html>"
    )


def _fill(text: str, **values: str) -> str:
    """``text`` escaped, with each ``{name}`` replaced by the HTML fragment given."""
    out = html.escape(text)
    for name, fragment in values.items():
        out = out.replace("{" + name + "}", fragment)
    return out


def who_label(texts: PageTexts, lang: PageLang, nickname: str, openid: str) -> str:
    """How a page names a WeChat user: the nickname, or (a silent ``snsapi_base`` login
    has none) the openid's end, which tells users apart."""
    return nickname or texts[lang, "who.openid"].replace("{tail}", openid[-4:])


def error_page_html(
    texts: PageTexts, lang: PageLang, exc: WaferError, next_path: str, status: int
) -> str:
    """The page for a failed web login: what happened, what to do, a button back to
    ``next_path`` (which starts a new login); for a 5xx, "wait, then try again"."""
    later = status >= 500
    esc = html.escape
    body = (
        '<div class="icon warn" aria-hidden="true">!</div>'
        f'<h1 id="title">{esc(texts[lang, "error.title"])}</h1>'
        f'<p id="message">{esc(texts.what_happened(exc, lang))}</p>'
        f'<p id="next">{esc(texts[lang, "error.next_later" if later else "error.next"])}</p>'
        f'<a id="retry" class="btn primary" href="{esc(next_path)}">'
        f"{esc(texts[lang, 'error.retry_later' if later else 'error.retry'])}</a>"
        f'<p id="help" class="note">{esc(texts[lang, "error.help"])}</p>'
        f'<p id="reason" class="code">{_fill(texts[lang, "error.code"], reason=esc(exc.reason))}'
        "</p>"
    )
    return render_page(lang, texts[lang, "error.title"], body)


def confirm_page_html(
    texts: PageTexts, lang: PageLang, who: str, current: str | None, action: str, token: str
) -> str:
    """The page asking to continue a login this browser did not start: it names the
    WeChat user (``who``) and the user this browser is signed in as (``current``), and
    posts ``token`` to ``action`` with ``action=continue`` or ``action=start-over``."""
    esc = html.escape
    span = f'<span id="wechat-user">{esc(who)}</span>'
    signed_in = (
        f'<p id="current">{_fill(texts[lang, "confirm.current"], current=esc(current))}</p>'
        if current
        else ""
    )
    body = (
        '<div class="icon ask" aria-hidden="true">?</div>'
        f'<h1 id="title">{_fill(texts[lang, "confirm.heading"], who=span)}</h1>'
        f'<p id="why">{esc(texts[lang, "confirm.why"])}</p>'
        f"{signed_in}"
        f'<form method="post" action="{esc(action)}">'
        f'<input type="hidden" name="token" value="{esc(token)}">'
        '<button type="submit" name="action" value="continue" id="continue" '
        f'class="btn primary">{_fill(texts[lang, "confirm.continue"], who=esc(who))}</button>'
        '<button type="submit" name="action" value="start-over" id="start-over" '
        f'class="btn secondary">{esc(texts[lang, "confirm.start_over"])}</button>'
        "</form>"
    )
    return render_page(lang, texts[lang, "confirm.title"], body)
