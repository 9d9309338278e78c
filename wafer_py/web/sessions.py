"""Web sessions on the server: the OAuth tokens of each, sealed in the store's entries.

A web session lives until its refresh token expires (30 days); deleting its entry ends
it. Its access token is refreshed on the first guarded request after it expired (2
hours, less ``refresh_margin``), once per session at a time (a store lock); with a
``snsapi_userinfo`` session the profile is read again then, so nickname and avatar (whose
URL dies when the user changes it) stay at most about two hours old. If WeChat cannot be
reached the cookie's profile is kept; if it refuses the refresh token (40030/42002) the
session ends and the browser goes through WeChat again.
"""

from __future__ import annotations

import hmac
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from ..crypto import SecretBox
from ..exceptions import (
    AccessTokenExpired,
    InvalidAccessToken,
    InvalidRefreshToken,
    WebSessionExpired,
    WeChatError,
)
from ..stores.base import call_store
from ..stores.entries import EntryStore
from .access import USERINFO_SCOPE, WebUser
from .records import REFRESH_TTL, SessionRecord, session_key

if TYPE_CHECKING:
    from ..stores.base import SessionStore
    from .grants import Lang, OAuthToken, OAuthUserInfo
    from .oauth import WeChatOAuth

__all__ = ["WebSessions"]

logger = logging.getLogger("wafer_py")


class WebSessions:
    """Open, resume, refresh and end web sessions in ``store``.

    ``box`` seals the tokens; ``users`` (the mini-program's store, or None) links a
    web user to the mini-program user with the same unionid.
    """

    def __init__(
        self,
        store: EntryStore,
        oauth: WeChatOAuth,
        box: SecretBox,
        *,
        clock: Callable[[], float] = time.time,
        refresh_margin: int = 60,
        lang: Lang = "zh_CN",
        users: SessionStore | None = None,
    ) -> None:
        self.store = store
        self.oauth = oauth
        self.secrets = box
        self.clock = clock
        self.refresh_margin = refresh_margin
        self.lang: Lang = lang
        self.users = users

    def __repr__(self) -> str:
        return f"WebSessions(store={type(self.store).__name__})"

    def open(self, token: OAuthToken, nickname: str, avatar: str) -> WebUser:
        """A new web session for ``token``: its record saved, its user returned."""
        session_id = secrets.token_urlsafe(24)
        key = session_key(session_id)
        now = self.clock()
        record = SessionRecord(token.openid, token.scope, "", 0.0, "", now + REFRESH_TTL)
        self._save(key, record, token)
        return WebUser(
            token.openid, token.scope or "snsapi_base", token.unionid, nickname, avatar, session_id
        )

    def resume(self, user: WebUser) -> WebUser | None:
        """``user`` (a cookie's) if its session is live, refreshed when its access token
        is due; ``None`` when the session is over."""
        key = session_key(user.session_id)
        now = self.clock()
        record = self._load(key, now)
        if record is None or record.openid != user.openid:
            return None
        if record.access_expires_at - self.refresh_margin > now:
            return user
        lock, owner = f"wafer-web-refresh:{key}", secrets.token_hex(8)
        if not call_store(self.store.acquire_lock, lock, owner, ttl=30, now=now):
            return user  # another request is refreshing this session right now
        try:
            return self._refresh(user, key, record)
        finally:
            call_store(self.store.release_lock, lock, owner)

    def link(self, user: WebUser) -> WebUser:
        """``user`` with :attr:`~WebUser.linked_user` set, if a mini-program user shares
        its unionid (the one updated last)."""
        if not user.unionid or self.users is None:
            return user
        found = call_store(self.users.find_users_by_unionid, user.unionid)
        if not found:
            return user
        linked = max(found, key=lambda u: (u.updated_at, u.created_at))
        return replace(user, linked_user=linked)

    def end(self, user: WebUser | None) -> None:
        """End ``user``'s web session (its tokens are deleted); ``None`` does nothing."""
        if user is not None:
            call_store(self.store.delete_entry, session_key(user.session_id))

    def userinfo(self, user: WebUser, lang: Lang | None = None) -> OAuthUserInfo:
        """A fresh profile from WeChat, refreshing the access token first if WeChat says
        it expired (see :meth:`wafer_py.web.login.WebLogin.userinfo`)."""
        key = session_key(user.session_id)
        record = self._load(key, self.clock())
        if record is None:
            raise WebSessionExpired()
        access = self.unseal(record.access, key)
        try:
            return self.oauth.get_userinfo(access, record.openid, lang or self.lang)
        except (InvalidAccessToken, AccessTokenExpired):
            token = self.oauth.refresh_token(self.unseal(record.refresh, key))
            self._save(key, record, token)
            return self.oauth.get_userinfo(token.access_token, token.openid, lang or self.lang)

    def unseal(self, sealed: str, key: str) -> str:
        """A token sealed under the entry ``key``; :class:`WebSessionExpired` if it does
        not open under the configured keys."""
        try:
            return self.secrets.unseal(sealed, context=key)
        except ValueError:
            raise WebSessionExpired(
                "the web session's tokens do not open under the configured keys; log in again"
            ) from None

    def _refresh(self, user: WebUser, key: str, record: SessionRecord) -> WebUser | None:
        try:
            token = self.oauth.refresh_token(self.unseal(record.refresh, key))
        except (InvalidRefreshToken, WebSessionExpired):
            call_store(self.store.delete_entry, key)
            return None
        except WeChatError as exc:
            logger.warning(
                "wafer_py: web session refresh failed (%s); serving the cookie's profile",
                exc.reason,
            )
            return user
        self._save(key, record, token)
        fresh = replace(
            user, scope=token.scope or user.scope, unionid=token.unionid or user.unionid
        )
        if token.has_scope(USERINFO_SCOPE):
            try:
                info = self.oauth.get_userinfo(token.access_token, token.openid, self.lang)
            except WeChatError as exc:  # 48001 included: keep the cookie's profile
                logger.warning("wafer_py: web profile refresh failed (%s)", exc.reason)
            else:
                fresh = replace(fresh, nickname=info.nickname, avatar=info.headimgurl)
        return fresh

    def _save(self, key: str, old: SessionRecord, token: OAuthToken) -> None:
        now = self.clock()
        same_refresh = bool(old.refresh) and hmac.compare_digest(
            self.unseal(old.refresh, key).encode(), token.refresh_token.encode()
        )
        # A refresh that hands back the same refresh token does not extend its 30 days.
        refresh_expires_at = old.refresh_expires_at if same_refresh else now + REFRESH_TTL
        record = SessionRecord(
            openid=token.openid,
            scope=token.scope or old.scope,
            access=self.secrets.seal(token.access_token, context=key),
            access_expires_at=now + token.expires_in,
            refresh=self.secrets.seal(token.refresh_token, context=key),
            refresh_expires_at=refresh_expires_at,
        )
        call_store(self.store.set_entry, key, record.dumps(), expires_at=refresh_expires_at)

    def _load(self, key: str, now: float) -> SessionRecord | None:
        text = call_store(self.store.get_entry, key, now=now)
        return None if text is None else SessionRecord.loads(text)
