"""The SQLite store's invalidation channel: a change log its own triggers write.

SQLite cannot push a change to another process, but every process of a SQLite store
reads the same file, and a read of it costs microseconds. Triggers log each change that
can make a cached session wrong into ``wafer_changes`` (a deleted or altered session, an
altered or deleted user), whoever makes it: this app, another process, the CLI, even the
``sqlite3`` shell. Touches (``last_seen`` and a later ``expires_at``) and new sessions
are not logged: a cache never needs them.

:meth:`SQLiteChanges.poll` runs before every cache lookup: one indexed read of the rows
after the last one seen (nothing, almost always). Every change committed before a
validation began is thus applied before its lookup: a revocation in any process is seen
by every process at once, with no delivery delay. The log keeps its last
:data:`KEPT` rows; a process that fell further behind sees a gap and forgets everything.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from .invalidation import ALL, Invalidation

if TYPE_CHECKING:
    from .sqlite import SQLiteStore

__all__ = ["SQLiteChanges", "KEPT"]

logger = logging.getLogger("wafer_py")

#: Rows of the change log kept (older ones are deleted as new ones come).
KEPT = 10_000

_SESSION_CHANGED = " OR ".join(
    f"NEW.{column} IS NOT OLD.{column}"
    for column in ("id", "openid", "skey_hash", "sealed_session_key", "created_at")
)

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS wafer_changes (
    seq   INTEGER PRIMARY KEY AUTOINCREMENT,
    kind  TEXT NOT NULL,
    key   TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS wafer_changes_trim AFTER INSERT ON wafer_changes
BEGIN DELETE FROM wafer_changes WHERE seq <= NEW.seq - {KEPT}; END;
CREATE TRIGGER IF NOT EXISTS wafer_changes_session_gone AFTER DELETE ON wafer_sessions
BEGIN INSERT INTO wafer_changes (kind, key) VALUES ('session', OLD.id); END;
CREATE TRIGGER IF NOT EXISTS wafer_changes_session_altered AFTER UPDATE ON wafer_sessions
WHEN {_SESSION_CHANGED} OR NEW.expires_at < OLD.expires_at
BEGIN INSERT INTO wafer_changes (kind, key) VALUES ('session', OLD.id); END;
CREATE TRIGGER IF NOT EXISTS wafer_changes_user_altered AFTER UPDATE ON wafer_users
BEGIN INSERT INTO wafer_changes (kind, key) VALUES ('user', OLD.openid); END;
CREATE TRIGGER IF NOT EXISTS wafer_changes_user_gone AFTER DELETE ON wafer_users
BEGIN INSERT INTO wafer_changes (kind, key) VALUES ('user', OLD.openid); END;
"""

_NEWER = "SELECT seq, kind, key FROM wafer_changes WHERE seq > ? ORDER BY seq"


class SQLiteChanges:
    """The :class:`~wafer_py.stores.invalidation.InvalidationChannel` of a
    :class:`~wafer_py.stores.sqlite.SQLiteStore`, polled by the cache before each lookup.

    :meth:`start` makes the log and its triggers in a thread of its own (a schema write
    may wait for another process's transaction) and then reports itself live.
    """

    def __init__(self, store: SQLiteStore) -> None:
        self._store = store
        self._last: int | None = None  # the last change applied; None: not live
        self._lock = threading.Lock()
        self._on_change: Callable[[Invalidation], None] | None = None
        self._on_state: Callable[[bool], None] | None = None
        self._closed = False

    def __repr__(self) -> str:
        return f"SQLiteChanges({self._store!r})"

    def start(
        self, on_change: Callable[[Invalidation], None], on_state: Callable[[bool], None]
    ) -> None:
        self._on_change, self._on_state = on_change, on_state
        threading.Thread(target=self._prepare, name="wafer-sqlite-changes", daemon=True).start()

    def _prepare(self) -> None:
        try:
            conn = sqlite3.connect(self._store._target, uri=True, timeout=self._store._timeout)
            try:
                conn.executescript(SCHEMA)
                row = conn.execute("SELECT MAX(seq) FROM wafer_changes").fetchone()
            finally:
                conn.close()
        except sqlite3.Error as exc:
            logger.warning("wafer_py: no session cache for %r: %s", self._store, exc)
            return
        with self._lock:
            if self._closed:
                return
            self._last = int(row[0] or 0)
        assert self._on_state is not None
        self._on_state(True)

    def poll(self) -> bool:
        """Apply the changes logged since the last poll; ``False``: the log could not be
        read (the cache is bypassed for this lookup)."""
        last = self._last
        if last is None:
            return False
        try:
            rows = self._store._conn().execute(_NEWER, (last,)).fetchall()
        except Exception:  # any failure: not current, ask the store
            return False
        if not rows:
            return True
        on_change = self._on_change
        assert on_change is not None
        if rows[0][0] != last + 1:  # trimmed before this process read them
            on_change(ALL)
        for _, kind, key in rows:
            on_change(Invalidation(kind, key))
        # Only once applied: a concurrent poll that still sees the old mark reads (and
        # applies) the same rows itself rather than trusting changes not yet applied.
        with self._lock:
            if self._last is not None and self._last < rows[-1][0]:
                self._last = rows[-1][0]
        return True

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._last = None
