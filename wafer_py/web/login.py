"""Browser login for official-account web pages opened in WeChat, free of any framework.

:class:`WebLogin` turns a request's cookie into a :class:`WebUser` or into a redirect to
WeChat's authorize page, and turns WeChat's callback into a web session. The Flask and
Starlette integrations (``WaferWeb`` and ``web_login_required`` in :mod:`wafer_py.flask`
and :mod:`wafer_py.starlette`) only translate requests and :class:`WebAnswer` objects.

Where things live:

* The browser holds an itsdangerous-signed cookie (HttpOnly, SameSite=Lax) with the
  openid, the granted scope, the nickname and avatar, and a random web-session id.
* The OAuth tokens stay on the server: in the session store's entries, under a hash of the
  web-session id, sealed with the server's keys, until the refresh token expires
  (30 days). Deleting the entry ends the web session (:meth:`WebLogin.logout`).
* The OAuth ``state`` is signed, timed and single-use (:mod:`wafer_py.web.state`), so
  the callback needs no particular instance; it also carries a digest of the nonce
  cookie (``wafer_web_nonce``: random, HttpOnly, SameSite=Lax, as long-lived as a state)
  set on the browser that was sent to WeChat.

Login CSRF: a callback URL made by an attacker's WeChat and opened in a victim's browser
must not log that browser in as the attacker. So a callback whose browser holds the nonce
the state was issued for opens the web session at once; any other (no cookie, another
browser, WeChat's in-app browser having dropped it) exchanges the single-use code, keeps
the result sealed in the store's entries for ``confirm_max_age`` seconds under a random
token, and answers a page that names the WeChat user and asks to continue (a POST of that
token, honoured only with this browser's nonce cookie, once) or to start over. The
browser's existing web session stays until the user continues.

When the access token is refreshed: on the first guarded request after it expired (2
hours, less ``refresh_margin``), once per web session at a time (a store lock); with a
``snsapi_userinfo`` session the profile is read again then, so nickname and avatar (whose
URL dies when the user changes it) stay at most about two hours old. :meth:`userinfo`
reads a fresh profile on demand, refreshing first if WeChat says the token expired. If
WeChat cannot be reached the page is served with what the cookie holds; if the refresh
token is refused (40030/42002) the web session ends and the browser goes through WeChat
again.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import parse_qs, quote, urlsplit

from ..config import WaferConfig
from ..crypto import Keyring, SecretBox
from ..exceptions import (
    AccessTokenExpired,
    ConsentDenied,
    InvalidAccessToken,
    InvalidCode,
    InvalidRefreshToken,
    InvalidState,
    StateReplayed,
    WaferError,
    WebSessionExpired,
    WeChatError,
)
from ..serverkeys import server_keyring
from ..stores.base import call_store
from ..stores.entries import EntryStore, entry_store
from .cookie import SessionCookie, set_cookie
from .errors import page_status
from .pages import HTML_HEADERS, confirm_page_html, error_page_html, page_language, who_label
from .state import OAuthStateSigner, StateClaims, browser_digest
from .texts import PageLang, PageTexts

if TYPE_CHECKING:
    from ..auth import WaferAuth
    from ..models import User
    from ..stores.base import SessionStore
    from .oauth import Lang, OAuthToken, OAuthUserInfo, Scope, WeChatOAuth

__all__ = [
    "WebLogin",
    "WebUser",
    "WebAnswer",
    "WebAccess",
    "COOKIE_NAME",
    "CALLBACK_PATH",
    "CONFIRM_BODY_LIMIT",
]

logger = logging.getLogger("wafer_py")

T = TypeVar("T")

COOKIE_NAME = "wafer_web"
CALLBACK_PATH = "/wechat/oauth/callback"
_ENTRY_PREFIX = "wafer-web:"
_PENDING_PREFIX = "wafer-web-pending:"
_NONCE_SUFFIX = "_nonce"
_RANDOM = re.compile(r"[A-Za-z0-9_-]{22,86}")  # token_urlsafe(16..64)
#: The largest confirmation form read (it holds a token and a button's name).
CONFIRM_BODY_LIMIT = 4096
_REFRESH_TTL = 30 * 24 * 3600  # WeChat's refresh_token lifetime
_USERINFO = "snsapi_userinfo"


@dataclass(frozen=True)
class WebUser:
    """The user of a web session: openid, granted scope, and the profile WeChat gave.

    ``nickname`` and ``avatar`` are empty for a ``snsapi_base`` (silent) login.
    ``linked_user`` is the mini-program :class:`~wafer_py.models.User` with the same
    ``unionid`` (the same person, when the official account and the mini-program are
    bound to one Open Platform account), or ``None``; if several mini-programs share the
    store, the one whose user was updated last.
    """

    openid: str
    scope: str
    unionid: str | None = None
    nickname: str = ""
    avatar: str = ""
    session_id: str = field(default="", repr=False)
    linked_user: User | None = field(default=None, compare=False, repr=False)

    def has_scope(self, scope: str) -> bool:
        """Whether the login grants ``scope`` (``snsapi_userinfo`` includes the base)."""
        granted = {s.strip() for s in self.scope.split(",")}
        return scope in granted or (scope == "snsapi_base" and _USERINFO in granted)


@dataclass(frozen=True)
class WebAnswer:
    """A response for the adapter to send as it is."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes = b""


