"""The entries-and-locks contract: what the token cache, the web login and the OAuth
state need of a store, and nothing more.

Small shared values with an expiry (an access token, a web session's sealed tokens) and
locks with one holder across threads and processes (one token refresh at a time, a
single-use OAuth state). Every bundled store implements it beside
:class:`~wafer_py.stores.SessionStore`; a store for these alone need not keep users or
sessions. Tested by :class:`wafer_py.testing.EntryStoreContract`.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

__all__ = ["EntryStore", "entry_store"]


@runtime_checkable
class EntryStore(Protocol):
    """Entries (``get``/``set``/``delete`` with an expiry) and locks (``acquire``/``release``).

    Every call is told the time (``now``, ``expires_at``) by its caller, as the session
    store is, so tests drive expiry with a clock. A backend that cannot reach its server
    raises :class:`~wafer_py.exceptions.StoreUnavailable`.
    """

    def get_entry(self, key: str, *, now: float) -> str | None:
        """The value stored under ``key``, or ``None`` if there is none or it expired."""
        ...

    def set_entry(self, key: str, value: str, *, expires_at: float) -> None:
        """Store ``value`` under ``key`` (replacing any), until ``expires_at``."""
        ...

    def delete_entry(self, key: str) -> bool:
        """Delete the entry; ``True`` if it existed."""
        ...

    def acquire_lock(self, name: str, owner: str, *, ttl: float, now: float) -> bool:
        """Take the lock ``name`` for ``owner`` unless another owner holds it unexpired.

        Returns at once; the same owner may take it again. The lock lapses ``ttl``
        seconds after ``now``, so a holder that died does not block the others forever.
        """
        ...

    def release_lock(self, name: str, owner: str) -> bool:
        """Release the lock if ``owner`` holds it; ``True`` if it did."""
        ...


def entry_store(store: object) -> EntryStore:
    """``store`` as an :class:`EntryStore`, or ``TypeError`` naming what it lacks.

    For a caller holding a :class:`~wafer_py.stores.SessionStore` that needs entries and
    locks too (WaferAuth's token cache, :meth:`WebLogin.from_auth`): a store keeping
    users and sessions only stops that feature at once, not at its first request.
    """
    if isinstance(store, EntryStore):
        return store
    missing = [
        name
        for name in ("get_entry", "set_entry", "delete_entry", "acquire_lock", "release_lock")
        if not callable(getattr(store, name, None))
    ]
    raise TypeError(
        f"{type(store).__name__} keeps no entries and locks (it lacks {', '.join(missing)}): "
        "the access-token cache, the web login and the OAuth state need a store that "
        "implements wafer_py.stores.EntryStore"
    )
