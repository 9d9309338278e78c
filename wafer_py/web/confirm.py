"""Login CSRF: a callback from a browser that did not start the login asks its user first.

A callback URL made by an attacker's WeChat and opened in a victim's browser must not log
that browser in as the attacker. So a callback whose browser holds the nonce the state
was issued for opens the web session at once; any other (no cookie, another browser,
WeChat's in-app browser having dropped it) exchanges the single-use code, keeps the
result sealed in the store's entries for ``confirm_max_age`` seconds under a random
token, and answers a page that names the WeChat user and asks to continue (a POST of that
token, honoured only with this browser's nonce cookie, once) or to start over. The
browser's existing web session stays until the user continues.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

from ..exceptions import InvalidState, StateReplayed, WaferError
from ..stores.base import call_store
from .access import WebAnswer, local_path, redirect
from .grants import OAuthToken
from .pages import HTML_HEADERS, confirm_page_html, page_language, who_label
from .records import PendingLogin, is_random, pending_key, usable_nonce
from .state import browser_digest
from .texts import PageLang

if TYPE_CHECKING:
    from .login import WebLogin

__all__ = ["CONFIRM_BODY_LIMIT", "ask_to_confirm", "answer_confirmation"]

logger = logging.getLogger("wafer_py")

#: The largest confirmation form read (it holds a token and a button's name).
CONFIRM_BODY_LIMIT = 4096

_FRAMING = [
    ("X-Frame-Options", "DENY"),  # no clickjacking of the confirm button
    ("Content-Security-Policy", "frame-ancestors 'none'"),
]


def ask_to_confirm(
    login: WebLogin,
    token: OAuthToken,
    nickname: str,
    avatar: str,
    next_path: str,
    cookie: str | None,
    nonce: str | None,
    secure: bool,
    base_url: str,
    lang: PageLang,
) -> WebAnswer:
    """Hold the exchanged login under a random token; answer the page asking to confirm."""
    logger.info(
        "wafer_py: web login callback from a browser that did not start it; "
        "asking its user to confirm"
    )
    browser = usable_nonce(nonce) or secrets.token_urlsafe(18)
    handle = secrets.token_urlsafe(24)
    key = pending_key(handle)
    now = login.clock()
    box = login.secrets
    pending = PendingLogin(
        appid=login.oauth.appid,
        browser=browser_digest(browser).hex(),
        next=next_path,
        openid=token.openid,
        scope=token.scope or "snsapi_base",
        unionid=token.unionid,
        nickname=nickname,
        avatar=avatar,
        access=box.seal(token.access_token, context=key),
        access_expires_at=now + token.expires_in,
        refresh=box.seal(token.refresh_token, context=key),
    )
    call_store(login.store.set_entry, key, pending.dumps(), expires_at=now + login.confirm_max_age)
    current = login.cookies.read(cookie)
    texts = login.texts
    body = confirm_page_html(
        texts,
        lang,
        who_label(texts, lang, nickname, token.openid),
        None if current is None else who_label(texts, lang, current.nickname, current.openid),
        urlsplit(login.public_url or base_url).path.rstrip("/") + login.callback_path,
        handle,
    )
    headers = [*HTML_HEADERS, *_FRAMING, login.cookies.nonce(browser, secure)]
    return WebAnswer(200, headers, body.encode("utf-8"))


def answer_confirmation(
    login: WebLogin,
    body: bytes,
    *,
    cookie: str | None,
    secure: bool,
    nonce: str | None,
    accept_language: str | None,
) -> WebAnswer:
    """Answer the POST of the confirmation page's form (see :meth:`WebLogin.confirm`)."""
    if len(body) > CONFIRM_BODY_LIMIT:
        return _too_large()
    form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
    next_path = "/"
    lang = page_language(accept_language)
    try:
        token = form.get("token", "")
        key = pending_key(token)
        pending = _load(login, key) if is_random(token) else None
        if pending is None:
            raise InvalidState(
                "this confirmation has expired or was already used; please start again"
            )
        next_path = local_path(pending.next)
        browser = usable_nonce(nonce)
        shown_here = (
            bool(browser)
            and hmac.compare_digest(pending.browser, browser_digest(browser).hex())
            and hmac.compare_digest(pending.appid, login.oauth.appid)
        )
        if form.get("action") != "continue":  # start over: changes nothing elsewhere
            if shown_here:
                call_store(login.store.delete_entry, key)
            return redirect(next_path, status=303)
        if not shown_here:
            raise InvalidState(
                "this confirmation was opened in another browser; please start again"
            )
        now = login.clock()
        if not call_store(
            login.store.acquire_lock,
            f"wafer-web-confirm:{key}",
            secrets.token_hex(8),
            ttl=login.confirm_max_age + 1,
            now=now,
        ):
            raise StateReplayed("this confirmation was already used; please start again")
        call_store(login.store.delete_entry, key)
        oauth_token = _token(login, pending, key, now)
        user = login.sessions.open(oauth_token, pending.nickname, pending.avatar)
        login.sessions.end(login.cookies.read(cookie))
    except WaferError as exc:
        logger.info("wafer_py: web login confirmation refused: %s", exc.reason)
        return login.on_error(exc, next_path, lang)
    return redirect(next_path, login.cookies.session(user, secure), status=303)


def _load(login: WebLogin, key: str) -> PendingLogin | None:
    text = call_store(login.store.get_entry, key, now=login.clock())
    return None if text is None else PendingLogin.loads(text)


def _token(login: WebLogin, pending: PendingLogin, key: str, now: float) -> OAuthToken:
    return OAuthToken(
        access_token=login.sessions.unseal(pending.access, key),
        refresh_token=login.sessions.unseal(pending.refresh, key),
        openid=pending.openid,
        scope=pending.scope,
        expires_in=max(int(pending.access_expires_at - now), 0),
        unionid=pending.unionid,
    )


def _too_large() -> WebAnswer:
    return WebAnswer(
        413,
        [("Content-Type", "text/plain; charset=utf-8"), ("Cache-Control", "no-store")],
        b"request body too large\n",
    )
