"""An in-memory store: one process, nothing kept across restarts. For tests and demos."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, ClassVar

from ..models import Session, User
from .base import SessionStore, StoreStats
from .entries import EntryStore

__all__ = ["MemoryStore"]


class MemoryStore(SessionStore, EntryStore):
    """Users and sessions in dictionaries, guarded by one lock. Never blocks on I/O."""

    schemes: ClassVar[tuple[str, ...]] = ("memory",)
    blocking: ClassVar[bool] = False
    #: One process: a random secret key is as good as any.
    shared: ClassVar[bool] = False

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users: dict[str, User] = {}
        self._sessions: dict[str, Session] = {}
        self._by_skey: dict[str, str] = {}
        self._by_user: dict[str, dict[str, None]] = {}
        self._by_unionid: dict[str, dict[str, None]] = {}
        self._entries: dict[str, tuple[str, float]] = {}
        self._locks: dict[str, tuple[str, float]] = {}

    def __repr__(self) -> str:
        return f"MemoryStore(users={len(self._users)}, sessions={len(self._sessions)})"

    def ensure_user(
        self, openid: str, *, unionid: str | None, profile: dict[str, Any], now: float
    ) -> User:
        with self._lock:
            user = self._users.get(openid)
            if user is None:
                user = User(openid, unionid, dict(profile), now, now)
            elif unionid and not user.unionid:
                user = replace(user, unionid=unionid, updated_at=now)
            else:
                return user
            self._keep(user)
            return user

    def _keep(self, user: User) -> None:
        old = self._users.get(user.openid)
        self._users[user.openid] = user
        if old is not None and old.unionid and old.unionid != user.unionid:
            self._by_unionid.get(old.unionid, {}).pop(user.openid, None)
        if user.unionid:
            self._by_unionid.setdefault(user.unionid, {})[user.openid] = None

    def update_profile(
        self, openid: str, profile: dict[str, Any], *, now: float, unionid: str | None = None
    ) -> User | None:
        with self._lock:
            user = self._users.get(openid)
            if user is None:
                return None
            user = user.with_profile(profile, now=now, unionid=unionid)
            self._keep(user)
            return user

    def update_phone(self, openid: str, phone: str | None, *, now: float) -> User | None:
        with self._lock:
            user = self._users.get(openid)
            if user is None:
                return None
            user = replace(user, phone=phone, updated_at=now)
            self._users[openid] = user
            return user

    def get_user(self, openid: str) -> User | None:
        return self._users.get(openid)

    def find_users_by_unionid(self, unionid: str) -> list[User]:
        with self._lock:
            found = [self._users[o] for o in self._by_unionid.get(unionid, ())]
        return sorted(found, key=lambda u: (u.created_at, u.openid))

    def create_session(self, session: Session) -> None:
        with self._lock:
            self._sessions[session.id] = session
            self._by_skey[session.skey_hash] = session.id
            self._by_user.setdefault(session.openid, {})[session.id] = None

    def get_session(self, session_id: str) -> Session | None:
        return self._sessions.get(session_id)

    def find_session(self, skey_hash: str) -> Session | None:
        session_id = self._by_skey.get(skey_hash)
        return None if session_id is None else self._sessions.get(session_id)

    def find_login(
        self, *, session_id: str | None = None, skey_hashes: Sequence[str] = ()
    ) -> tuple[Session, User | None] | None:
        # The base class's lookup, without its three method calls: this is every
        # validated request's path.
        if session_id is None:
            for skey_hash in skey_hashes:
                session_id = self._by_skey.get(skey_hash)
                if session_id is not None:
                    break
            else:
                return None
        session = self._sessions.get(session_id)
        if session is None:
            return None
        return session, self._users.get(session.openid)

    def touch_session(self, session_id: str, *, last_seen: float, expires_at: float) -> None:
        with self._lock:
            session = self._sessions.get(session_id)
            if session is not None:
                self._sessions[session_id] = replace(
                    session, last_seen=last_seen, expires_at=expires_at
                )

    def supersede_sessions(
        self, openid: str, session_ids: Sequence[str], *, expires_at: float, now: float
    ) -> int:
        changed = 0
        with self._lock:
            for session_id in session_ids:
                session = self._sessions.get(session_id)
                if (
                    session is not None
                    and session.openid == openid
                    and session.expires_at > expires_at
                ):
                    self._sessions[session_id] = replace(session, expires_at=expires_at)
                    changed += 1
        return changed

    def reseal_session(self, session_id: str, sealed_session_key: str, *, openid: str) -> bool:
        with self._lock:
            session = self._sessions.get(session_id)
            if session is None or session.openid != openid:
                return False
            self._sessions[session_id] = replace(session, sealed_session_key=sealed_session_key)
            return True

    def _drop(self, session_id: str) -> bool:
        session = self._sessions.pop(session_id, None)
        if session is None:
            return False
        self._by_skey.pop(session.skey_hash, None)
        owned = self._by_user.get(session.openid)
        if owned is not None:
            owned.pop(session_id, None)
            if not owned:
                del self._by_user[session.openid]
        return True

    def revoke_session(self, session_id: str) -> bool:
        with self._lock:
            return self._drop(session_id)

    def revoke_user(self, openid: str) -> int:
        with self._lock:
            ids = list(self._by_user.get(openid, ()))
            return sum(self._drop(i) for i in ids)

    def list_sessions(self, openid: str) -> list[Session]:
        with self._lock:
            ids = list(self._by_user.get(openid, ()))
            found = [self._sessions[i] for i in ids if i in self._sessions]
        return sorted(found, key=lambda s: (s.created_at, s.id))

    def purge_expired(self, now: float, *, limit: int | None = None) -> int:
        with self._lock:
            expired = [s.id for s in self._sessions.values() if s.is_expired(now)][:limit]
            for table in (self._entries, self._locks):
                for key in [k for k, (_, until) in table.items() if until <= now]:
                    del table[key]
            return sum(self._drop(i) for i in expired)

    def stats(self, now: float) -> StoreStats:
        with self._lock:
            expired = sum(1 for s in self._sessions.values() if s.is_expired(now))
            entries = sum(1 for _, until in self._entries.values() if until > now)
            return StoreStats(len(self._users), len(self._sessions) - expired, expired, entries)

    def get_entry(self, key: str, *, now: float) -> str | None:
        found = self._entries.get(key)
        if found is None or found[1] <= now:
            return None
        return found[0]

    def set_entry(self, key: str, value: str, *, expires_at: float) -> None:
        with self._lock:
            self._entries[key] = (value, expires_at)

    def delete_entry(self, key: str) -> bool:
        with self._lock:
            return self._entries.pop(key, None) is not None

    def acquire_lock(self, name: str, owner: str, *, ttl: float, now: float) -> bool:
        with self._lock:
            held = self._locks.get(name)
            if held is not None and held[0] != owner and held[1] > now:
                return False
            self._locks[name] = (owner, now + ttl)
            return True

    def release_lock(self, name: str, owner: str) -> bool:
        with self._lock:
            held = self._locks.get(name)
            if held is None or held[0] != owner:
                return False
            del self._locks[name]
            return True
