"""The browser side of web OAuth: WeChat's authorize page and its consent form.

``GET /connect/oauth2/authorize?appid&redirect_uri&response_type=code&scope&state``
(``#wechat_redirect`` never reaches a server):

* ``snsapi_base``: an immediate 302 to ``redirect_uri?code=CODE&state=STATE``;
* ``snsapi_userinfo``: an HTML consent page whose "allow" button posts to
  ``/connect/oauth2/authorize/confirm`` and comes back with a code, and whose "deny"
  button comes back with ``?state=STATE`` and no code;
* a bad request is an HTML error page with WeChat's code (10003 redirect_uri host not
  allowed, 10005 scope not permitted, 10010 scope empty, 10011 redirect_uri empty,
  10012 appid empty, 10013 bad state, 40013 unknown AppID) and is never sent to the
  server, as on WeChat.

The "logged-in WeChat user" is ``alice`` unless the authorize URL has a ``user`` query
parameter or the browser a ``fakewechat_user`` cookie. The pages are phone-sized, in
Chinese or (by ``Accept-Language``) English, in the same frame as wafer_py's own.
"""

from __future__ import annotations

import html
import re
from http.cookies import CookieError, SimpleCookie
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

from ..web.pages import page_language, render_page
from ..web.texts import PageLang
from .server import Request, Response, Router

if TYPE_CHECKING:
    from .oauthbook import OAuthBook

__all__ = ["AUTHORIZE", "CONFIRM", "USER_COOKIE", "register"]

AUTHORIZE = "/connect/oauth2/authorize"
CONFIRM = "/connect/oauth2/authorize/confirm"
USER_COOKIE = "fakewechat_user"

_HTML = "text/html; charset=utf-8"
_STATE = re.compile(r"[A-Za-z0-9]{0,128}")
_PAGE_ERRORS: dict[int, tuple[str, str]] = {
    10003: ("redirect_uri域名与后台配置不一致", "redirect_uri host is not an authorized domain"),
    10005: ("此公众号并没有这些scope的权限", "no permission for this scope"),
    10010: ("scope不能为空", "scope is empty"),
    10011: ("redirect_uri不能为空", "redirect_uri is empty"),
    10012: ("appid不能为空", "appid is empty"),
    10013: ("state参数错误", "state must be at most 128 letters and digits"),
    40013: ("invalid appid", "invalid appid"),
}
_WORDS: dict[PageLang, dict[str, str]] = {
    "zh": {
        "error.title": "微信 - 错误",
        "error.heading": "出错了",
        "bad_request": "请求参数错误",
        "response_type": "response_type 必须是 code",
        "not_utf8": "表单不是 UTF-8 编码",
        "title": "微信授权",
        "heading": "微信授权登录",
        "asks": "{host}（AppID {appid}）申请获得以下权限：",
        "scope": "获得你的公开信息（昵称、头像等）",
        "user": "当前微信用户：",
        "allow": "允许",
        "deny": "拒绝",
    },
    "en": {
        "error.title": "WeChat - Error",
        "error.heading": "Something went wrong",
        "bad_request": "bad request",
        "response_type": "response_type must be code",
        "not_utf8": "the form is not UTF-8",
        "title": "WeChat authorization",
        "heading": "Log in with WeChat",
        "asks": "{host} (AppID {appid}) requests:",
        "scope": "your public profile (nickname, avatar)",
        "user": "Signed in as:",
        "allow": "Allow",
        "deny": "Deny",
    },
}


def _page(lang: PageLang, title: str, body: str, status: int = 200) -> Response:
    text = render_page(lang, title, body)
    return Response(
        status,
        text.encode("utf-8"),
        _HTML,
        {"Cache-Control": "no-store", "Vary": "Accept-Language"},
    )


def _error_page(request: Request, errcode: int | None, word: str = "") -> Response:
    lang = page_language(request.headers.get("accept-language"))
    words = _WORDS[lang]
    zh_en = _PAGE_ERRORS.get(errcode or 0)
    text = (zh_en[0] if lang == "zh" else zh_en[1]) if zh_en else words[word or "bad_request"]
    code = f'<p id="errcode" class="code">errcode: {errcode}</p>' if errcode is not None else ""
    return _page(
        lang,
        words["error.title"],
        '<div class="icon warn" aria-hidden="true">!</div>'
        f'<h1>{words["error.heading"]}</h1><p id="errmsg">{html.escape(text)}</p>{code}',
    )


