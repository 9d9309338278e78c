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
* The OAuth ``state`` is signed, timed and single-use (:mod:`wafer_py.oauthstate`), so
  the callback needs neither a cookie nor the instance that started the login.

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
import html
import json
import logging
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

from itsdangerous import BadData, URLSafeTimedSerializer

from .config import WaferConfig
from .crypto import SecretBox
from .exceptions import (
    AccessTokenExpired,
    ConsentDenied,
    InvalidAccessToken,
    InvalidCode,
    InvalidRefreshToken,
    WaferError,
    WeChatError,
)
from .oauthstate import ClockedSigner, OAuthStateSigner
from .serverkeys import server_secret_keys
from .stores import SessionStore
from .stores.base import call_store

if TYPE_CHECKING:
    from .auth import WaferAuth
    from .oauth import Lang, OAuthToken, OAuthUserInfo, Scope, WeChatOAuth

__all__ = ["WebLogin", "WebUser", "WebAnswer", "WebAccess", "COOKIE_NAME", "CALLBACK_PATH"]

logger = logging.getLogger("wafer_py")

T = TypeVar("T")

COOKIE_NAME = "wafer_web"
CALLBACK_PATH = "/wechat/oauth/callback"
_ENTRY_PREFIX = "wafer-web:"
_REFRESH_TTL = 30 * 24 * 3600  # WeChat's refresh_token lifetime
_USERINFO = "snsapi_userinfo"


@dataclass(frozen=True)
class WebUser:
    """The user of a web session: openid, granted scope, and the profile WeChat gave.

    ``nickname`` and ``avatar`` are empty for a ``snsapi_base`` (silent) login.
    """

    openid: str
    scope: str
    unionid: str | None = None
    nickname: str = ""
    avatar: str = ""
    session_id: str = field(default="", repr=False)

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


