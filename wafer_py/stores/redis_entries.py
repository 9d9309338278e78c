"""The entries and locks of :class:`~wafer_py.stores.redis.RedisStore`
(:class:`~wafer_py.stores.EntryStore`): a hash each, one round trip per call. An entry
is found by the logical clock (its ``t``), and Redis forgets it a day after its expiry
read as wall clock (:data:`~.redis_keys.ENTRY_GC`); a lock is taken and released by a
script that compares owners.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from . import redis_scripts as lua
from .redis_keys import ENTRY_GC, GRACE, RedisKeys, text, ttl_ms
from .redis_scripts import Call, cmd, script

__all__ = ["RedisEntries"]


class RedisEntries(RedisKeys):
    """Entries and locks in Redis: a base of :class:`~wafer_py.stores.redis.RedisStore`,
    which sends the calls (its ``_do``)."""

    if TYPE_CHECKING:

        def _do(self, *calls: Call) -> list[Any]: ...

    def get_entry(self, key: str, *, now: float) -> str | None:
        ((value, expires_at),) = self._do(cmd("HMGET", self._entry(key), "v", "t"))
        if value is None or float(expires_at) <= now:
            return None
        return text(value)

    def set_entry(self, key: str, value: str, *, expires_at: float) -> None:
        entry = self._entry(key)
        gc = ttl_ms(max(expires_at - time.time(), 0.0) + ENTRY_GC)
        self._do(
            cmd("HSET", entry, "v", value, "t", expires_at),
            cmd("PEXPIRE", entry, gc),
            cmd("ZADD", self._entries, expires_at, entry),
        )

    def delete_entry(self, key: str) -> bool:
        entry = self._entry(key)
        deleted, _ = self._do(cmd("DEL", entry), cmd("ZREM", self._entries, entry))
        return int(deleted) > 0

    # -- locks ------------------------------------------------------------------
    def acquire_lock(self, name: str, owner: str, *, ttl: float, now: float) -> bool:
        (taken,) = self._do(
            script(lua.ACQUIRE, [self._lock(name)], owner, now, now + ttl, ttl_ms(ttl + GRACE))
        )
        return int(taken) == 1

    def release_lock(self, name: str, owner: str) -> bool:
        (released,) = self._do(script(lua.RELEASE, [self._lock(name)], owner))
        return int(released) == 1