@dataclass(frozen=True)
class WebAccess:
    """A guarded request: the ``user``, or an ``answer`` to send instead of the page.

    ``headers`` (a renewed or cleared cookie) go on the page's own response.
    """

    user: WebUser | None
    answer: WebAnswer | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)


def local_path(value: str | None) -> str:
    """``value`` if it is a path on this site, else ``/`` (no open redirects)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        return "/"
    return value


def _location(path: str) -> str:
    # Header-safe: non-ASCII becomes UTF-8 percent-escapes; existing escapes are kept.
    return quote(path, safe="/?&=%:@!$'()*+,;~-._")


_FRAMING = [
    ("X-Frame-Options", "DENY"),  # no clickjacking of the confirm button
    ("Content-Security-Policy", "frame-ancestors 'none'"),
]


def _too_large() -> WebAnswer:
    return WebAnswer(
        413,
        [("Content-Type", "text/plain; charset=utf-8"), ("Cache-Control", "no-store")],
        b"request body too large\n",
    )


@dataclass(frozen=True)
class _Pending:
    """A login waiting for its user's confirmation (tokens sealed), in the store's entries."""

    appid: str
    browser: str  # hex digest of the nonce cookie of the browser shown the page
    next: str
    openid: str
    scope: str
    unionid: str | None
    nickname: str
    avatar: str
    access: str
    access_expires_at: float
    refresh: str

    def dumps(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def loads(cls, text: str) -> _Pending | None:
        try:
            return cls(**json.loads(text))
        except (ValueError, TypeError):
            return None


@dataclass(frozen=True)
class _Tokens:
    """A web session's server-side record (tokens sealed)."""

    openid: str
    scope: str
    access: str
    access_expires_at: float
    refresh: str
    refresh_expires_at: float

    def dumps(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def loads(cls, text: str) -> _Tokens | None:
        try:
            return cls(**json.loads(text))
        except (ValueError, TypeError):
            return None


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
        session_max_age: int = _REFRESH_TTL,
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
        self.cookie_name = cookie_name
        #: The cookie holding the nonce of the browser that started a login.
        self.nonce_cookie_name = cookie_name + _NONCE_SUFFIX
        self.cookie_secure = cookie_secure
        self.session_max_age = session_max_age
        self.confirm_max_age = confirm_max_age
        self.refresh_margin = refresh_margin
        self.lang: Lang = lang
        #: The words of the pages (``page_texts`` over :data:`~wafer_py.web.texts.TEXTS`).
        self.texts = PageTexts(page_texts)
        self.on_error = on_error or self.error_page
        #: The mini-program's users, for :attr:`WebUser.linked_user` (None: no linking).
        self.users = users
        # The appid in the salt: a state of another official account sharing the keys fails.
        self.states = OAuthStateSigner(
            keys, max_age=state_max_age, clock=clock, salt=f"wafer_py.oauth-state:{oauth.appid}"
        )
        self._cookies = SessionCookie(keys, max_age=session_max_age, clock=clock)

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
            browser = _usable(nonce) or secrets.token_urlsafe(18)
            location = self.authorize_url(
                scope=scope, next_path=next_path, base_url=base_url, browser_nonce=browser
            )
        except WaferError as exc:  # the store is down: say so, do not send to WeChat
            lang = page_language(accept_language)
            return WebAccess(None, self.on_error(exc, local_path(next_path), lang))
        answer = WebAnswer(
            302,
            [
                ("Location", location),
                ("Cache-Control", "no-store"),
                *headers,
                self._nonce_cookie(browser, secure),
            ],
        )
        return WebAccess(None, answer)

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
            if not claims.started_by(_usable(nonce)):
                where = (next_path, cookie, nonce, secure, base_url, lang)
                return self._ask(token, nickname, avatar, *where)
            user = self._open_session(token, nickname, avatar)
            self._revoke(cookie)
        except WaferError as exc:
            logger.info("wafer_py: web login refused: %s", exc.reason)
            return self.on_error(exc, next_path, lang)
        return self._logged_in(user, next_path, secure)

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
        if len(body) > CONFIRM_BODY_LIMIT:
            return _too_large()
        form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
        next_path = "/"
        lang = page_language(accept_language)
        try:
            token = form.get("token", "")
            key = _PENDING_PREFIX + hashlib.sha256(token.encode()).hexdigest()
            pending = self._load_pending(key) if _RANDOM.fullmatch(token) else None
            if pending is None:
                raise InvalidState(
                    "this confirmation has expired or was already used; please start again"
                )
            next_path = local_path(pending.next)
            browser = _usable(nonce)
            shown_here = (
                bool(browser)
                and hmac.compare_digest(pending.browser, browser_digest(browser).hex())
                and hmac.compare_digest(pending.appid, self.oauth.appid)
            )
            if form.get("action") != "continue":  # start over: changes nothing elsewhere
                if shown_here:
                    call_store(self.store.delete_entry, key)
                return WebAnswer(
                    303, [("Location", _location(next_path)), ("Cache-Control", "no-store")]
                )
            if not shown_here:
                raise InvalidState(
                    "this confirmation was opened in another browser; please start again"
                )
            now = self.clock()
            if not call_store(
                self.store.acquire_lock,
                f"wafer-web-confirm:{key}",
                secrets.token_hex(8),
                ttl=self.confirm_max_age + 1,
                now=now,
            ):
                raise StateReplayed("this confirmation was already used; please start again")
            call_store(self.store.delete_entry, key)
            oauth_token = self._pending_token(pending, key, now)
            user = self._open_session(oauth_token, pending.nickname, pending.avatar)
            self._revoke(cookie)
        except WaferError as exc:
            logger.info("wafer_py: web login confirmation refused: %s", exc.reason)
            return self.on_error(exc, next_path, lang)
        return self._logged_in(user, next_path, secure, status=303)

    def logout(
        self, cookie: str | None, *, redirect_to: str = "/", secure: bool = False
    ) -> WebAnswer:
        """End the web session (its tokens are deleted) and clear the cookie."""
        self._revoke(cookie)
        return WebAnswer(
            302,
            [
                ("Location", _location(local_path(redirect_to))),
                ("Cache-Control", "no-store"),
                self._clear_cookie(secure),
            ],
        )

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
        user, headers = self._authenticate(cookie, secure=secure)
        if user is not None and user.unionid and self.users is not None:
            found = call_store(self.users.find_users_by_unionid, user.unionid)
            if found:
                linked = max(found, key=lambda u: (u.updated_at, u.created_at))
                user = replace(user, linked_user=linked)
        return user, headers

    def _authenticate(
        self, cookie: str | None, *, secure: bool = False
    ) -> tuple[WebUser | None, list[tuple[str, str]]]:
        user = self._read_cookie(cookie)
        if user is None:
            return None, [self._clear_cookie(secure)] if cookie else []
        key = _entry_key(user.session_id)
        now = self.clock()
        tokens = self._load(key, now)
        if tokens is None or tokens.openid != user.openid:
            return None, [self._clear_cookie(secure)]
        if tokens.access_expires_at - self.refresh_margin > now:
            return user, []
        lock, owner = f"wafer-web-refresh:{key}", secrets.token_hex(8)
        if not call_store(self.store.acquire_lock, lock, owner, ttl=30, now=now):
            return user, []  # another request is refreshing this session right now
        try:
            fresh = self._refresh(user, key, tokens)
        finally:
            call_store(self.store.release_lock, lock, owner)
        if fresh is None:
            return None, [self._clear_cookie(secure)]
        return fresh, [] if fresh == user else [self._set_cookie(fresh, secure)]

    def userinfo(self, user: WebUser, lang: Lang | None = None) -> OAuthUserInfo:
        """A fresh profile from WeChat for a ``snsapi_userinfo`` web session.

        Refreshes the access token first if WeChat says it expired. Raises
        :class:`~wafer_py.exceptions.ScopeUnauthorized` for a ``snsapi_base`` session,
        :class:`~wafer_py.exceptions.WebSessionExpired` when the session is over, and
        :class:`~wafer_py.exceptions.InvalidRefreshToken` when WeChat refuses its refresh.
        """
        key = _entry_key(user.session_id)
        tokens = self._load(key, self.clock())
        if tokens is None:
            raise WebSessionExpired()
        access = self._unseal(tokens.access, key)
        try:
            return self.oauth.get_userinfo(access, tokens.openid, lang or self.lang)
        except (InvalidAccessToken, AccessTokenExpired):
            token = self.oauth.refresh_token(self._unseal(tokens.refresh, key))
            self._save(key, tokens, token)
            return self.oauth.get_userinfo(token.access_token, token.openid, lang or self.lang)

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
        if token.has_scope(_USERINFO):
            info = self.oauth.get_userinfo(token.access_token, token.openid, self.lang)
            nickname, avatar = info.nickname, info.headimgurl
        return claims, token, nickname, avatar

    def _open_session(self, token: OAuthToken, nickname: str, avatar: str) -> WebUser:
        """A new web session for ``token``: its record saved, its user returned."""
        session_id = secrets.token_urlsafe(24)
        key = _entry_key(session_id)
        now = self.clock()
        tokens = _Tokens(token.openid, token.scope, "", 0.0, "", now + _REFRESH_TTL)
        self._save(key, tokens, token)
        return WebUser(
            token.openid, token.scope or "snsapi_base", token.unionid, nickname, avatar, session_id
        )

    def _logged_in(
        self, user: WebUser, next_path: str, secure: bool, status: int = 302
    ) -> WebAnswer:
        return WebAnswer(
            status,
            [
                ("Location", _location(next_path)),
                ("Cache-Control", "no-store"),
                self._set_cookie(user, secure),
            ],
        )

    def _ask(
        self,
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
        browser = _usable(nonce) or secrets.token_urlsafe(18)
        handle = secrets.token_urlsafe(24)
        key = _PENDING_PREFIX + hashlib.sha256(handle.encode()).hexdigest()
        now = self.clock()
        pending = _Pending(
            appid=self.oauth.appid,
            browser=browser_digest(browser).hex(),
            next=next_path,
            openid=token.openid,
            scope=token.scope or "snsapi_base",
            unionid=token.unionid,
            nickname=nickname,
            avatar=avatar,
            access=self.secrets.seal(token.access_token, context=key),
            access_expires_at=now + token.expires_in,
            refresh=self.secrets.seal(token.refresh_token, context=key),
        )
        call_store(
            self.store.set_entry, key, pending.dumps(), expires_at=now + self.confirm_max_age
        )
        current = self._read_cookie(cookie)
        texts = self.texts
        body = confirm_page_html(
            texts,
            lang,
            who_label(texts, lang, nickname, token.openid),
            None if current is None else who_label(texts, lang, current.nickname, current.openid),
            urlsplit(self.public_url or base_url).path.rstrip("/") + self.callback_path,
            handle,
        )
        headers = [*HTML_HEADERS, *_FRAMING, self._nonce_cookie(browser, secure)]
        return WebAnswer(200, headers, body.encode("utf-8"))

    def _load_pending(self, key: str) -> _Pending | None:
        text = call_store(self.store.get_entry, key, now=self.clock())
        return None if text is None else _Pending.loads(text)

    def _pending_token(self, pending: _Pending, key: str, now: float) -> OAuthToken:
        from .oauth import OAuthToken

        return OAuthToken(
            access_token=self._unseal(pending.access, key),
            refresh_token=self._unseal(pending.refresh, key),
            openid=pending.openid,
            scope=pending.scope,
            expires_in=max(int(pending.access_expires_at - now), 0),
            unionid=pending.unionid,
        )

    def _refresh(self, user: WebUser, key: str, tokens: _Tokens) -> WebUser | None:
        try:
            token = self.oauth.refresh_token(self._unseal(tokens.refresh, key))
        except (InvalidRefreshToken, WebSessionExpired):
            call_store(self.store.delete_entry, key)
            return None
        except WeChatError as exc:
            logger.warning(
                "wafer_py: web session refresh failed (%s); serving the cookie's profile",
                exc.reason,
            )
            return user
        self._save(key, tokens, token)
        fresh = replace(
            user, scope=token.scope or user.scope, unionid=token.unionid or user.unionid
        )
        if token.has_scope(_USERINFO):
            try:
                info = self.oauth.get_userinfo(token.access_token, token.openid, self.lang)
            except WeChatError as exc:  # 48001 included: keep the cookie's profile
                logger.warning("wafer_py: web profile refresh failed (%s)", exc.reason)
            else:
                fresh = replace(fresh, nickname=info.nickname, avatar=info.headimgurl)
        return fresh

    def _save(self, key: str, old: _Tokens, token: OAuthToken) -> None:
        now = self.clock()
        same_refresh = bool(old.refresh) and hmac.compare_digest(
            self._unseal(old.refresh, key).encode(), token.refresh_token.encode()
        )
        # A refresh that hands back the same refresh token does not extend its 30 days.
        refresh_expires_at = old.refresh_expires_at if same_refresh else now + _REFRESH_TTL
        record = _Tokens(
            openid=token.openid,
            scope=token.scope or old.scope,
            access=self.secrets.seal(token.access_token, context=key),
            access_expires_at=now + token.expires_in,
            refresh=self.secrets.seal(token.refresh_token, context=key),
            refresh_expires_at=refresh_expires_at,
        )
        call_store(self.store.set_entry, key, record.dumps(), expires_at=refresh_expires_at)

    def _load(self, key: str, now: float) -> _Tokens | None:
        text = call_store(self.store.get_entry, key, now=now)
        return None if text is None else _Tokens.loads(text)

    def _unseal(self, sealed: str, key: str) -> str:
        try:
            return self.secrets.unseal(sealed, context=key)
        except ValueError:
            raise WebSessionExpired(
                "the web session's tokens do not open under the configured keys; log in again"
            ) from None

    def _revoke(self, cookie: str | None) -> None:
        user = self._read_cookie(cookie)
        if user is not None:
            call_store(self.store.delete_entry, _entry_key(user.session_id))

    def _read_cookie(self, cookie: str | None) -> WebUser | None:
        fields = self._cookies.loads(cookie)
        return None if fields is None else WebUser(**fields)

    def _secure(self, secure: bool) -> bool:
        if self.cookie_secure is not None:
            return self.cookie_secure
        return secure or (self.public_url is not None and self.public_url.startswith("https://"))

    def _nonce_cookie(self, nonce: str, secure: bool = False) -> tuple[str, str]:
        # As long-lived as a state: a callback after that fails as expired anyway.
        name, max_age = self.nonce_cookie_name, self.states.max_age
        return set_cookie(name, nonce, max_age=max_age, secure=self._secure(secure))

    def _set_cookie(self, user: WebUser, secure: bool = False) -> tuple[str, str]:
        value = self._cookies.dumps(
            {
                "session_id": user.session_id,
                "openid": user.openid,
                "scope": user.scope,
                "unionid": user.unionid,
                "nickname": user.nickname,
                "avatar": user.avatar,
            }
        )
        max_age = self.session_max_age
        return set_cookie(self.cookie_name, value, max_age=max_age, secure=self._secure(secure))

    def _clear_cookie(self, secure: bool = False) -> tuple[str, str]:
        return set_cookie(self.cookie_name, "", max_age=0, secure=self._secure(secure))


def _usable(nonce: str | None) -> str:
    """``nonce`` if it looks like one this module made, else ``""``."""
    return nonce if nonce and _RANDOM.fullmatch(nonce) else ""


def _entry_key(session_id: str) -> str:
    # The store sees a hash of the web-session id, never the id the cookie carries.
    return _ENTRY_PREFIX + hashlib.sha256(session_id.encode()).hexdigest()
