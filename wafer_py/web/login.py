"""Browser login for official-account web pages opened in WeChat, free of any framework.

:class:`WebLogin` turns a request's cookie into a :class:`WebUser` or into a redirect to
WeChat's authorize page, and turns WeChat's callback into a web session. The Flask,
Starlette and Django integrations only translate requests and :class:`WebAnswer` objects.

The browser holds a signed cookie (:mod:`.cookie`) naming its user and a random
web-session id; the OAuth tokens stay sealed in the store (:mod:`.sessions`). The OAuth
``state`` is signed, timed, single-use and bound to the browser that was sent to WeChat
(:mod:`.state`); a callback from any other browser asks its user to confirm
(:mod:`.confirm`).
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from ..config import WaferConfig
from ..crypto import Keyring, SecretBox
from ..exceptions import ConsentDenied, InvalidCode, WaferError
from ..serverkeys import server_keyring
from ..stores.base import call_store
from ..stores.entries import EntryStore, entry_store
from .access import USERINFO_SCOPE, WebAccess, WebAnswer, WebUser, local_path, redirect
from .confirm import CONFIRM_BODY_LIMIT, answer_confirmation, ask_to_confirm
from .cookie import WebCookies
from .errors import page_status
from .pages import HTML_HEADERS, error_page_html, page_language
from .records import REFRESH_TTL, usable_nonce
from .sessions import WebSessions
from .state import OAuthStateSigner, StateClaims
from .texts import PageLang, PageTexts

if TYPE_CHECKING:
    from ..auth import WaferAuth
    from ..stores.base import SessionStore
    from .grants import Lang, OAuthToken, OAuthUserInfo, Scope
    from .oauth import WeChatOAuth

__all__ = [
    "WebLogin",
    "WebUser",
    "WebAnswer",
    "WebAccess",
    "COOKIE_NAME",
    "CALLBACK_PATH",
    "CONFIRM_BODY_LIMIT",
    "local_path",
]

logger = logging.getLogger("wafer_py")

COOKIE_NAME = "wafer_web"
CALLBACK_PATH = "/wechat/oauth/callback"


class WebLogin:
    """Web login (official-account OAuth) for browser pages, with web sessions.

    ``store`` keeps the tokens (any :class:`~wafer_py.stores.EntryStore`); ``oauth``
    defaults to a :class:`~wafer_py.web.oauth.WeChatOAuth` for ``config``'s official account
    (``oauth_appid``, else the mini-program's). ``secret_keys`` (newest first, default
    ``config.secret_keys``) sign the cookie and the state; ``secret_box`` seals the tokens.
    ``public_url`` (``https://example.com``) fixes the callback's origin behind a proxy;
    otherwise the request's is used. ``cookie_secure`` None means "if ``public_url`` or
    the request is https" (behind a proxy, see docs/web-login.md on ``X-Forwarded-Proto``).
    ``confirm_max_age`` is how long a login that asks its user to confirm (a callback
    from a browser that did not start it) waits. Build one from a
    :class:`~wafer_py.auth.WaferAuth` with :meth:`from_auth`. ``users`` is the store of
    the mini-program's users (``from_auth`` gives the auth's): a web user with a
    ``unionid`` is linked to the mini-program user with the same one.

    The pages it serves (:mod:`wafer_py.web.pages`) are in Chinese, or in English when the
    request's ``Accept-Language`` prefers it. ``page_texts`` overrides their words
    (:class:`~wafer_py.web.texts.PageTexts`); ``on_error(exc, next_path, lang)`` replaces
    the error page altogether (``lang`` is ``"zh"`` or ``"en"``).
    """

    def __init__(
        self,
        config: WaferConfig | None = None,
        *,
        store: EntryStore,
        oauth: WeChatOAuth | None = None,
        secret_box: SecretBox | None = None,
        secret_keys: Keyring | Sequence[str] | None = None,
        clock: Callable[[], float] = time.time,
        callback_path: str = CALLBACK_PATH,
        public_url: str | None = None,
        cookie_name: str = COOKIE_NAME,
        cookie_secure: bool | None = None,
        session_max_age: int = REFRESH_TTL,
        state_max_age: int = 600,
        confirm_max_age: int = 300,
        refresh_margin: int = 60,
        lang: Lang = "zh_CN",
        on_error: Callable[[WaferError, str, PageLang], WebAnswer] | None = None,
        page_texts: Mapping[str, Mapping[str, str]] | None = None,
        users: SessionStore | None = None,
    ) -> None:
        self.config = config = config or WaferConfig()
        if not callback_path.startswith("/"):
            raise ValueError("callback_path must start with '/'")
        if public_url and not public_url.startswith(("https://", "http://")):
            raise ValueError("public_url must be an absolute http(s) URL (https://example.com)")
        if confirm_max_age <= 0:
            raise ValueError("confirm_max_age must be positive")
        if oauth is None:
            from .oauth import WeChatOAuth  # requests is imported only when needed

            oauth = WeChatOAuth.from_config(config)
        self.oauth = oauth
        self.store = store
        # No keys: as WaferAuth (none for a shared store; SQLite's key file; else random).
        if isinstance(secret_keys, Keyring):
            keys = secret_keys
        else:
            keys = server_keyring(
                secret_keys if secret_keys is not None else config.secret_keys, store
            )
        self.secrets = secret_box or SecretBox(keys)
        self.clock = clock
        self.callback_path = callback_path
        self.public_url = public_url.rstrip("/") if public_url else None
        self.confirm_max_age = confirm_max_age
        self.lang: Lang = lang
        #: The words of the pages (``page_texts`` over :data:`~wafer_py.web.texts.TEXTS`).
        self.texts = PageTexts(page_texts)
        self.on_error = on_error or self.error_page
        # The appid in the salt: a state of another official account sharing the keys fails.
        self.states = OAuthStateSigner(
            keys, max_age=state_max_age, clock=clock, salt=f"wafer_py.oauth-state:{oauth.appid}"
        )
        self.cookies = WebCookies(
            keys,
            name=cookie_name,
            max_age=session_max_age,
            nonce_max_age=state_max_age,
            secure=cookie_secure,
            public_url=self.public_url,
            clock=clock,
        )
        #: The web session's cookie, and the one holding the nonce of the browser that
        #: started a login (the adapters read both from the request).
        self.cookie_name, self.nonce_cookie_name = cookie_name, self.cookies.nonce_name
        self.sessions = WebSessions(
            store,
            oauth,
            self.secrets,
            clock=clock,
            refresh_margin=refresh_margin,
            lang=lang,
            users=users,
        )

    @classmethod
    def from_auth(cls, auth: WaferAuth, **options: Any) -> WebLogin:
        """A web login sharing ``auth``'s configuration, store, sealing keys and clock."""
        options.setdefault("secret_box", auth.secrets)
        options.setdefault("secret_keys", auth._keys)  # the keys auth settled on
        options.setdefault("clock", auth.clock)
        options.setdefault("users", auth.store)
        return cls(auth.config, store=entry_store(auth.store), **options)

    def __repr__(self) -> str:
        return f"WebLogin(appid={self.oauth.appid!r}, callback_path={self.callback_path!r})"

    def close(self) -> None:
        """Close the OAuth client (the store belongs to its owner)."""
        self.oauth.close()

    # -- the adapters' entry points ------------------------------------------------
    def guard(
        self,
        cookie: str | None,
        *,
        scope: Scope = "snsapi_base",
        next_path: str = "/",
        base_url: str = "",
        secure: bool = False,
        nonce: str | None = None,
        accept_language: str | None = None,
    ) -> WebAccess:
        """Let a request with a web session of ``scope`` through; redirect the rest.

        ``next_path`` is the page (path and query) to come back to and ``base_url`` the
        request's origin (``http://host:port``), used unless ``public_url`` is set.
        ``nonce`` is the request's nonce cookie: kept if it has one (two tabs logging in
        at once both come back as this browser), else a new one is set with the redirect.
        ``accept_language`` (the request's header) picks the error page's language.
        """
        try:
            user, headers = self.authenticate(cookie, secure=secure)
            if user is not None and user.has_scope(scope):
                return WebAccess(user, None, headers)
            browser = usable_nonce(nonce) or secrets.token_urlsafe(18)
            location = self.authorize_url(
                scope=scope, next_path=next_path, base_url=base_url, browser_nonce=browser
            )
        except WaferError as exc:  # the store is down: say so, do not send to WeChat
            lang = page_language(accept_language)
            return WebAccess(None, self.on_error(exc, local_path(next_path), lang))
        headers = [("Location", location), ("Cache-Control", "no-store"), *headers]
        return WebAccess(None, WebAnswer(302, [*headers, self.cookies.nonce(browser, secure)]))

    def authorize_url(
        self,
        *,
        scope: Scope = "snsapi_base",
        next_path: str = "/",
        base_url: str = "",
        browser_nonce: str = "",
    ) -> str:
        """WeChat's authorize URL for a login that comes back to ``next_path``.

        ``browser_nonce`` is the value of the nonce cookie set on the browser sent there
        (:meth:`guard` does both); without it the callback asks its user to confirm.
        """
        next_path = local_path(next_path)
        origin = self.public_url or base_url.rstrip("/")
        redirect_uri = f"{origin}{self.callback_path}?next={quote(next_path, safe='')}"
        state = self.states.issue(bound=next_path, browser=browser_nonce)
        return self.oauth.authorize_url(redirect_uri, state=state, scope=scope).url

    def finish(
        self,
        query: Mapping[str, str],
        *,
        cookie: str | None = None,
        secure: bool = False,
        nonce: str | None = None,
        base_url: str = "",
        accept_language: str | None = None,
    ) -> WebAnswer:
        """Answer WeChat's callback (a GET): a redirect with a new web session, a page
        asking to confirm, or an error page.

        ``cookie`` and ``nonce`` are the request's web-session and nonce cookies. Only a
        browser holding the nonce the state was issued for is logged in at once (and its
        previous web session ends); any other gets a page asking to confirm
        (:func:`~wafer_py.web.pages.confirm_page_html`), whose form posts to the callback
        (``base_url``'s path, or ``public_url``'s, + ``callback_path``): answer that POST
        with :meth:`confirm`. ``accept_language`` picks the pages' language.
        """
        raw_next = query.get("next") or "/"
        next_path = local_path(raw_next)
        lang = page_language(accept_language)
        try:
            claims, token, nickname, avatar = self._exchange(query, raw_next)
            if not claims.started_by(usable_nonce(nonce)):
                where = (next_path, cookie, nonce, secure, base_url, lang)
                return ask_to_confirm(self, token, nickname, avatar, *where)
            user = self.sessions.open(token, nickname, avatar)
            self.sessions.end(self.cookies.read(cookie))
        except WaferError as exc:
            logger.info("wafer_py: web login refused on %s: %s", self.callback_path, exc.reason)
            return self.on_error(exc, next_path, lang)
        return redirect(next_path, self.cookies.session(user, secure))

    def confirm(
        self,
        body: bytes,
        *,
        cookie: str | None = None,
        secure: bool = False,
        nonce: str | None = None,
        accept_language: str | None = None,
    ) -> WebAnswer:
        """Answer the POST of the confirmation page's form (``body``: its urlencoded bytes).

        ``action=continue`` opens the web session the page named, once, and only for the
        browser the page was shown to (its nonce cookie; a cross-site POST carries no
        SameSite=Lax cookie); anything else (start over) drops the waiting login and goes
        back to the page, which starts a new login in this browser if it needs one.
        """
        return answer_confirmation(
            self, body, cookie=cookie, secure=secure, nonce=nonce, accept_language=accept_language
        )

    def logout(
        self, cookie: str | None, *, redirect_to: str = "/", secure: bool = False
    ) -> WebAnswer:
        """End the web session (its tokens are deleted) and clear the cookie."""
        self.sessions.end(self.cookies.read(cookie))
        return redirect(local_path(redirect_to), self.cookies.clear(secure))

    def error_page(self, exc: WaferError, next_path: str, lang: PageLang = "zh") -> WebAnswer:
        """The default page for a failed web login, in ``lang``, with the status
        :mod:`wafer_py.web.errors` gives ``exc`` (400 on the browser's side, 5xx for
        trouble) and a button back to ``next_path``."""
        status = page_status(exc)
        body = error_page_html(self.texts, lang, exc, next_path, status)
        return WebAnswer(status, list(HTML_HEADERS), body.encode("utf-8"))

    # -- web sessions ------------------------------------------------------------------
    def authenticate(
        self, cookie: str | None, *, secure: bool = False
    ) -> tuple[WebUser | None, list[tuple[str, str]]]:
        """The cookie's user (refreshing an expired access token, linked to the
        mini-program user with its unionid), and cookie headers."""
        user = self.cookies.read(cookie)
        if user is None:
            return None, [self.cookies.clear(secure)] if cookie else []
        fresh = self.sessions.resume(user)
        if fresh is None:
            return None, [self.cookies.clear(secure)]
        headers = [] if fresh == user else [self.cookies.session(fresh, secure)]
        return self.sessions.link(fresh), headers

    def userinfo(self, user: WebUser, lang: Lang | None = None) -> OAuthUserInfo:
        """A fresh profile from WeChat for a ``snsapi_userinfo`` web session.

        Refreshes the access token first if WeChat says it expired. Raises
        :class:`~wafer_py.exceptions.ScopeUnauthorized` for a ``snsapi_base`` session,
        :class:`~wafer_py.exceptions.WebSessionExpired` when the session is over, and
        :class:`~wafer_py.exceptions.InvalidRefreshToken` when WeChat refuses its refresh.
        """
        return self.sessions.userinfo(user, lang)

    # -- internals ---------------------------------------------------------------------
    def _exchange(
        self, query: Mapping[str, str], raw_next: str
    ) -> tuple[StateClaims, OAuthToken, str, str]:
        """Check and spend the state, exchange the code: claims, tokens, nickname, avatar."""
        claims = self.states.verify(query.get("state"), bound=raw_next)
        code = query.get("code")
        if not code:
            raise ConsentDenied()
        call_store(self.states.spend, claims, self.store)
        try:
            token = self.oauth.fetch_token(code)
        except InvalidCode as exc:  # 40029 / 40163 / 42003: a web page's words for them
            raise type(exc)(
                exc.errcode,
                exc.errmsg,
                "WeChat did not accept this login code "
                "(invalid, expired or already used); please start again",
            ) from None
        nickname = avatar = ""
        if token.has_scope(USERINFO_SCOPE):
            info = self.oauth.get_userinfo(token.access_token, token.openid, self.lang)
            nickname, avatar = info.nickname, info.headimgurl
        return claims, token, nickname, avatar
