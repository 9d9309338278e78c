"""The framework-agnostic core: log in, validate, update the profile, revoke.

:class:`WaferAuth` ties the configuration, a session store and the WeChat client
together. It knows nothing of HTTP frameworks; the adapters call it.

Its parts are written in ``wafer_py._auth``, one idea a module (the value types, logins,
validation, the profile, the session key); users, revocation and the construction are
here. Import every name from this module.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from typing import Literal as Literal  # the value types' hints resolve here (their __module__)

from ._auth.identity import Authenticated as Authenticated
from ._auth.identity import Credentials as Credentials
from ._auth.identity import LoginResult as LoginResult
from ._auth.login import LoginFlow
from ._auth.profile import Profiles
from ._auth.validation import Validation
from .config import WaferConfig
from .crypto import SecretBox
from .logingate import ThreadLoginGate
from .models import PLACEHOLDER_AVATARS, PLACEHOLDER_NICKNAMES, User, avatar_key
from .models import Session as Session  # as Literal above
from .observe import NO_OBSERVER, Observer, observer_for
from .plans import StoreCall, arun, run
from .serverkeys import server_secret_keys
from .sessioncache import SessionCache
from .stores import SessionStore, open_store

if TYPE_CHECKING:
    from .wechat.client import WeChatClient
    from .wechat.tokens import AccessTokenCache

__all__ = ["WaferAuth", "Credentials", "Authenticated", "LoginResult"]

logger = logging.getLogger("wafer_py")


class WaferAuth(LoginFlow, Validation, Profiles):
    """Wafer login and sessions for one mini-program.

    ``store`` is a :class:`~wafer_py.stores.SessionStore` or a store URL (default:
    ``config.store_url``); ``wechat`` defaults to a :class:`~wafer_py.wechat.WeChatClient`
    for ``config.api_base``. ``clock`` returns the time in seconds (inject one in tests).
    ``tokens`` is the :class:`~wafer_py.wechat.tokens.AccessTokenCache` for WeChat's server APIs
    (default: one in ``store``, refreshed 5 minutes early through ``stable_token``).
    ``observer`` is told of logins, validations, store and WeChat calls
    (:mod:`wafer_py.observe`; default: the one ``config.metrics`` names, else nothing);
    it is handed to ``store``, ``wechat`` and ``tokens`` unless they have their own.

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
        observer: Observer | None = None,
        **options: Any,
    ) -> None:
        config = config or WaferConfig()
        if options:
            config = config.replace(**options)
        self.config = config
        #: What logins, validations and I/O are reported to (:mod:`wafer_py.observe`):
        #: ``observer``, else the one ``config.metrics`` names (checked first: a missing
        #: prometheus_client stops here, before anything is opened).
        self.observer: Observer = observer if observer is not None else observer_for(config.metrics)
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
        if self.observer is not NO_OBSERVER:  # handed on unless they have their own
            for part in (self.store, wechat, tokens):
                if getattr(part, "observer", None) is NO_OBSERVER:
                    part.observer = self.observer  # type: ignore[union-attr]
        # Scoped by AppID: a store and key shared by two mini-programs keep their
        # sessions apart.
        self.secrets = SecretBox(self._keys, scope=config.appid)
        self.clock = clock
        #: Validated sessions kept in this process (``config.session_cache``), or
        #: ``None``: the store offers no invalidation channel, or the cache is off.
        self.session_cache = SessionCache.for_store(self.store, config.session_cache)
        self._tokens = tokens
        self._wechat_api = None
        self._lazy = threading.Lock()
        self._login_gate = None
        self._thread_gate = ThreadLoginGate(
            config.max_concurrent_logins, config.max_queued_logins, self.observer
        )
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
