"""The ``django://`` store: users, sessions, entries and locks on a Django project's own
database, through its ORM, so the project needs no second connection pool.

``django://default`` names the database alias (``settings.DATABASES``); the tables are
those of ``wafer_py.django``'s migrations (``INSTALLED_APPS`` and ``migrate``). Like every
store it holds skeys hashed and session_keys sealed: WaferAuth hands it nothing else.

Each call is one short statement or one short transaction. Under ASGI the middleware runs
the calls in a worker thread (the ORM is synchronous); :meth:`DjangoStore.afind_login`
goes through Django's ``sync_to_async``, which keeps a request's ORM calls on one thread.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Self, TypeVar, cast
from urllib.parse import urlsplit

from ..models import Session, User
from .base import SessionStore, StoreStats
from .entries import EntryStore

if TYPE_CHECKING:
    from ..django.models import StoredSession, StoredUser

__all__ = ["DjangoStore"]

F = TypeVar("F", bound=Callable[..., Any])


def _healing(method: F) -> F:
    """After a database error, drop the thread's connection if it is broken (the server
    restarted, the network failed), so the next call reconnects. Django does that at the
    start and end of each request; the store is also called from threads that serve no
    Django request (the ASGI middleware's workers), whose connection would stay broken.
    Never inside a transaction of the caller's, which is theirs to end."""

    @functools.wraps(method)
    def call(self: DjangoStore, *args: Any, **kwargs: Any) -> Any:
        from django.db import Error, connections

        try:
            return method(self, *args, **kwargs)
        except Error:
            connection = connections[self.alias]
            if not connection.in_atomic_block:
                connection.close_if_unusable_or_obsolete()
            raise

    return cast(F, call)


class DjangoStore(SessionStore, EntryStore):
    """The session store on the Django database ``alias`` (default ``"default"``).

    Needs Django set up (``django.setup()``, as ``manage.py`` and the WSGI/ASGI entry
    points do) with ``"wafer_py.django"`` in ``INSTALLED_APPS``. An alias missing from
    ``settings.DATABASES`` raises ``ValueError`` naming it.
    """

    schemes: ClassVar[tuple[str, ...]] = ("django",)

    def __init__(self, alias: str = "default") -> None:
        from django.conf import settings

        if alias not in settings.DATABASES:
            raise ValueError(
                f"django://{alias}: no database {alias!r} in settings.DATABASES "
                f"(it has: {', '.join(sorted(settings.DATABASES))})"
            )
        from ..django import models

        self.alias = alias
        self._m = models

    @classmethod
    def from_url(cls, url: str) -> Self:
        """``django://ALIAS`` (``django://`` alone: ``default``)."""
        parts = urlsplit(url)
        alias = parts.netloc or parts.path.strip("/") or "default"
        return cls(alias)

    def __repr__(self) -> str:
        return f"DjangoStore(alias={self.alias!r})"

    # -- helpers ----------------------------------------------------------------
    def _users(self) -> Any:
        return self._m.StoredUser.objects.using(self.alias)

    def _sessions(self) -> Any:
        return self._m.StoredSession.objects.using(self.alias)

    def _entries(self) -> Any:
        return self._m.StoredEntry.objects.using(self.alias)

    def _locks(self) -> Any:
        return self._m.StoredLock.objects.using(self.alias)

    def _atomic(self) -> Any:
        from django.db import transaction

        return transaction.atomic(using=self.alias)

    @staticmethod
    def _user(row: StoredUser) -> User:
        return User(
            openid=row.openid,
            unionid=row.unionid,
            profile=json.loads(row.profile),
            created_at=row.created_at,
            updated_at=row.updated_at,
            phone=row.phone,
        )

    @staticmethod
    def _session(row: StoredSession) -> Session:
        return Session(
            id=row.id,
            openid=row.openid,
            skey_hash=row.skey_hash,
            sealed_session_key=row.sealed_session_key,
            created_at=row.created_at,
            last_seen=row.last_seen,
            expires_at=row.expires_at,
        )

    def _insert(self, manager: Any, **values: Any) -> bool:
        """Insert a row; ``False`` if its key is taken (in a savepoint, so a caller's
        transaction survives the failed insert)."""
        from django.db import IntegrityError

        try:
            with self._atomic():
                manager.create(**values)
        except IntegrityError:
            return False
        return True

    # -- users ------------------------------------------------------------------
    @_healing
    def ensure_user(
        self, openid: str, *, unionid: str | None, profile: dict[str, Any], now: float
    ) -> User:
        row = self._users().filter(pk=openid).first()
        if row is None:
            values = {
                "openid": openid,
                "unionid": unionid or None,
                "profile": json.dumps(profile, ensure_ascii=False),
                "created_at": now,
                "updated_at": now,
                "phone": None,
            }
            # Concurrent first logins: one insert wins, the others read its row.
            if self._insert(self._users(), **values):
                return self._user(self._m.StoredUser(**values))
            row = self._users().get(pk=openid)
        if unionid and not row.unionid:
            self._users().filter(pk=openid, unionid__isnull=True).update(
                unionid=unionid, updated_at=now
            )
            row = self._users().get(pk=openid)
        return self._user(row)

    @_healing
    def update_profile(
        self, openid: str, profile: dict[str, Any], *, now: float, unionid: str | None = None
    ) -> User | None:
        with self._atomic():
            # Write first: it takes the row's lock (PostgreSQL) or the write lock, waiting
            # for it (SQLite, where a transaction that read first could not wait), so no
            # concurrent merge is lost.
            if not self._users().filter(pk=openid).update(updated_at=now):
                return None
            row = self._users().get(pk=openid)
            user = self._user(row).with_profile(profile, now=now, unionid=unionid)
            row.profile = json.dumps(user.profile, ensure_ascii=False)
            row.unionid = user.unionid
            row.save(using=self.alias, update_fields=["profile", "unionid"])
        return user

    @_healing
    def update_phone(self, openid: str, phone: str | None, *, now: float) -> User | None:
        if not self._users().filter(pk=openid).update(phone=phone, updated_at=now):
            return None
        return self.get_user(openid)

    @_healing
    def get_user(self, openid: str) -> User | None:
        row = self._users().filter(pk=openid).first()
        return None if row is None else self._user(row)

    @_healing
    def find_users_by_unionid(self, unionid: str) -> list[User]:
        rows = self._users().filter(unionid=unionid).order_by("created_at", "openid")
        return [self._user(row) for row in rows]

    # -- sessions ---------------------------------------------------------------
    @_healing
    def create_session(self, session: Session) -> None:
        self._sessions().create(
            id=session.id,
            openid=session.openid,
            skey_hash=session.skey_hash,
            sealed_session_key=session.sealed_session_key,
            created_at=session.created_at,
            last_seen=session.last_seen,
            expires_at=session.expires_at,
        )

    @_healing
    def get_session(self, session_id: str) -> Session | None:
        row = self._sessions().filter(pk=session_id).first()
        return None if row is None else self._session(row)

    @_healing
    def find_session(self, skey_hash: str) -> Session | None:
        row = self._sessions().filter(skey_hash=skey_hash).first()
        return None if row is None else self._session(row)

    async def afind_login(
        self, *, session_id: str | None = None, skey_hashes: Sequence[str] = ()
    ) -> tuple[Session, User | None] | None:
        from asgiref.sync import sync_to_async

        find = sync_to_async(self.find_login)
        return await find(session_id=session_id, skey_hashes=skey_hashes)

    async def atouch_session(self, session_id: str, *, last_seen: float, expires_at: float) -> None:
        from asgiref.sync import sync_to_async

        touch = sync_to_async(self.touch_session)
        await touch(session_id, last_seen=last_seen, expires_at=expires_at)

    @_healing
    def touch_session(self, session_id: str, *, last_seen: float, expires_at: float) -> None:
        self._sessions().filter(pk=session_id).update(last_seen=last_seen, expires_at=expires_at)

    @_healing
    def supersede_sessions(
        self, openid: str, session_ids: Sequence[str], *, expires_at: float, now: float
    ) -> int:
        if not session_ids:
            return 0
        shortened = self._sessions().filter(
            openid=openid, pk__in=list(session_ids), expires_at__gt=expires_at
        )
        return int(shortened.update(expires_at=expires_at))

    @_healing
    def reseal_session(self, session_id: str, sealed_session_key: str, *, openid: str) -> bool:
        done = self._sessions().filter(pk=session_id, openid=openid)
        return bool(done.update(sealed_session_key=sealed_session_key))

    @_healing
    def revoke_session(self, session_id: str) -> bool:
        deleted, _ = self._sessions().filter(pk=session_id).delete()
        return bool(deleted)

    @_healing
    def revoke_user(self, openid: str) -> int:
        deleted, _ = self._sessions().filter(openid=openid).delete()
        return int(deleted)

    @_healing
    def list_sessions(self, openid: str) -> list[Session]:
        rows = self._sessions().filter(openid=openid).order_by("created_at", "id")
        return [self._session(row) for row in rows]

    @_healing
    def purge_expired(self, now: float, *, limit: int | None = None) -> int:
        with self._atomic():
            # The writes first (see update_profile): SQLite's write lock is waited for.
            self._entries().filter(expires_at__lte=now).delete()
            self._locks().filter(expires_at__lte=now).delete()
            expired = self._sessions().filter(expires_at__lte=now).order_by("expires_at")
            ids = list(expired.values_list("id", flat=True)[:limit])
            deleted, _ = self._sessions().filter(pk__in=ids).delete() if ids else (0, {})
        return int(deleted)

    @_healing
    def stats(self, now: float) -> StoreStats:
        sessions = self._sessions()
        expired = sessions.filter(expires_at__lte=now).count()
        return StoreStats(
            users=self._users().count(),
            active_sessions=sessions.count() - expired,
            expired_sessions=expired,
            entries=self._entries().filter(expires_at__gt=now).count(),
        )

    # -- entries and locks --------------------------------------------------------
    @_healing
    def get_entry(self, key: str, *, now: float) -> str | None:
        found = self._entries().filter(pk=key, expires_at__gt=now).values_list("value", flat=True)
        value: str | None = found.first()
        return value

    @_healing
    def set_entry(self, key: str, value: str, *, expires_at: float) -> None:
        if self._entries().filter(pk=key).update(value=value, expires_at=expires_at):
            return
        if not self._insert(self._entries(), key=key, value=value, expires_at=expires_at):
            # Another writer inserted it first: last write wins, as in the other stores.
            self._entries().filter(pk=key).update(value=value, expires_at=expires_at)

    @_healing
    def delete_entry(self, key: str) -> bool:
        deleted, _ = self._entries().filter(pk=key).delete()
        return bool(deleted)

    @_healing
    def acquire_lock(self, name: str, owner: str, *, ttl: float, now: float) -> bool:
        from django.db.models import Q

        # Take it over if it is ours or has lapsed (one conditional UPDATE: the database
        # re-checks the condition against a concurrent winner), else insert it.
        taken = (
            self._locks()
            .filter(Q(owner=owner) | Q(expires_at__lte=now), pk=name)
            .update(owner=owner, expires_at=now + ttl)
        )
        if taken:
            return True
        return self._insert(self._locks(), name=name, owner=owner, expires_at=now + ttl)

    @_healing
    def release_lock(self, name: str, owner: str) -> bool:
        deleted, _ = self._locks().filter(pk=name, owner=owner).delete()
        return bool(deleted)
