"""What WaferAuth's parts share: its state, declared here and set by
:class:`~wafer_py.auth.WaferAuth`'s constructor, and the helpers more than one part calls:
forgetting cached sessions after a write, the profile filter, WeChat's token-taking APIs.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

from ..config import WaferConfig
from ..crypto import SecretBox
from ..models import clean_profile, real_profile
from ..observe import Observer
from ..sessioncache import SessionCache
from ..stores import SessionStore
from ..stores.invalidation import Invalidation

if TYPE_CHECKING:
    from ..wechat.api import WeChatAPI
    from ..wechat.client import WeChatClient
    from ..wechat.tokens import AccessTokenCache

__all__ = ["AuthBase"]


class AuthBase:
    """The state of a :class:`~wafer_py.auth.WaferAuth` and the helpers its parts share."""

    config: WaferConfig
    observer: Observer
    store: SessionStore
    wechat: WeChatClient
    secrets: SecretBox
    clock: Callable[[], float]
    session_cache: SessionCache | None
    _tokens: AccessTokenCache | None
    _wechat_api: WeChatAPI | None
    _lazy: threading.Lock
    _nicknames: frozenset[str]
    _avatars: frozenset[str]

    def _forget(self, kind: Literal["session", "user", "all"], key: str = "") -> None:
        """After a write of this process: its own cache forgets at once (other processes'
        hear of it through the store's channel)."""
        if self.session_cache is not None:
            self.session_cache.invalidate(Invalidation(kind, key))

    # -- profiles ---------------------------------------------------------------
    def real_profile(self, data: dict[str, Any]) -> dict[str, Any]:
        """The profile fields of decrypted user info that are the user's own: WeChat's
        anonymous placeholders (and this app's default nickname and avatar) and empty or
        zero values are dropped, so they never overwrite what the user set."""
        return real_profile(clean_profile(data), nicknames=self._nicknames, avatars=self._avatars)

    # -- WeChat's server APIs: access_token -------------------------------------
    @property
    def tokens(self) -> AccessTokenCache:
        """The shared ``access_token`` cache (made on first use, in this auth's store)."""
        with self._lazy:
            if self._tokens is None:
                from ..stores.entries import entry_store
                from ..wechat.tokens import AccessTokenCache

                store = entry_store(self.store)  # a store without entries stops here
                self._tokens = AccessTokenCache(
                    store, self.wechat, clock=self.clock, observer=self.observer
                )
            return self._tokens

    @property
    def wechat_api(self) -> WeChatAPI:
        """WeChat's token-taking APIs, with tokens from :attr:`tokens`."""
        tokens = self.tokens
        with self._lazy:
            if self._wechat_api is None:
                from ..wechat.api import WeChatAPI

                self._wechat_api = WeChatAPI(self.wechat, tokens)
            return self._wechat_api
