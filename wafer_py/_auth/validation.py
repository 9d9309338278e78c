"""Validation, run on every request: credentials to an identity, the sliding expiry
renewed at most once a ``touch_interval``.

With the session cache (:mod:`wafer_py.sessioncache`), a hit whose touch is not due
yields no step at all; a miss reads the store and fills the cache. Kept flat on purpose:
:meth:`Validation.validation` is the hot path, with no helper call on a cache hit.
"""

from __future__ import annotations

import hmac
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ..exceptions import InvalidSession
from ..models import Session, User
from ..plans import Plan, StoreCall, arun, run
from .base import AuthBase
from .identity import Authenticated, Credentials

if TYPE_CHECKING:
    from ..sessioncache import CacheKey

__all__ = ["Validation"]


class Validation(AuthBase):
    """:meth:`validate` and its async and plan forms."""

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
        hit = None if token is None else cache.lookup(key)
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
