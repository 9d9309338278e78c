"""The framework-agnostic core: log in, validate, update the profile, revoke.

:class:`WaferAuth` ties the configuration, a session store and the WeChat client
together. It knows nothing of HTTP frameworks; the adapters call it.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from .config import WaferConfig
from .crypto import SecretBox, decrypt_data, new_session_id, new_skey
from .exceptions import (
    InvalidSession,
    InvalidSignature,
    LoginAbandoned,
    LoginQueueTimeout,
    MalformedEncryptedData,
    StaleSessionKey,
    WeChatError,
)
from .logingate import AsyncLoginGate, ThreadLoginGate
from .models import (
    PLACEHOLDER_AVATARS,
    PLACEHOLDER_NICKNAMES,
    Session,
    User,
    avatar_key,
    clean_profile,
    real_profile,
)
from .plans import Plan, StoreCall, WeChatLogin, arun, run
from .serverkeys import server_secret_keys
from .sessioncache import CacheKey, SessionCache
from .stores import SessionStore, open_store
from .stores.invalidation import Invalidation
from .wechat.phone import PhoneNumber

if TYPE_CHECKING:
    from .wechat.api import WeChatAPI
    from .wechat.client import Code2Session, WeChatClient
    from .wechat.tokens import AccessTokenCache

__all__ = ["WaferAuth", "Credentials", "Authenticated", "LoginResult"]

logger = logging.getLogger("wafer_py")

# Credentials and Authenticated (and the protocol's RequestState) are made for every
# validated request: named tuples, immutable like frozen dataclasses, cost half as much
# to build.


class Credentials(NamedTuple):
    """Session credentials read from a request: v1 sends ``id`` and ``skey``, v2 ``skey``."""

    skey: str
    session_id: str | None = None

    def __repr__(self) -> str:  # the skey is a secret: never in a repr
        return f"Credentials(session_id={self.session_id!r})"

    @property
    def generation(self) -> Literal["v1", "v2"]:
        return "v1" if self.session_id is not None else "v2"


class Authenticated(NamedTuple):
    """A validated request: who it is and which session it used."""

    user: User
    session: Session
    generation: Literal["v1", "v2"] = "v2"

    @property
    def openid(self) -> str:
        return self.user.openid


@dataclass(frozen=True)
class LoginResult:
    """A new session. ``skey`` is shown to the client once and never stored in the clear."""

    user: User
    session: Session
    skey: str = field(repr=False)
    created: bool = False  # whether this login registered the user

    @property
    def session_id(self) -> str:
        return self.session.id


class WaferAuth:
    """Wafer login and sessions for one mini-program.

    ``store`` is a :class:`~wafer_py.stores.SessionStore` or a store URL (default:
    ``config.store_url``); ``wechat`` defaults to a :class:`~wafer_py.wechat.WeChatClient`
    for ``config.api_base``. ``clock`` returns the time in seconds (inject one in tests).
    ``tokens`` is the :class:`~wafer_py.wechat.tokens.AccessTokenCache` for WeChat's server APIs
    (default: one in ``store``, refreshed 5 minutes early through ``stable_token``).

    Example::

        auth = WaferAuth(WaferConfig(appid="wx...", app_secret="...",
                                     store_url="sqlite:///sessions.db"))
        result = auth.login(code)                  # a new session
        who = auth.validate(Credentials(skey=...))  # or raises InvalidSession
    """

    def __init__(
        self,
        config: WaferConfig | None = None,
        *,
        store: SessionStore | str | None = None,
        wechat: WeChatClient | None = None,
        clock: Callable[[], float] = time.time,
        tokens: AccessTokenCache | None = None,
        **options: Any,
    ) -> None:
        config = config or WaferConfig()
        if options:
            config = config.replace(**options)
        self.config = config
        self.store = (
            open_store(config.store_url)
            if store is None
            else (open_store(store) if isinstance(store, str) else store)
        )
        try:
            #: The secret keys in force, newest first (configured, kept beside SQLite, or
            #: random for the memory store; a shared store without keys raises ValueError).
            self._keys: tuple[str, ...] = server_secret_keys(config.secret_keys, self.store)
        except ValueError:
            if store is None or isinstance(store, str):  # opened here from a URL: ours to close
                self.store.close()
            raise
        if wechat is None:
            from .wechat.client import WeChatClient  # requests is imported only when needed

            wechat = WeChatClient(
                config.appid,
                config.app_secret,
                api_base=config.api_base,
                timeout=config.wechat_timeout,
            )
        self.wechat = wechat
        # Scoped by AppID: a store and key shared by two mini-programs keep their
        # sessions apart.
        self.secrets = SecretBox(self._keys, scope=config.appid)
        self.clock = clock
        #: Validated sessions kept in this process (``config.session_cache``), or
        #: ``None``: the store offers no invalidation channel, or the cache is off.
        self.session_cache = SessionCache.for_store(self.store, config.session_cache)
        self._tokens = tokens
        self._wechat_api: WeChatAPI | None = None
        self._lazy = threading.Lock()
        self._login_gate: tuple[asyncio.AbstractEventLoop, AsyncLoginGate] | None = None
        self._thread_gate = ThreadLoginGate(config.max_concurrent_logins, config.max_queued_logins)
        # WeChat's placeholders and this app's own defaults never overwrite a profile.
        self._nicknames = PLACEHOLDER_NICKNAMES | {config.default_nickname}
        self._avatars = PLACEHOLDER_AVATARS | {avatar_key(config.default_avatar)}

    def __repr__(self) -> str:
        return f"WaferAuth(appid={self.config.appid!r}, store={self.store!r})"

    def close(self) -> None:
        if self.session_cache is not None:
            self.session_cache.close()
        self.store.close()
        self.wechat.close()

    # -- login ------------------------------------------------------------------
    def login(
        self,
        code: str,
        encrypted_data: str | None = None,
        iv: str | None = None,
        *,
        legacy: bool = False,
        connected: Callable[[], bool] | None = None,
    ) -> LoginResult:
        """Exchange a ``wx.login`` code, register or update the user, open a session.

        With ``encrypted_data`` and ``iv`` (or ``legacy=True`` and no IV: the 2016 format),
        the profile inside is checked against this login's ``session_key`` and stored.
        Without them a user never seen before is registered with the default nickname and
        avatar.

        At most ``config.max_concurrent_logins`` run at once in a process and
        ``config.max_queued_logins`` more wait for a slot; beyond, or once the login's
        time (``login_timeout``) is up, it is refused with
        :class:`~wafer_py.exceptions.LoginsBusy`. WeChat gets the time that is left.
        ``connected`` says whether the client is still there: if not, WeChat is not called.
        """
        deadline = time.monotonic() + self.login_timeout
        self._thread_gate.acquire(deadline)
        try:
            if connected is not None and not connected():
                raise LoginAbandoned()
            plan = self._login(code, encrypted_data, iv, legacy, deadline, time.monotonic)
            return run(plan)
        finally:
            self._thread_gate.release()

    @property
    def login_timeout(self) -> float:
        """Seconds a login may take from its arrival (``login_timeout``, else
        ``wechat_timeout``)."""
        return self.config.login_timeout or self.config.wechat_timeout

    async def alogin(
        self,
        code: str,
        encrypted_data: str | None = None,
        iv: str | None = None,
        *,
        legacy: bool = False,
        gone: asyncio.Future[None] | None = None,
    ) -> LoginResult:
        """:meth:`login` for async callers: WeChat is called on the event loop where the
        client can (no thread waits on it), the store in a worker thread if it blocks.

        At most ``config.max_concurrent_logins`` run at once on one event loop; others
        wait for a slot. Without the cap, a burst of logins gets WeChat's answers back
        all together, and handling them in one go stalls every other request on the loop.
        The wait is bounded as in :meth:`login`; ``gone`` is done when the client hangs
        up, which ends the wait (:class:`~wafer_py.exceptions.LoginAbandoned`) and keeps
        the login from calling WeChat.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.login_timeout
        gate = self._login_slots()
        await gate.acquire(deadline, gone)
        try:
            if gone is not None and gone.done():
                raise LoginAbandoned()
            return await arun(self._login(code, encrypted_data, iv, legacy, deadline, loop.time))
        finally:
            gate.release()

    def _login_slots(self) -> AsyncLoginGate:
        """The running loop's login gate (its futures belong to one loop)."""
        loop = asyncio.get_running_loop()
        gate = self._login_gate
        if gate is None or gate[0] is not loop:
            slots = AsyncLoginGate(self.config.max_concurrent_logins, self.config.max_queued_logins)
            gate = self._login_gate = (loop, slots)
        return gate[1]

    def _login(
        self,
        code: str,
        encrypted_data: str | None,
        iv: str | None,
        legacy: bool,
        deadline: float,
        clock: Callable[[], float],
    ) -> Plan[LoginResult]:
        """The login, once for both runners: WeChat gets the time left before ``deadline``."""
        if deadline - clock() <= 0:
            raise LoginQueueTimeout()
        wx = yield WeChatLogin(self.wechat, code, deadline, clock)
        return (yield from self._complete(wx, encrypted_data, iv, legacy))

    def complete_login(
        self,
        wx: Code2Session,
        encrypted_data: str | None = None,
        iv: str | None = None,
        *,
        legacy: bool = False,
    ) -> LoginResult:
        """The part of :meth:`login` after WeChat's answer: check the encrypted profile,
        register or update the user, open a session."""
        return run(self._complete(wx, encrypted_data, iv, legacy))

    def _complete(
        self, wx: Code2Session, encrypted_data: str | None, iv: str | None, legacy: bool
    ) -> Plan[LoginResult]:
        profile: dict[str, Any] | None = None
        unionid = wx.unionid
        if encrypted_data and (iv or legacy):
            data = decrypt_data(
                wx.session_key,
                encrypted_data,
                iv if iv else None,
                appid=self.config.appid,
                openid=wx.openid,
                max_age=self.config.watermark_max_age,
                now=self.clock(),
            )
            profile = self.real_profile(data)
            found = data.get("unionId")
            unionid = unionid or (found if isinstance(found, str) else None)

        now = self.clock()
        defaults = {
            "nickName": self.config.default_nickname,
            "avatarUrl": self.config.default_avatar,
        }
        user = yield StoreCall(
            self.store,
            "ensure_user",
            (wx.openid,),
            {"unionid": unionid, "profile": {**defaults, **(profile or {})}, "now": now},
        )
        created = user.created_at == now
        if not created and user.updated_at == now:  # its unionid was filled in
            self._forget("user", wx.openid)
        if profile and not created:
            updated = yield StoreCall(
                self.store,
                "update_profile",
                (wx.openid, profile),
                {"now": now, "unionid": unionid},
            )
            self._forget("user", wx.openid)
            user = updated or user

        skey = new_skey()
        created_at = yield from self._prune(wx.openid, now)
        session = Session(
            id=new_session_id(),
            openid=wx.openid,
            skey_hash=self.secrets.hash_skey(skey),
            sealed_session_key=self.secrets.seal(wx.session_key, context=wx.openid),
            created_at=created_at,
            last_seen=now,
            expires_at=now + min(self.config.session_ttl, self.config.session_max_age),
        )
        yield StoreCall(self.store, "create_session", (session,))
        return LoginResult(user, session, skey, created)

    def _prune(self, openid: str, now: float) -> Plan[float]:
        """Make room for a new session of ``openid``; return its creation time.

        v2 clients log in before every ``login: true`` request, so sessions pile up;
        this keeps each user's count bounded without a cron job. It drops the user's
        expired sessions and the oldest live ones beyond ``max_sessions_per_user - 1``
        (oldest by creation time, ties by id) *before* the new session exists, so the
        login's own session is never the one dropped.

        The time returned is ``now``, or just after the user's newest session if that
        is not earlier (a clock that stood still, or stepped back under a second): one
        user's sessions get increasing creation times in login order, so "the oldest"
        is the first logged in even when logins share a timestamp.
        """
        listed = yield StoreCall(self.store, "list_sessions", (openid,))
        sessions: list[Session] = sorted(listed, key=lambda s: (s.created_at, s.id))
        live = [s for s in sessions if not s.is_expired(now)]
        doomed = [s for s in sessions if s.is_expired(now)]
        excess = len(live) - (self.config.max_sessions_per_user - 1)
        if excess > 0:
            doomed.extend(live[:excess])
        for session in doomed:
            try:
                yield StoreCall(self.store, "revoke_session", (session.id,))
            finally:
                self._forget("session", session.id)
        if not sessions:
            return now
        newest = sessions[-1].created_at
        if not now <= newest < now + 1.0:
            return now
        return max(newest + 1e-6, math.nextafter(newest, math.inf))

    # -- validation -------------------------------------------------------------
    def validate(self, credentials: Credentials) -> Authenticated:
        """Check session credentials; renew the sliding expiry. Raises ``InvalidSession``."""
        return run(self.validation(credentials))

    async def avalidate(self, credentials: Credentials) -> Authenticated:
        """:meth:`validate` for async callers (the store's async driver where it has one)."""
        return await arun(self.validation(credentials))

    def validation(self, credentials: Credentials) -> Plan[Authenticated]:
        """:meth:`validate` as a plan (:mod:`wafer_py.plans`). With a session cache, a
        hit yields no step unless its touch is due."""
        cache = self.session_cache
        if cache is None:
            found = yield StoreCall(self.store, "find_login", (), self._lookup(credentials))
            who, touch = self._check(credentials, found)
            if touch is not None:
                yield StoreCall(self.store, "touch_session", (who.session.id,), touch)
            return who
        if credentials.session_id is not None:
            key: CacheKey = ("v1", credentials.session_id)
        else:
            key = ("v2", self.secrets.hash_skey(credentials.skey))
        # Taken before the lookup and the store read: a fill is dropped if an
        # invalidation of the session or its user arrived since.
        token = cache.token()
        hit = cache.lookup(key)
        if hit is not None:
            session, user = hit
            now = self.clock()
            cap = session.created_at + self.config.session_max_age
            if now < session.expires_at and now < cap:
                # v1: the id is not a secret; the skey is checked on every hit.
                if credentials.session_id is not None and not self.secrets.check_skey(
                    credentials.skey, session.skey_hash
                ):
                    raise InvalidSession()
                if now - session.last_seen < self.config.touch_interval:
                    return Authenticated(user, session, credentials.generation)
                expires_at = min(now + self.config.session_ttl, cap)
                touch = {"last_seen": now, "expires_at": expires_at}
                yield StoreCall(self.store, "touch_session", (session.id,), touch)
                session = replace(session, last_seen=now, expires_at=expires_at)
                cache.fill(token, key, session, user)
                return Authenticated(user, session, credentials.generation)
            # Past the expiry this process saw (another may have renewed it): ask the store.
            cache.discard(key)
        found = yield StoreCall(self.store, "find_login", (), self._lookup(credentials))
        who, touch = self._check(credentials, found)
        if touch is not None:
            yield StoreCall(self.store, "touch_session", (who.session.id,), touch)
        session = who.session
        # v2: cached only under the hash it was found by, so that a hit is exact (a
        # session stored under an older secret key is always looked up in the store).
        if key[0] == "v1" or hmac.compare_digest(session.skey_hash, key[1]):
            cache.fill(token, key, session, who.user)
        return who

    def _forget(self, kind: Literal["session", "user", "all"], key: str = "") -> None:
        """After a write of this process: its own cache forgets at once (other processes'
        hear of it through the store's channel)."""
        if self.session_cache is not None:
            self.session_cache.invalidate(Invalidation(kind, key))

    def _lookup(self, credentials: Credentials) -> dict[str, Any]:
        if credentials.session_id is not None:
            return {"session_id": credentials.session_id}
        return {"skey_hashes": self.secrets.skey_hashes(credentials.skey)}

    def _check(
        self, credentials: Credentials, found: tuple[Session, User | None] | None
    ) -> tuple[Authenticated, dict[str, float] | None]:
        """The identity a lookup found, and the touch to record (``None`` if too soon)."""
        if found is None:
            raise InvalidSession()
        session, user = found
        if credentials.session_id is not None and not self.secrets.check_skey(
            credentials.skey, session.skey_hash
        ):
            raise InvalidSession()
        now = self.clock()
        if session.is_expired(now):
            raise InvalidSession("the session has expired; log in again")
        if user is None:
            raise InvalidSession()
        touch = None
        if now - session.last_seen >= self.config.touch_interval:
            expires_at = min(
                now + self.config.session_ttl, session.created_at + self.config.session_max_age
            )
            touch = {"last_seen": now, "expires_at": expires_at}
            session = replace(session, last_seen=now, expires_at=expires_at)
        return Authenticated(user, session, credentials.generation), touch

    # -- users ------------------------------------------------------------------
    def find_user(self, *, openid: str | None = None, unionid: str | None = None) -> User | None:
        """The user with this ``openid`` (and this ``unionid``, if given), or with this
        ``unionid``; ``None`` if there is none.

        A person has one unionid and one openid per AppID: in a store shared by several
        mini-programs, :meth:`find_users` gives every user of that person; this returns
        the one updated last. A user whose unionid is unknown (an app not bound to an
        Open Platform account) is found by openid only.
        """
        if openid is not None:
            user: User | None = run(StoreCall.plan(self.store, "get_user", openid))
            if user is not None and unionid is not None and user.unionid != unionid:
                return None
            return user
        if unionid is None:
            raise ValueError("find_user needs an openid or a unionid")
        users = self.find_users(unionid=unionid)
        return max(users, key=lambda u: (u.updated_at, u.created_at), default=None)

    def find_users(self, *, unionid: str) -> list[User]:
        """Every user with this ``unionid`` in the store, oldest first: one person's users
        of every mini-program sharing the store (see :meth:`find_user`)."""
        return list(run(StoreCall.plan(self.store, "find_users_by_unionid", unionid)))

    # -- profiles ---------------------------------------------------------------
    def real_profile(self, data: dict[str, Any]) -> dict[str, Any]:
        """The profile fields of decrypted user info that are the user's own: WeChat's
        anonymous placeholders (and this app's default nickname and avatar) and empty or
        zero values are dropped, so they never overwrite what the user set."""
        return real_profile(clean_profile(data), nicknames=self._nicknames, avatars=self._avatars)

    # -- encrypted data ---------------------------------------------------------
    def decrypt(self, who: Authenticated, encrypted_data: str, iv: str) -> dict[str, Any]:
        """Decrypt ``encryptedData`` with the session's stored ``session_key`` and check it.

        Checks the watermark's appid and that any ``openId`` inside is the session's user.
        """
        return decrypt_data(
            self._session_key(who),
            encrypted_data,
            iv,
            appid=self.config.appid,
            openid=who.openid,
            max_age=self.config.watermark_max_age,
            now=self.clock(),
        )

    def update_profile(self, who: Authenticated, encrypted_data: str, iv: str) -> Authenticated:
        """The seed flow: store the profile inside ``encryptedData``; return the new identity."""
        return run(self.profile_update(who, encrypted_data, iv))

    def profile_update(
        self, who: Authenticated, encrypted_data: str, iv: str
    ) -> Plan[Authenticated]:
        """:meth:`update_profile` as a plan (:mod:`wafer_py.plans`)."""
        data = self.decrypt(who, encrypted_data, iv)
        found = data.get("unionId")
        unionid = found if isinstance(found, str) and found else None
        profile = self.real_profile(data)
        if not profile and (unionid is None or who.user.unionid):
            return who  # an anonymous profile: nothing to store
        user = yield StoreCall(
            self.store,
            "update_profile",
            (who.openid, profile),
            {"now": self.clock(), "unionid": unionid},
        )
        self._forget("user", who.openid)
        if user is None:
            raise InvalidSession()
        return Authenticated(user, who.session, who.generation)

    def set_profile(
        self,
        who: Authenticated,
        nickname: str | None = None,
        avatar_url: str | None = None,
        *,
        own_avatar_prefix: str | None = None,
    ) -> Authenticated:
        """Store what the user filled in (a nickname, an avatar URL); return the new identity.

        Checked first (:mod:`wafer_py.fillin`): a nickname of 1-64 characters once
        trimmed, no control characters; an https avatar URL or one starting with
        ``own_avatar_prefix`` (this server's avatar route). ``InvalidProfile`` (400) and
        nothing stored otherwise. With ``config.check_nicknames`` the nickname also goes
        to WeChat's content check: ``ContentRejected`` (400) if it is judged risky.
        """
        from .exceptions import ContentRejected
        from .fillin import check_avatar_url, clean_nickname

        profile: dict[str, Any] = {}
        if nickname is not None:
            profile["nickName"] = clean_nickname(nickname)
        if avatar_url is not None:
            profile["avatarUrl"] = check_avatar_url(avatar_url, own_prefix=own_avatar_prefix)
        if not profile:
            return who
        # "review" is WeChat's "not sure": kept, as there is no one here to review it
        if (
            "nickName" in profile
            and self.config.check_nicknames
            and self.wechat_api.check_text(profile["nickName"], who.openid) == "risky"
        ):
            raise ContentRejected()
        now = self.clock()
        user = run(StoreCall.plan(self.store, "update_profile", who.openid, profile, now=now))
        self._forget("user", who.openid)
        if user is None:
            raise InvalidSession()
        return Authenticated(user, who.session, who.generation)

    # -- WeChat's server APIs: access_token, phone numbers, session keys ----------
    @property
    def tokens(self) -> AccessTokenCache:
        """The shared ``access_token`` cache (made on first use, in this auth's store)."""
        with self._lazy:
            if self._tokens is None:
                from .stores.entries import entry_store
                from .wechat.tokens import AccessTokenCache

                store = entry_store(self.store)  # a store without entries stops here
                self._tokens = AccessTokenCache(store, self.wechat, clock=self.clock)
            return self._tokens

    @property
    def wechat_api(self) -> WeChatAPI:
        """WeChat's token-taking APIs, with tokens from :attr:`tokens`."""
        tokens = self.tokens
        with self._lazy:
            if self._wechat_api is None:
                from .wechat.api import WeChatAPI

                self._wechat_api = WeChatAPI(self.wechat, tokens)
            return self._wechat_api

    def fetch_phone_number(self, who: Authenticated, code: str) -> PhoneNumber:
        """Exchange a ``getPhoneNumber`` code for the user's number and store it on the user.

        The code goes to WeChat with the session's openid; raises
        :class:`~wafer_py.exceptions.InvalidCode` for a bad, used or expired code.
        """
        phone = self.wechat_api.get_phone_number(code, openid=who.openid)
        self.set_phone_number(who, phone)
        return phone

    def decrypt_phone_number(self, who: Authenticated, encrypted_data: str, iv: str) -> PhoneNumber:
        """The legacy flow: the phone number inside ``encryptedData`` (not stored)."""
        data = self.decrypt(who, encrypted_data, iv)
        try:
            return PhoneNumber.from_wechat(data)
        except WeChatError:
            raise MalformedEncryptedData("encryptedData holds no phone number") from None

    def set_phone_number(self, who: Authenticated, phone: PhoneNumber | None) -> Authenticated:
        """Store (or with ``None`` clear) the user's phone number; return the new identity."""
        user = run(
            StoreCall.plan(
                self.store,
                "update_phone",
                who.openid,
                None if phone is None else phone.e164,
                now=self.clock(),
            )
        )
        self._forget("user", who.openid)
        if user is None:
            raise InvalidSession()
        return Authenticated(user, who.session, who.generation)

    def check_session_key(self, who: Authenticated) -> bool:
        """Ask WeChat whether the session's stored ``session_key`` is still valid.

        ``False`` means encrypted data from the client will not decrypt: log in again.
        """
        return self.wechat_api.check_session_key(who.openid, self._session_key(who))

    def reset_session_key(self, who: Authenticated) -> Authenticated:
        """Have WeChat issue a new ``session_key`` for the user (``resetusersessionkey``,
        signed with the session's current key) and write it into every live session of
        the user; return the identity with the new key.

        WeChat invalidates the old key at once, so every session of the user is resealed
        under the new one (one store write per live session), not just this one. Raises
        :class:`~wafer_py.exceptions.StaleSessionKey` if the session's key is no longer
        the user's current one (WeChat refuses the signature): log in again.
        """
        try:
            new_key = self.wechat_api.reset_session_key(who.openid, self._session_key(who))
        except InvalidSignature as exc:
            if exc.errcode == 87009:  # the signature: the key is not the current one
                raise StaleSessionKey("this session's key is stale; log in again") from None
            raise
        now = self.clock()
        session = who.session
        listed: list[Session] = run(StoreCall.plan(self.store, "list_sessions", who.openid))
        for live in listed:
            if live.is_expired(now):
                continue
            sealed = self.secrets.seal(new_key, context=who.openid)
            plan = StoreCall.plan(self.store, "reseal_session", live.id, sealed, openid=who.openid)
            if run(plan) and live.id == session.id:
                session = replace(session, sealed_session_key=sealed)
        self._forget("user", who.openid)
        return Authenticated(who.user, session, who.generation)

    def _session_key(self, who: Authenticated) -> str:
        try:
            return self.secrets.unseal(who.session.sealed_session_key, context=who.session.openid)
        except ValueError:
            # Sealed under a key no longer configured: the data cannot be opened.
            raise StaleSessionKey("this session's key cannot be opened; log in again") from None

    # -- revocation -------------------------------------------------------------
    def revoke(self, session_id: str) -> bool:
        """Revoke one session; ``True`` if it existed."""
        try:  # forgotten here even if the answer was lost: the write may have been made
            return bool(run(StoreCall.plan(self.store, "revoke_session", session_id)))
        finally:
            self._forget("session", session_id)

    async def arevoke(self, session_id: str) -> bool:
        """:meth:`revoke` for async callers."""
        try:
            return bool(await arun(StoreCall.plan(self.store, "revoke_session", session_id)))
        finally:
            self._forget("session", session_id)

    def revoke_user(self, openid: str) -> int:
        """Revoke every session of a user; return how many."""
        try:
            return int(run(StoreCall.plan(self.store, "revoke_user", openid)))
        finally:
            self._forget("user", openid)

    def purge_expired(self) -> int:
        """Delete expired sessions; return how many."""
        count = int(run(StoreCall.plan(self.store, "purge_expired", self.clock())))
        if count:
            self._forget("all")
        return count
