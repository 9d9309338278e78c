"""The session store interface every backend implements.

A store keeps :class:`~wafer_py.models.User` and :class:`~wafer_py.models.Session` records
(entries and locks are :mod:`~wafer_py.stores.entries`' contract).
It is told the time (``now``) by its caller, so tests drive expiry with a clock instead of
sleeping. It never sees a secret in the clear: skeys arrive hashed and session_keys sealed.

Every method is synchronous. ``blocking`` tells the ASGI side whether a call may wait on
I/O (it then runs in a worker thread) or returns at once (the memory store).

A backend that cannot reach its server raises
:class:`~wafer_py.exceptions.StoreUnavailable`; the middleware answers 503 then.
"""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Self, TypeVar

from ..exceptions import StoreUnavailable, WaferError
from ..models import Session, User
from ..observe import NO_OBSERVER, Observer
from .invalidation import InvalidationChannel

__all__ = ["SessionStore", "StoreStats", "call_store", "store_failure"]

logger = logging.getLogger("wafer_py")

T = TypeVar("T")


class _Outage:
    """Whether the store is failing, so that an outage logs one line, not one per request.

    The first failure logs an error; later failures while it lasts log at debug level;
    the first success of a call made *during* the outage logs that the store is back (a
    call that began before the outage was noticed proves nothing).
    """

    def __init__(self) -> None:
        self.down = False
        self._lock = threading.Lock()

    def failed(self, detail: str) -> None:
        with self._lock:
            if self.down:
                logger.debug("wafer_py: session store still unavailable: %s", detail)
                return
            self.down = True
        logger.error(
            "wafer_py: session store unavailable, answering 503 until it is back: %s", detail
        )

    def succeeded(self) -> None:
        with self._lock:
            if not self.down:
                return
            self.down = False
        logger.warning("wafer_py: session store is reachable again")


OUTAGE = _Outage()


def store_failure(exc: Exception) -> Exception:
    """What a failed store call raises: a wafer_py error as it is, any other exception
    (a driver's) as ``StoreUnavailable``; an unavailable store is recorded as an outage."""
    if isinstance(exc, StoreUnavailable):
        OUTAGE.failed(exc.detail or "no detail")
        return exc
    if isinstance(exc, WaferError):
        return exc
    detail = f"{type(exc).__name__}: {exc}"
    OUTAGE.failed(detail)
    return StoreUnavailable(detail=detail)


