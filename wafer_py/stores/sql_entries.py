"""The SQL store's entries and locks (:class:`~wafer_py.stores.EntryStore`): small values
with an expiry, and locks with one holder that lapse.

:class:`SQLEntries` is a part of :class:`~.sql.SQLStore`. PostgreSQL takes a lock in
one statement, an upsert; MySQL's take is an UPDATE, then, when there was no row, an
INSERT that the primary key lets only one process win.
"""

from __future__ import annotations

from .sql_connections import SQLConnections

__all__ = ["SQLEntries"]


class SQLEntries(SQLConnections):
    """The entry and lock operations of :class:`~.sql.SQLStore`."""

    def get_entry(self, key: str, *, now: float) -> str | None:
        row = self._one("get_entry", {"key": key, "now": now})
        return None if row is None else str(row[0])

    def set_entry(self, key: str, value: str, *, expires_at: float) -> None:
        self._count("set_entry", {"key": key, "value": value, "expires_at": expires_at})

    def delete_entry(self, key: str) -> bool:
        return self._count("delete_entry", {"key": key}) > 0

    def acquire_lock(self, name: str, owner: str, *, ttl: float, now: float) -> bool:
        args = {"name": name, "owner": owner, "expires_at": now + ttl, "now": now}
        with self._cursor() as cur:
            cur.execute(self._q["take_lock"], args)
            if cur.rowcount > 0 or self.dialect.upsert_lock:
                return bool(cur.rowcount > 0)
            # MySQL, and no row for the UPDATE to match: the lock is free or was just
            # taken. The primary key lets one INSERT win.
            try:
                cur.execute(self._q["insert_lock"], args)
                return True
            except self._driver.IntegrityError:
                pass
            # Someone inserted it meanwhile; theirs may have lapsed already by our clock.
            cur.execute(self._q["take_lock"], args)
            return bool(cur.rowcount > 0)

    def release_lock(self, name: str, owner: str) -> bool:
        return self._count("release_lock", {"name": name, "owner": owner}) > 0
