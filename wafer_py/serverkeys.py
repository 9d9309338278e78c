"""The secret keys a server runs with: configured, else kept beside a SQLite file, else
random for one process, and never random for a store that processes share.

Two servers on one Redis, PostgreSQL or MySQL store that each invented a key would
silently reject each other's sessions (v2 clients then log in on every request): such a
store without ``WAFER_SECRET_KEY`` stops the app at start instead. Whether a store is
shared says its class attribute :attr:`~wafer_py.stores.SessionStore.shared`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from .config import check_secret_keys
from .crypto import Keyring

if TYPE_CHECKING:
    from .stores import EntryStore, SessionStore

__all__ = ["server_keyring", "server_secret_keys"]

logger = logging.getLogger("wafer_py")


def server_keyring(configured: Sequence[str], store: SessionStore | EntryStore) -> Keyring:
    """The keys in force for ``store``, newest first.

    ``configured`` keys win (each at least 32 characters). Without them a shared store
    raises ``ValueError`` naming ``WAFER_SECRET_KEY``; SQLite uses the key file beside
    its database (its processes share it) and the memory store a random key, each with
    a warning.
    """
    if configured:
        check_secret_keys(configured)
        return Keyring(configured)
    if getattr(store, "shared", True):  # a store that does not say is taken as shared
        raise ValueError(
            f"WAFER_SECRET_KEY is not set, and the session store ({type(store).__name__}) "
            "is shared between processes: each would invent its own key and reject the "
            "others' sessions. Give every process the same WAFER_SECRET_KEY (at least 32 "
            "characters)."
        )
    local = getattr(store, "local_secret", None)
    key = local() if callable(local) else None
    if isinstance(key, str) and key:
        logger.warning(
            "wafer_py: no secret key configured (WAFER_SECRET_KEY); using the key "
            "generated beside the SQLite store. Set WAFER_SECRET_KEY in production."
        )
        return Keyring([key])
    return Keyring.random()


def server_secret_keys(
    configured: Sequence[str], store: SessionStore | EntryStore
) -> tuple[str, ...]:
    """:func:`server_keyring`'s keys as text, newest first (WaferConfig's type)."""
    return tuple(key.decode() for key in server_keyring(configured, store))