def call_store(call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Call a store method; a driver's own exception becomes ``StoreUnavailable``.

    Backends raise ``StoreUnavailable`` themselves where they know the failure (with
    what went wrong in its ``detail``); anything else a driver throws (a lost
    connection, a broken server) is answered the same way, never as a 500. An outage
    logs one error line when it starts and one line when it ends.
    """
    during_outage = OUTAGE.down
    try:
        result = call(*args, **kwargs)
    except Exception as exc:
        failure = store_failure(exc)
        if failure is exc:
            raise
        raise failure from None
    if during_outage:
        OUTAGE.succeeded()
    return result


async def acall_store(call: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
    """:func:`call_store` for a coroutine function."""
    during_outage = OUTAGE.down
    try:
        result = await call(*args, **kwargs)
    except Exception as exc:
        failure = store_failure(exc)
        if failure is exc:
            raise
        raise failure from None
    if during_outage:
        OUTAGE.succeeded()
    return result


@dataclass(frozen=True)
class StoreStats:
    """Counts for ``wafer-py sessions stats``: sessions by state at a moment."""

    users: int
    active_sessions: int
    expired_sessions: int
    entries: int = 0

    @property
    def sessions(self) -> int:
        return self.active_sessions + self.expired_sessions


class SessionStore(ABC):
    """Where users and sessions live. Subclass it to add a backend.

    Entries and locks (for the token cache, the web login and the OAuth state) are a
    contract of their own, :class:`~wafer_py.stores.EntryStore`: the bundled stores
    implement both. A new backend declares its URL :attr:`schemes` and joins
    :func:`~wafer_py.stores.open_store` with :func:`~wafer_py.stores.register_store`.

    The contract (tested for every backend by :mod:`wafer_py.testing`):

    * :meth:`ensure_user` is atomic: concurrent first logins of one openid all get the
      same user, and an existing user's profile is kept.
    * A user may have any number of live sessions.
    * Lookups return expired sessions too; the caller decides (it knows the time).
    """

    #: URL schemes this backend opens (``open_store`` dispatches on them).
    schemes: ClassVar[tuple[str, ...]] = ()
    #: Whether a call may block on I/O.
    blocking: ClassVar[bool] = True
    #: Whether processes that share nothing but this store may use it at once (a database
    #: server: Redis, PostgreSQL, MySQL). They must then all be given the same secret key
    #: (``WAFER_SECRET_KEY``), and none may make one up: a shared store without one stops
    #: the app at start. False for the memory store (one process) and SQLite (one machine,
    #: whose processes share the key file beside the database). True unless a backend
    #: says otherwise.
    shared: ClassVar[bool] = True
    #: Whether :meth:`afind_login` and :meth:`atouch_session` use an async driver (the
    #: ASGI middleware then validates sessions on the event loop, without a thread). Set
    #: per instance where it depends on the server (the SQL store: PostgreSQL only).
    supports_async: bool = False
    #: Told how long each call of a login or a validation took (the plans' store calls);
    #: :class:`~wafer_py.auth.WaferAuth` hands its own over.
    observer: Observer = NO_OBSERVER

    @classmethod
    def from_url(cls, url: str) -> Self:
        """The store a URL of one of :attr:`schemes` names (:func:`open_store` calls it).
        This default ignores the URL: a backend with options overrides it."""
        return cls()

    # -- users ------------------------------------------------------------------
    @abstractmethod
    def ensure_user(
        self, openid: str, *, unionid: str | None, profile: dict[str, Any], now: float
    ) -> User:
        """Return the user ``openid``, creating it with ``profile`` if it does not exist.

        An existing user keeps its profile; its ``unionid`` is filled in if it had none.
        """

    @abstractmethod
    def update_profile(
        self, openid: str, profile: dict[str, Any], *, now: float, unionid: str | None = None
    ) -> User | None:
        """Merge ``profile`` into the user's profile; ``None`` if there is no such user."""

    @abstractmethod
    def update_phone(self, openid: str, phone: str | None, *, now: float) -> User | None:
        """Set (or with ``None`` clear) the user's phone number; ``None`` if no such user."""

    @abstractmethod
    def get_user(self, openid: str) -> User | None:
        """The user ``openid``, or ``None``."""

    @abstractmethod
    def find_users_by_unionid(self, unionid: str) -> list[User]:
        """Every user whose ``unionid`` is this one, oldest first (ties by openid).

        One person has one unionid across the mini-programs, official accounts and web
        apps of one Open Platform account, and an openid per AppID: a store shared by
        several mini-programs holds one user per mini-program the person used. Indexed:
        a lookup never scans every user.
        """

    # -- sessions ---------------------------------------------------------------
    @abstractmethod
    def create_session(self, session: Session) -> None:
        """Store a new session (its id and skey hash are fresh and unique)."""

    @abstractmethod
    def get_session(self, session_id: str) -> Session | None:
        """The session with this id, or ``None``."""

    @abstractmethod
    def find_session(self, skey_hash: str) -> Session | None:
        """The session whose skey hashes to ``skey_hash``, or ``None``."""

    def find_login(
        self, *, session_id: str | None = None, skey_hashes: Sequence[str] = ()
    ) -> tuple[Session, User | None] | None:
        """The session a request names and its user, for validation.

        By ``session_id`` if given (the caller then checks the skey against the session's
        hash), else the first of ``skey_hashes`` (one per secret key, newest first) that
        names a session. ``None`` if there is no such session. Backends that can fetch
        both records in one round trip (a join, a script) override this.
        """
        session: Session | None = None
        if session_id is not None:
            session = self.get_session(session_id)
        else:
            for skey_hash in skey_hashes:
                session = self.find_session(skey_hash)
                if session is not None:
                    break
        if session is None:
            return None
        return session, self.get_user(session.openid)

    async def afind_login(
        self, *, session_id: str | None = None, skey_hashes: Sequence[str] = ()
    ) -> tuple[Session, User | None] | None:
        """:meth:`find_login` for async callers; backends with an async driver override
        it (and set :attr:`supports_async`). This default blocks."""
        return self.find_login(session_id=session_id, skey_hashes=skey_hashes)

    async def atouch_session(self, session_id: str, *, last_seen: float, expires_at: float) -> None:
        """:meth:`touch_session` for async callers (see :meth:`afind_login`)."""
        self.touch_session(session_id, last_seen=last_seen, expires_at=expires_at)

    @abstractmethod
    def touch_session(self, session_id: str, *, last_seen: float, expires_at: float) -> None:
        """Record a use of the session and move its sliding expiry."""

    def supersede_sessions(
        self, openid: str, session_ids: Sequence[str], *, expires_at: float, now: float
    ) -> int:
        """Sessions of ``openid`` that a newer login superseded: lower the expiry of each
        one expiring after ``expires_at`` to ``expires_at``; return how many changed.

        Nothing else of a session changes: one still in use renews itself at its next
        touch. An id of no session, or of another user's, is skipped. Like a revocation,
        it is a change a per-process session cache must hear of. ``now`` is the caller's
        time (a store with its own expiry, Redis, shortens that too). This default lists
        and touches, so a touch racing it may be undone (the session's next validation
        touches it again); the bundled stores do it in one write.
        """
        wanted = set(session_ids)
        changed = 0
        for session in self.list_sessions(openid):
            if session.id in wanted and session.expires_at > expires_at:
                self.touch_session(session.id, last_seen=session.last_seen, expires_at=expires_at)
                changed += 1
        return changed

    @abstractmethod
    def reseal_session(self, session_id: str, sealed_session_key: str, *, openid: str) -> bool:
        """Replace the sealed ``session_key`` of session ``session_id`` of user ``openid``
        (WeChat handed out a new key); ``True`` if the session exists. Nothing else of
        the session changes."""

    @abstractmethod
    def revoke_session(self, session_id: str) -> bool:
        """Delete one session; ``True`` if it existed."""

    @abstractmethod
    def revoke_user(self, openid: str) -> int:
        """Delete every session of ``openid``; return how many there were."""

    @abstractmethod
    def list_sessions(self, openid: str) -> list[Session]:
        """The sessions of ``openid``, oldest first, ties by id (expired ones included)."""

    @abstractmethod
    def purge_expired(self, now: float, *, limit: int | None = None) -> int:
        """Delete the sessions that expired by ``now``; return how many.

        With ``limit``, delete at most that many sessions (call again until it returns
        less than ``limit``: each call is one short transaction). A store that is an
        :class:`~wafer_py.stores.EntryStore` too drops its expired entries and lapsed
        locks as well (they are not counted).
        """

    @abstractmethod
    def stats(self, now: float) -> StoreStats:
        """How many users, live and expired sessions (and entries, if it keeps any)."""

    def invalidation_channel(self) -> InvalidationChannel | None:
        """A feed of changes to sessions and users made by any process, for a
        per-process session cache (:mod:`.invalidation`); ``None``: not cacheable."""
        return None

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections. The store is not used afterwards."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
