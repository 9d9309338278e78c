"""The words of the web login's pages, Chinese first, and the overrides an app may give.

One table per page language. ``reason.<reason>`` rows say in one sentence what happened
for an error's ``reason`` (looked up along its class's MRO); the English table has none by
default, because each error's own ``message`` is already an English sentence for a page.
``{who}``, ``{current}``, ``{tail}`` and ``{reason}`` are filled in (escaped) where a
text names a user or an error.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from types import MappingProxyType
from typing import Literal

from ..exceptions import WaferError

__all__ = ["PageLang", "PAGE_LANGS", "TEXTS", "PageTexts", "known_reasons"]

#: A page's language: Chinese (the default) or English.
PageLang = Literal["zh", "en"]
PAGE_LANGS: tuple[PageLang, ...] = ("zh", "en")

_ZH: dict[str, str] = {
    "error.title": "微信登录未完成",
    "error.next": "请点下方按钮重新登录。",
    "error.next_later": "请稍等片刻，再点下方按钮重试。",
    "error.retry": "重新登录",
    "error.retry_later": "重试",
    "error.help": "如果一直不成功，请关闭本页，从公众号菜单重新进入。",
    "error.code": "错误代码：{reason}",
    "confirm.title": "继续登录？",
    "confirm.heading": "以 {who} 的身份继续？",
    "confirm.why": "这次微信登录不是在本浏览器中发起的。"
    "如果链接是别人发给你的，请不要继续，点“重新开始”。",
    "confirm.current": "本浏览器当前登录的是 {current}，继续将退出该账号。",
    "confirm.continue": "以 {who} 的身份继续",
    "confirm.start_over": "重新开始",
    "who.openid": "微信用户 …{tail}",
    "reason.error": "出了点问题，登录没有完成。",
    "reason.web_login_failed": "微信登录没有完成。",
    "reason.web_session_expired": "网页登录已过期。",
    "reason.invalid_state": "这个登录链接无效或已失效。",
    "reason.state_expired": "这个登录链接已过期。",
    "reason.state_replayed": "这个登录链接已经用过了。",
    "reason.consent_denied": "微信没有授权这次登录（授权被拒绝）。",
    "reason.invalid_code": "微信没有接受这次登录的授权码（无效、过期或已用过）。",
    "reason.code_blocked": "微信拒绝了这个用户的登录。",
    "reason.rate_limited": "登录太频繁了。",
    "reason.scope_unauthorized": "这个公众号没有获取该信息的权限。",
    "reason.invalid_refresh_token": "微信登录已失效。",
    "reason.wechat_error": "暂时无法连接微信。",
    "reason.wechat_busy": "微信繁忙。",
    "reason.wechat_api_error": "微信拒绝了这次登录请求。",
    "reason.invalid_appid": "本网站的微信配置有误（AppID）。",
    "reason.invalid_appsecret": "本网站的微信配置有误（AppSecret）。",
    "reason.store_unavailable": "服务器暂时无法保存登录状态。",
    "reason.login_failed": "登录没有完成。",
    "reason.bad_request": "这次请求的格式有误。",
}

_EN: dict[str, str] = {
    "error.title": "WeChat login did not complete",
    "error.next": "Tap the button below to log in again.",
    "error.next_later": "Wait a moment, then tap the button below to try again.",
    "error.retry": "Log in again",
    "error.retry_later": "Try again",
    "error.help": "If it keeps failing, close this page and open it again from the "
    "official account.",
    "error.code": "Error code: {reason}",
    "confirm.title": "Continue with WeChat?",
    "confirm.heading": "Continue as {who}?",
    "confirm.why": "This WeChat login was not started in this browser. If someone sent "
    "you this link, do not continue: start over.",
    "confirm.current": "This browser is signed in as {current}; continuing signs that session out.",
    "confirm.continue": "Continue as {who}",
    "confirm.start_over": "Start over",
    "who.openid": "the WeChat user …{tail}",
}

#: The default words, per language (read-only).
TEXTS: Mapping[PageLang, Mapping[str, str]] = MappingProxyType(
    {"zh": MappingProxyType(_ZH), "en": MappingProxyType(_EN)}
)


def known_reasons() -> set[str]:
    """Every ``reason`` of wafer_py's error classes."""
    found, pending = set(), [WaferError]
    while pending:
        cls = pending.pop()
        found.add(cls.reason)
        pending.extend(cls.__subclasses__())
    return found


class PageTexts:
    """The default words with an app's ``overrides`` on top.

    ``overrides`` maps a language (``"zh"``, ``"en"``) to rows of :data:`TEXTS` (any
    ``reason.<reason>`` of a wafer_py error too), e.g.
    ``{"zh": {"error.help": "请联系客服：400-000-0000。"}}``. An unknown language or row is
    a :class:`ValueError` naming it, at start rather than on the first error page.
    """

    def __init__(self, overrides: Mapping[str, Mapping[str, str]] | None = None) -> None:
        allowed = set(_ZH) | {f"reason.{r}" for r in known_reasons()}
        tables: dict[str, dict[str, str]] = {"zh": dict(_ZH), "en": dict(_EN)}
        for lang, rows in (overrides or {}).items():
            if lang not in tables:
                raise ValueError(
                    f"page_texts: unknown language {lang!r} (known: {', '.join(PAGE_LANGS)})"
                )
            for key, text in rows.items():
                if key not in allowed:
                    close = difflib.get_close_matches(key, sorted(allowed), n=1)
                    hint = f"; did you mean {close[0]!r}?" if close else ""
                    raise ValueError(f"page_texts[{lang!r}]: unknown text {key!r}{hint}")
                if not isinstance(text, str):
                    raise ValueError(f"page_texts[{lang!r}][{key!r}] must be a string")
                tables[lang][key] = text
        self._tables = tables

    def __getitem__(self, where: tuple[PageLang, str]) -> str:
        lang, key = where
        return self._tables[lang][key]

    def what_happened(self, exc: WaferError, lang: PageLang) -> str:
        """One sentence for ``exc``: the table's row for its reason (or its nearest
        ancestor's); in English without such a row, the error's own message."""
        table = self._tables[lang]
        for cls in type(exc).__mro__:
            if not (isinstance(cls, type) and issubclass(cls, WaferError)):
                continue
            if lang == "en" and cls is not type(exc):
                break  # an English row for an ancestor would hide the precise message
            row = table.get(f"reason.{cls.reason}")
            if row is not None:
                return row
        message = exc.message.strip()
        return message[:1].upper() + message[1:] + ("" if message.endswith(".") else ".")