def _redirect(location: str) -> Response:
    body = f'<a href="{html.escape(location)}">{html.escape(location)}</a>'
    return Response(
        302, body.encode("utf-8"), _HTML, {"Location": location, "Cache-Control": "no-store"}
    )


def _with_params(uri: str, params: list[tuple[str, str]]) -> str:
    parts = urlsplit(uri)
    extra = urlencode(params)
    query = f"{parts.query}&{extra}" if parts.query else extra
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


def _user(request: Request, fields: dict[str, str]) -> str:
    if fields.get("user"):
        return fields["user"]
    try:
        cookie = SimpleCookie(request.headers.get("cookie", ""))
    except CookieError:
        return "alice"
    morsel = cookie.get(USER_COOKIE)
    return morsel.value if morsel is not None and morsel.value else "alice"


def _check(book: OAuthBook, request: Request, fields: dict[str, str]) -> Response | None:
    """The error page for bad authorize parameters, or None if they are fine."""
    appid, redirect_uri = fields.get("appid", ""), fields.get("redirect_uri", "")
    scope, state = fields.get("scope", ""), fields.get("state", "")
    if not appid:
        return _error_page(request, 10012)
    if appid not in book.state.apps:
        return _error_page(request, 40013)
    if not redirect_uri:
        return _error_page(request, 10011)
    parts = urlsplit(redirect_uri)
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or not book.domain_allowed(appid, parts.hostname)
    ):
        return _error_page(request, 10003)
    if fields.get("response_type") != "code":
        return _error_page(request, None, "response_type")
    if not scope:
        return _error_page(request, 10010)
    if scope not in ("snsapi_base", "snsapi_userinfo"):
        return _error_page(request, 10005)
    if not _STATE.fullmatch(state):
        return _error_page(request, 10013)
    return None


def authorize(book: OAuthBook, request: Request) -> Response:
    """``GET /connect/oauth2/authorize``: redirect at once, or show the consent page."""
    fields = dict(request.query)
    problem = _check(book, request, fields)
    if problem is not None:
        return problem
    appid, scope, state = fields["appid"], fields["scope"], fields.get("state", "")
    user = _user(request, fields)
    if scope == "snsapi_base":
        code = book.authorize(appid, user, scope)
        return _redirect(_with_params(fields["redirect_uri"], [("code", code), ("state", state)]))
    lang = page_language(request.headers.get("accept-language"))
    words = _WORDS[lang]
    nickname = book.profile(user, "zh_CN")["nickname"]
    hidden = "".join(
        f'<input type="hidden" name="{name}" value="{html.escape(fields.get(name, ""))}">'
        for name in ("appid", "redirect_uri", "response_type", "scope", "state")
    )
    hidden += f'<input type="hidden" name="user" value="{html.escape(user)}">'
    host = urlsplit(fields["redirect_uri"]).hostname or ""
    asks = html.escape(words["asks"])
    asks = asks.replace("{host}", html.escape(host)).replace("{appid}", html.escape(appid))
    return _page(
        lang,
        words["title"],
        (
            f"<h1>{words['heading']}</h1>"
            f'<p id="app">{asks}</p><ul><li>{words["scope"]}</li></ul>'
            f'<p>{words["user"]} <strong id="user">{html.escape(nickname)}</strong></p>'
            f'<form method="post" action="{CONFIRM}">{hidden}'
            '<button type="submit" name="decision" value="allow" id="allow" '
            f'class="btn primary">{words["allow"]}</button>'
            '<button type="submit" name="decision" value="deny" id="deny" '
            f'class="btn secondary">{words["deny"]}</button></form>'
        ),
    )


def confirm(book: OAuthBook, request: Request) -> Response:
    """``POST /connect/oauth2/authorize/confirm``: the consent form's answer."""
    try:
        form = {
            k: v[0]
            for k, v in parse_qs(request.body.decode("utf-8"), keep_blank_values=True).items()
        }
    except UnicodeDecodeError:
        return _error_page(request, None, "not_utf8")
    problem = _check(book, request, form)
    if problem is not None:
        return problem
    state = form.get("state", "")
    if form.get("decision") != "allow":
        return _redirect(_with_params(form["redirect_uri"], [("state", state)]))
    code = book.authorize(form["appid"], _user(request, form), form["scope"])
    return _redirect(_with_params(form["redirect_uri"], [("code", code), ("state", state)]))


def register(router: Router, book: OAuthBook) -> None:
    """Add the authorize page and its consent form to ``router``."""
    router.add("GET", AUTHORIZE, lambda request: authorize(book, request))
    router.add("POST", CONFIRM, lambda request: confirm(book, request))
