"""The SQLite store's connections: one per thread, all on one file, in WAL mode.

SQLite connections are not shared across threads, so each thread opens its own on first
use; WAL lets readers go on while one writer writes, and ``busy_timeout`` makes a writer
wait for another instead of failing at once. A write is one ``BEGIN IMMEDIATE``
transaction; any SQLite error becomes the store's 503.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from typing import Any

from ..exceptions import StoreUnavailable

__all__ = ["MMAP_SIZE", "SQLiteConnections", "Transaction", "unavailable"]

#: Bytes of the database file SQLite may read through a memory map (address space, not
#: memory: the OS pages it in and out as it likes).
MMAP_SIZE = 1 << 30

logger = logging.getLogger("wafer_py")


def unavailable(what: str, exc: BaseException) -> StoreUnavailable:
    """The generic 503 for the client, carrying what SQLite said for the operator's log
    (:func:`~wafer_py.stores.base.call_store` logs it once per outage)."""
    return StoreUnavailable(detail=f"{what}: {exc}")


class SQLiteConnections:
    """This thread's connection to ``_target`` (a ``file:`` URI), its reads and writes.

    The base of :class:`~wafer_py.stores.sqlite.SQLiteStore`, whose operations call
    :meth:`_read` and :meth:`_write` directly (validation's lookup is one of them).
    """

    _target: str
    _timeout: float

    def _open_connections(self, target: str, timeout: float) -> None:
        """Connect to ``target`` from now on (each thread on its first call)."""
        self._target = target
        self._timeout = timeout
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._all_lock = threading.Lock()

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = sqlite3.connect(
                    self._target,
                    uri=True,
                    timeout=self._timeout,
                    isolation_level=None,
                    check_same_thread=False,
                )
                conn.execute(f"PRAGMA busy_timeout = {int(self._timeout * 1000)}")
                self._use_wal(conn)
                conn.execute("PRAGMA synchronous = NORMAL")
                # Reads through a memory map skip a system call per page: lookups stay
                # flat as the file grows past the page cache (1M sessions: 0.7 GB).
                conn.execute(f"PRAGMA mmap_size = {MMAP_SIZE}")
            except sqlite3.Error as exc:
                raise unavailable("cannot open the SQLite store", exc) from None
            self._local.conn = conn
            with self._all_lock:
                self._all.append(conn)
        return conn

    def _use_wal(self, conn: sqlite3.Connection) -> None:
        """Switch the file to WAL (it stays so). Switching needs the file to itself and
        SQLite's busy timeout does not apply: processes opening a new file together retry.
        """
        deadline = time.monotonic() + self._timeout
        while True:
            try:
                if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                    conn.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)

    def _read(self, sql: str, args: tuple[Any, ...]) -> tuple[Any, ...] | None:
        try:
            row: tuple[Any, ...] | None = self._conn().execute(sql, args).fetchone()
            return row
        except sqlite3.OperationalError as exc:
            raise unavailable("SQLite store error", exc) from None

    def _write(self) -> Transaction:
        return Transaction(self._conn())

    def _close_connections(self) -> None:
        """Close every thread's connection; a thread's next call opens a new one."""
        with self._all_lock:
            conns, self._all = self._all, []
        for conn in conns:
            conn.close()
        self._local = threading.local()


class Transaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``; a rollback on error; SQLite errors → 503.

    The error reported is always the one that failed the write: SQLite rolls a
    transaction back by itself on some errors (a full disk, ``SQLITE_FULL``), and the
    explicit ``ROLLBACK`` then fails too ("no transaction is active"); that second error
    never hides the first.
    """

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise unavailable("SQLite store error", exc) from None
        return self.conn

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> None:
        if exc_type is None:
            try:
                self.conn.execute("COMMIT")
                return
            except sqlite3.OperationalError as err:
                self._rollback(err)
                raise unavailable("SQLite store error", err) from None
        assert exc is not None
        self._rollback(exc)
        if isinstance(exc, sqlite3.OperationalError):
            raise unavailable("SQLite store error", exc) from None

    def _rollback(self, cause: BaseException) -> None:
        """Roll back what is still open; a failed rollback is logged, never raised."""
        if not self.conn.in_transaction:
            return  # SQLite already rolled it back
        try:
            self.conn.execute("ROLLBACK")
        except sqlite3.Error as err:
            logger.warning(
                "wafer_py: SQLite rollback failed (%s) after: %s",
                err,
                f"{type(cause).__name__}: {cause}",
            )