def error_page(exc: WaferError, next_path: str) -> WebAnswer:
    """The default human-readable page for a failed web login.

    Client-side failures are 400, never 401/403: those are the statuses the mini-program
    middleware swaps for its JSON invalid-session answer. WeChat or store trouble keeps
    its 5xx status.
    """
    status = exc.status if exc.status >= 500 else 400
    body = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<title>WeChat login failed</title></head><body>"
        "<h1>WeChat login failed</h1>"
        f'<p id="message">{html.escape(exc.message)}</p>'
        f'<p><a href="{html.escape(next_path)}">Try again</a></p>'
        f"<!-- reason: {html.escape(exc.reason)} --></body></html>"
    )
    return WebAnswer(
        status,
        [("Content-Type", "text/html; charset=utf-8"), ("Cache-Control", "no-store")],
        body.encode("utf-8"),
    )


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

    ``store`` keeps the tokens (any :class:`~wafer_py.stores.SessionStore`); ``oauth``
    defaults to a :class:`~wafer_py.oauth.WeChatOAuth` for ``config``'s official account
    (``oauth_appid``, else the mini-program's). ``secret_keys`` (newest first, default
    ``config.secret_keys``) sign the cookie and the state; ``secret_box`` seals the tokens.
    ``public_url`` (``https://example.com``) fixes the callback's origin behind a proxy;
    otherwise the request's is used. ``cookie_secure`` None means "if the request is
    https". Build one from a :class:`~wafer_py.auth.WaferAuth` with :meth:`from_auth`.
    """

    def __init__(
        self,
        config: WaferConfig | None = None,
        *,
        store: SessionStore,
        oauth: WeChatOAuth | None = None,
        secret_box: SecretBox | None = None,
        secret_keys: Sequence[str] | None = None,
        clock: Callable[[], float] = time.time,
        callback_path: str = CALLBACK_PATH,
        public_url: str | None = None,
        cookie_name: str = COOKIE_NAME,
        cookie_secure: bool | None = None,
        session_max_age: int = _REFRESH_TTL,
        state_max_age: int = 600,
        refresh_margin: int = 60,
        lang: Lang = "zh_CN",
        on_error: Callable[[WaferError, str], WebAnswer] = error_page,
    ) -> None:
        self.config = config = config or WaferConfig()
        if not callback_path.startswith("/"):
            raise ValueError("callback_path must start with '/'")
        if oauth is None:
            from .oauth import WeChatOAuth  # requests is imported only when needed

            oauth = WeChatOAuth.from_config(config)
        self.oauth = oauth
        self.store = store
        # No keys: as WaferAuth (none for a shared store; SQLite's key file; else random).
        keys = list(
            server_secret_keys(
                secret_keys if secret_keys is not None else config.secret_keys, store
            )
        )
        self.secrets = secret_box or SecretBox(keys)
        self.clock = clock
        self.callback_path = callback_path
        self.public_url = public_url.rstrip("/") if public_url else None
        self.cookie_name = cookie_name
        self.cookie_secure = cookie_secure
        self.session_max_age = session_max_age
        self.refresh_margin = refresh_margin
        self.lang: Lang = lang
        self.on_error = on_error
        self.states = OAuthStateSigner(keys, max_age=state_max_age, clock=clock)
        self._cookies = URLSafeTimedSerializer(
            list(reversed(keys)),
            salt="wafer_py.web-session",
            signer=ClockedSigner,
            signer_kwargs={"clock": clock, "digest_method": hashlib.sha256},
        )

    @classmethod
    def from_auth(cls, auth: WaferAuth, **options: Any) -> WebLogin:
        """A web login sharing ``auth``'s configuration, store, sealing keys and clock."""
        options.setdefault("secret_box", auth.secrets)
        options.setdefault("secret_keys", auth._keys)  # the keys auth settled on
        options.setdefault("clock", auth.clock)
        return cls(auth.config, store=auth.store, **options)

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
    ) -> WebAccess:
        """Let a request with a web session of ``scope`` through; redirect the rest.

        ``next_path`` is the page (path and query) to come back to and ``base_url`` the
        request's origin (``http://host:port``), used unless ``public_url`` is set.
        """
        try:
            user, headers = self.authenticate(cookie, secure=secure)
            if user is not None and user.has_scope(scope):
                return WebAccess(user, None, headers)
            location = self.authorize_url(scope=scope, next_path=next_path, base_url=base_url)
        except WaferError as exc:  # the store is down: say so, do not send to WeChat
            return WebAccess(None, self.on_error(exc, local_path(next_path)))
        answer = WebAnswer(302, [("Location", location), ("Cache-Control", "no-store"), *headers])
        return WebAccess(None, answer)

    def authorize_url(
        self, *, scope: Scope = "snsapi_base", next_path: str = "/", base_url: str = ""
    ) -> str:
        """WeChat's authorize URL for a login that comes back to ``next_path``."""
        next_path = local_path(next_path)
        origin = self.public_url or base_url.rstrip("/")
        redirect_uri = f"{origin}{self.callback_path}?next={quote(next_path, safe='')}"
        state = self.states.issue(bound=next_path)
        return self.oauth.authorize_url(redirect_uri, state=state, scope=scope).url

    def finish(
        self, query: Mapping[str, str], *, cookie: str | None = None, secure: bool = False
    ) -> WebAnswer:
        """Answer WeChat's callback: a redirect with a new web session, or an error page."""
        raw_next = query.get("next") or "/"
        try:
            user = self._finish(query, raw_next)
        except WaferError as exc:
            logger.info("wafer_py: web login refused: %s", exc.reason)
            return self.on_error(exc, local_path(raw_next))
        self._revoke(cookie)
        return WebAnswer(
            302,
            [
                ("Location", _location(local_path(raw_next))),
                ("Cache-Control", "no-store"),
                self._set_cookie(user, secure),
            ],
        )

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

    # -- web sessions ------------------------------------------------------------------
    def authenticate(
        self, cookie: str | None, *, secure: bool = False
    ) -> tuple[WebUser | None, list[tuple[str, str]]]:
        """The cookie's user (refreshing an expired access token), and cookie headers."""
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
        :class:`~wafer_py.exceptions.ScopeUnauthorized` for a ``snsapi_base`` session and
        :class:`~wafer_py.exceptions.InvalidRefreshToken` when the session is over.
        """
        key = _entry_key(user.session_id)
        tokens = self._load(key, self.clock())
        if tokens is None:
            raise InvalidRefreshToken(40030, "", "the web session is over; log in again")
        access = self._unseal(tokens.access, key)
        try:
            return self.oauth.get_userinfo(access, tokens.openid, lang or self.lang)
        except (InvalidAccessToken, AccessTokenExpired):
            token = self.oauth.refresh_token(self._unseal(tokens.refresh, key))
            self._save(key, tokens, token)
            return self.oauth.get_userinfo(token.access_token, token.openid, lang or self.lang)

    # -- internals ---------------------------------------------------------------------
    def _finish(self, query: Mapping[str, str], raw_next: str) -> WebUser:
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
        session_id = secrets.token_urlsafe(24)
        key = _entry_key(session_id)
        now = self.clock()
        tokens = _Tokens(token.openid, token.scope, "", 0.0, "", now + _REFRESH_TTL)
        self._save(key, tokens, token)
        return WebUser(
            token.openid, token.scope or "snsapi_base", token.unionid, nickname, avatar, session_id
        )

    def _refresh(self, user: WebUser, key: str, tokens: _Tokens) -> WebUser | None:
        try:
            token = self.oauth.refresh_token(self._unseal(tokens.refresh, key))
        except InvalidRefreshToken:
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
            raise InvalidRefreshToken(
                40030,
                "",
                "the web session's tokens do not open under the configured keys; log in again",
            ) from None

    def _revoke(self, cookie: str | None) -> None:
        user = self._read_cookie(cookie)
        if user is not None:
            call_store(self.store.delete_entry, _entry_key(user.session_id))

    def _read_cookie(self, cookie: str | None) -> WebUser | None:
        if not cookie:
            return None
        try:
            data = self._cookies.loads(cookie, max_age=self.session_max_age)
            return WebUser(
                openid=str(data["o"]),
                scope=str(data["c"]),
                unionid=data.get("u") or None,
                nickname=str(data.get("n", "")),
                avatar=str(data.get("a", "")),
                session_id=str(data["s"]),
            )
        except (BadData, KeyError, TypeError, AttributeError):
            return None

    def _cookie_attributes(self, secure: bool) -> str:
        secure = secure if self.cookie_secure is None else self.cookie_secure
        return "; Path=/; HttpOnly; SameSite=Lax" + ("; Secure" if secure else "")

    def _set_cookie(self, user: WebUser, secure: bool = False) -> tuple[str, str]:
        value = self._cookies.dumps(
            {
                "s": user.session_id,
                "o": user.openid,
                "c": user.scope,
                "u": user.unionid,
                "n": user.nickname,
                "a": user.avatar,
            }
        )
        return (
            "Set-Cookie",
            f"{self.cookie_name}={value}; Max-Age={self.session_max_age}"
            + self._cookie_attributes(secure),
        )

    def _clear_cookie(self, secure: bool = False) -> tuple[str, str]:
        return ("Set-Cookie", f"{self.cookie_name}=; Max-Age=0" + self._cookie_attributes(secure))


def _entry_key(session_id: str) -> str:
    # The store sees a hash of the web-session id, never the id the cookie carries.
    return _ENTRY_PREFIX + hashlib.sha256(session_id.encode()).hexdigest()
