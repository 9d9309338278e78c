"""The SQLite store's entries and locks: the :class:`~wafer_py.stores.EntryStore` half of
:class:`~wafer_py.stores.sqlite.SQLiteStore`.

Short-lived values with an expiry (the access token, web sessions' sealed tokens) and
locks with one holder across the processes sharing the file: ``BEGIN IMMEDIATE``
serialises writers, so a lock's check and its take are one step.
"""

from __future__ import annotations

from .sqlite_connections import SQLiteConnections

__all__ = ["SQLiteEntries"]


class SQLiteEntries(SQLiteConnections):
    """Entries in ``wafer_entries``, locks in ``wafer_locks`` (the store purges both)."""

    # -- entries ----------------------------------------------------------------
    def get_entry(self, key: str, *, now: float) -> str | None:
        row = self._read(
            "SELECT value FROM wafer_entries WHERE key = ? AND expires_at > ?", (key, now)
        )
        return None if row is None else str(row[0])

    def set_entry(self, key: str, value: str, *, expires_at: float) -> None:
        with self._write() as db:
            db.execute(
                "INSERT INTO wafer_entries (key, value, expires_at) VALUES (?, ?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value, "
                "expires_at = excluded.expires_at",
                (key, value, expires_at),
            )

    def delete_entry(self, key: str) -> bool:
        with self._write() as db:
            return db.execute("DELETE FROM wafer_entries WHERE key = ?", (key,)).rowcount > 0

    # -- locks ------------------------------------------------------------------
    def acquire_lock(self, name: str, owner: str, *, ttl: float, now: float) -> bool:
        # BEGIN IMMEDIATE serialises writers across processes: the check and the take
        # are one step.
        with self._write() as db:
            cursor = db.execute(
                "INSERT INTO wafer_locks (name, owner, expires_at) VALUES (?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, "
                "expires_at = excluded.expires_at "
                "WHERE wafer_locks.owner = excluded.owner OR wafer_locks.expires_at <= ?",
                (name, owner, now + ttl, now),
            )
            return cursor.rowcount > 0

    def release_lock(self, name: str, owner: str) -> bool:
        with self._write() as db:
            return (
                db.execute(
                    "DELETE FROM wafer_locks WHERE name = ? AND owner = ?", (name, owner)
                ).rowcount
                > 0
            )
