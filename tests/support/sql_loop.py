"""A SQL store's validation on the event loop, as the PostgreSQL and MySQL tests check it."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from wafer_py.exceptions import StoreUnavailable
from wafer_py.models import Session
from wafer_py.stores.sql import SQLStore

__all__ = ["validate_on_the_loop", "busy_pool_is_unavailable"]


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


def busy_pool_is_unavailable(store: SQLStore, slow_query: str, tries: int) -> None:
    """With the store's one async connection held by ``slow_query`` (a second's sleep),
    a lookup waits ``pool_timeout`` and answers StoreUnavailable ("busy"); once the slow
    query is done, the connection serves the next lookup. ``tries``: 5 ms waits for the
    slow query to take the connection (a loaded machine may take longer than any fixed
    sleep to get there)."""

    async def main() -> None:
        assert store._async_pools is not None
        pool = await store._async_pools.get()
        slow = asyncio.create_task(pool.fetch(slow_query, {}))
        for _ in range(tries):
            if pool._slots.locked():
                break
            await asyncio.sleep(0.005)
        assert pool._slots.locked()
        with pytest.raises(StoreUnavailable) as caught:
            await store.afind_login(session_id="nobody")
        assert "busy" in (caught.value.detail or "")
        await slow
        assert await store.afind_login(session_id="nobody") is None

    asyncio.run(main())
