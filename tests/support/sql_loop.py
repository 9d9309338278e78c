"""A SQL store's validation on the event loop, as the PostgreSQL and MySQL tests check it."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from wafer_py.models import Session
from wafer_py.stores.sql import SQLStore

__all__ = ["validate_on_the_loop"]


def validate_on_the_loop(store: SQLStore, sessions: list[Session]) -> tuple[int, list[Any]]:
    """Look every session up by skey hash and by id, and touch each (``last_seen`` 7.0),
    all at once on one loop, the threaded pool forbidden and no worker thread allowed.
    Returns how many async connections were opened and what the lookups found; the
    threaded pool is usable again afterwards."""
    opened = 0
    aopen = store._aopen

    async def counting_open() -> Any:
        nonlocal opened
        opened += 1
        return await aopen()

    def no_threaded_pool() -> Any:
        raise AssertionError("the threaded pool was used")

    store._aopen = counting_open  # type: ignore[method-assign]
    store._cursor = no_threaded_pool  # type: ignore[method-assign]

    async def main() -> list[Any]:
        found = await asyncio.gather(
            *(store.afind_login(skey_hashes=[s.skey_hash]) for s in sessions),
            *(store.afind_login(session_id=s.id) for s in sessions),
        )
        await asyncio.gather(
            *(store.atouch_session(s.id, last_seen=7.0, expires_at=9e9) for s in sessions)
        )
        workers = [t.name for t in threading.enumerate() if t.name.startswith("asyncio")]
        assert workers == []
        return list(found)

    try:
        found = asyncio.run(main())
        return opened, found
    finally:
        del store._cursor  # the threaded pool again
