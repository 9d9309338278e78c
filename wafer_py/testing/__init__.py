"""Test helpers for wafer_py and for third-party stores.

The store contract suite, in the two parts a store may implement:
:class:`SessionStoreContract` (users and sessions, :class:`~wafer_py.stores.SessionStore`)
and :class:`EntryStoreContract` (entries and locks, :class:`~wafer_py.stores.EntryStore`);
:class:`StoreContract` is both, plus what ties them (a purge keeps live entries). Every
bundled backend's tests subclass :class:`StoreContract` and provide ``make_store``; a
third party does the same with the part its store implements::

    from wafer_py.testing import StoreContract

    class TestMyStore(StoreContract):
        def make_store(self):
            return MyStore(...)

Needs pytest. One module per part: :mod:`.sessions`, :mod:`.entries` (with
:class:`StoreContract`), and what they share in :mod:`.common`.
"""

from .common import make_session, run_threads
from .entries import EntryStoreContract, StoreContract
from .sessions import SessionStoreContract

__all__ = [
    "EntryStoreContract",
    "SessionStoreContract",
    "StoreContract",
    "make_session",
    "run_threads",
]
