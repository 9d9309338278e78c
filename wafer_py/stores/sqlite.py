"""The embedded default: SQLite through the standard library, in WAL mode.

One connection per thread (SQLite connections are not shared across threads), all on
the same file; WAL lets readers go on while one writer writes. ``busy_timeout`` makes a
writer wait for another instead of failing at once.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import sqlite3
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit

from ..exceptions import StoreUnavailable
from ..models import Session, User
from .base import SessionStore, StoreStats
from .entries import EntryStore

if TYPE_CHECKING:
    from .sqlite_changes import SQLiteChanges

__all__ = ["SQLiteStore"]

#: Bytes of the database file SQLite may read through a memory map (address space, not
#: memory: the OS pages it in and out as it likes).
MMAP_SIZE = 1 << 30

logger = logging.getLogger("wafer_py")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS wafer_users (
    openid      TEXT PRIMARY KEY,
    unionid     TEXT,
    profile     TEXT NOT NULL,
    created_at  REAL NOT NULL,
    updated_at  REAL NOT NULL,
    phone       TEXT
);
CREATE TABLE IF NOT EXISTS wafer_sessions (
    id                  TEXT PRIMARY KEY,
    openid              TEXT NOT NULL,
    skey_hash           TEXT NOT NULL UNIQUE,
    sealed_session_key  TEXT NOT NULL,
    created_at          REAL NOT NULL,
    last_seen           REAL NOT NULL,
    expires_at          REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS wafer_users_unionid ON wafer_users (unionid);
CREATE INDEX IF NOT EXISTS wafer_sessions_openid ON wafer_sessions (openid);
CREATE INDEX IF NOT EXISTS wafer_sessions_expires ON wafer_sessions (expires_at);
CREATE TABLE IF NOT EXISTS wafer_entries (
    key         TEXT PRIMARY KEY,
    value       TEXT NOT NULL,
    expires_at  REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS wafer_locks (
    name        TEXT PRIMARY KEY,
    owner       TEXT NOT NULL,
    expires_at  REAL NOT NULL
);
"""


#: Owner read and write only: the files hold the access_token, web sessions and sealed
#: session keys.
PRIVATE_MODE = 0o600
#: What SQLite keeps beside the database file in WAL mode.
_SIDE_FILES = ("-wal", "-shm")


def _make_private(path: Path) -> None:
    """Tighten an existing file readable or writable by others to 0600, with a warning
    naming it (a file made by an older version, or copied in with a loose umask)."""
    try:
        mode = path.stat().st_mode & 0o777
    except FileNotFoundError:
        return
    if not mode & 0o077:
        return
    try:
        os.chmod(path, PRIVATE_MODE)
    except OSError as exc:
        logger.warning(
            "wafer_py: %s is accessible to other users (mode %s) and could not be made private: %s",
            path,
            oct(mode),
            exc,
        )
        return
    logger.warning(
        "wafer_py: %s was accessible to other users (mode %s); now 0600", path, oct(mode)
    )


def _private_database(file: Path) -> None:
    """Create the database file 0600 before SQLite opens it (SQLite then gives its WAL
    and shared-memory files the database's mode), and tighten existing ones."""
    for side in ("", *_SIDE_FILES):
        _make_private(Path(str(file) + side))
    try:
        fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_MODE)
    except FileExistsError:
        return
    os.close(fd)


def _unavailable(what: str, exc: BaseException) -> StoreUnavailable:
    """The generic 503 for the client, carrying what SQLite said for the operator's log
    (:func:`~wafer_py.stores.base.call_store` logs it once per outage)."""
    return StoreUnavailable(detail=f"{what}: {exc}")


_SESSION_COLUMNS = "id, openid, skey_hash, sealed_session_key, created_at, last_seen, expires_at"
_USER_COLUMNS = "openid, unionid, profile, created_at, updated_at, phone"
#: A session and its user in one query (validation's lookup).
_LOGIN_JOIN = (
    "SELECT "
    + ", ".join(f"s.{c}" for c in _SESSION_COLUMNS.split(", "))
    + ", "
    + ", ".join(f"u.{c}" for c in _USER_COLUMNS.split(", "))
    + " FROM wafer_sessions s LEFT JOIN wafer_users u ON u.openid = s.openid"
)


def _user(row: tuple[Any, ...] | None) -> User | None:
    if row is None:
        return None
    return User(row[0], row[1], json.loads(row[2]), row[3], row[4], row[5])


def _session(row: tuple[Any, ...] | None) -> Session | None:
    return None if row is None else Session(*row)


class SQLiteStore(SessionStore, EntryStore):
    """Sessions in one SQLite file (``sqlite:///path/to.db``, or ``sqlite:///:memory:``).

    The file and its tables are created when missing. The database, its WAL and
    shared-memory files and the key file are readable by their owner only (0600): an
    existing one open to others is tightened, with a warning.
    """

    schemes: ClassVar[tuple[str, ...]] = ("sqlite",)
    #: One machine: its processes share the key file beside the database.
    shared: ClassVar[bool] = False
    #: Validation reads on the event loop: a local read in WAL mode never waits for a
    #: writer and costs less than a hop to a worker thread (BENCHMARKS.md). The touch,
    #: a write that may wait for another process's transaction, runs in a thread.
    supports_async = True

    def __init__(self, path: str | Path = "wafer_sessions.db", *, timeout: float = 10.0) -> None:
        self.path = str(path)
        self._timeout = timeout
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._all_lock = threading.Lock()
        self._scratch: str | None = None
        if self.path == ":memory:":
            # Every thread needs its own connection to one database, and SQLite's shared
            # in-memory cache fails at once on lock conflicts: use a throwaway file.
            self._scratch = tempfile.mkdtemp(prefix="wafer-sqlite-")
            file = Path(self._scratch) / "sessions.db"
        else:
            file = Path(self.path)
            file.parent.mkdir(parents=True, exist_ok=True)
        try:
            _private_database(file)
        except OSError as exc:
            logger.error("wafer_py: cannot create the SQLite store's file: %s", exc)
            raise _unavailable("cannot create the SQLite store's file", exc) from None
        self._target = file.absolute().as_uri()
        try:
            self._keepalive = self._conn()
            self._keepalive.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            logger.error("wafer_py: cannot create the SQLite store's tables: %s", exc)
            raise _unavailable("cannot create the SQLite store's tables", exc) from None
        except StoreUnavailable as exc:
            logger.error("wafer_py: %s", exc.detail)
            raise

    @classmethod
    def from_url(cls, url: str) -> SQLiteStore:
        """``sqlite:///relative.db``, ``sqlite:////absolute.db`` or ``sqlite:///:memory:``."""
        parts = urlsplit(url)
        path = parts.path[1:] if parts.path.startswith("/") else parts.path
        if not path:
            raise ValueError("a SQLite store URL needs a path: sqlite:///path/to.db")
        return cls(path)

    def __repr__(self) -> str:
        return f"SQLiteStore({self.path!r})"

    def local_secret(self) -> str | None:
        """A secret kept in ``<file>.key`` (mode 0600) beside the database, made once.

        For deployments without ``WAFER_SECRET_KEY``: every process using this file then
        shares sessions. ``None`` for ``:memory:``.
        """
        if self._scratch is not None:
            return None
        key_path = Path(self.path + ".key")
        _make_private(key_path)
        for _ in range(100):
            try:
                fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                text = key_path.read_text().strip()
                if text:
                    return text
                time.sleep(0.01)  # another process is writing it right now
                continue
            with os.fdopen(fd, "w") as file:
                file.write(secrets.token_hex(32) + "\n")
            return key_path.read_text().strip()
        logger.error("wafer_py: cannot read the key file %s", key_path)
        raise StoreUnavailable()

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
                raise _unavailable("cannot open the SQLite store", exc) from None
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
            raise _unavailable("SQLite store error", exc) from None

    def _write(self) -> _Transaction:
        return _Transaction(self._conn())

    # -- users ------------------------------------------------------------------
    def ensure_user(
        self, openid: str, *, unionid: str | None, profile: dict[str, Any], now: float
    ) -> User:
        with self._write() as db:
            db.execute(
                "INSERT INTO wafer_users (openid, unionid, profile, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (openid) DO NOTHING",
                (openid, unionid, json.dumps(profile, ensure_ascii=False), now, now),
            )
            if unionid:
                db.execute(
                    "UPDATE wafer_users SET unionid = ?, updated_at = ? "
                    "WHERE openid = ? AND unionid IS NULL",
                    (unionid, now, openid),
                )
            row = db.execute(
                f"SELECT {_USER_COLUMNS} FROM wafer_users WHERE openid = ?", (openid,)
            ).fetchone()
        user = _user(row)
        assert user is not None
        return user

    def update_profile(
        self, openid: str, profile: dict[str, Any], *, now: float, unionid: str | None = None
    ) -> User | None:
        with self._write() as db:
            user = _user(
                db.execute(
                    f"SELECT {_USER_COLUMNS} FROM wafer_users WHERE openid = ?", (openid,)
                ).fetchone()
            )
            if user is None:
                return None
            user = user.with_profile(profile, now=now, unionid=unionid)
            db.execute(
                "UPDATE wafer_users SET unionid = ?, profile = ?, updated_at = ? WHERE openid = ?",
                (user.unionid, json.dumps(user.profile, ensure_ascii=False), now, openid),
            )
        return user

    def get_user(self, openid: str) -> User | None:
        return _user(
            self._read(f"SELECT {_USER_COLUMNS} FROM wafer_users WHERE openid = ?", (openid,))
        )

    def find_users_by_unionid(self, unionid: str) -> list[User]:
        try:
            rows = (
                self._conn()
                .execute(
                    f"SELECT {_USER_COLUMNS} FROM wafer_users WHERE unionid = ? "
                    "ORDER BY created_at, openid",
                    (unionid,),
                )
                .fetchall()
            )
        except sqlite3.OperationalError as exc:
            raise _unavailable("SQLite store error", exc) from None
        return [u for u in map(_user, rows) if u is not None]

    def update_phone(self, openid: str, phone: str | None, *, now: float) -> User | None:
        with self._write() as db:
            db.execute(
                "UPDATE wafer_users SET phone = ?, updated_at = ? WHERE openid = ?",
                (phone, now, openid),
            )
            row = db.execute(
                f"SELECT {_USER_COLUMNS} FROM wafer_users WHERE openid = ?", (openid,)
            ).fetchone()
        return _user(row)

    # -- sessions ---------------------------------------------------------------
    def create_session(self, session: Session) -> None:
        with self._write() as db:
            db.execute(
                f"INSERT INTO wafer_sessions ({_SESSION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    session.id,
                    session.openid,
                    session.skey_hash,
                    session.sealed_session_key,
                    session.created_at,
                    session.last_seen,
                    session.expires_at,
                ),
            )

    def get_session(self, session_id: str) -> Session | None:
        return _session(
            self._read(f"SELECT {_SESSION_COLUMNS} FROM wafer_sessions WHERE id = ?", (session_id,))
        )

    def find_session(self, skey_hash: str) -> Session | None:
        return _session(
            self._read(
                f"SELECT {_SESSION_COLUMNS} FROM wafer_sessions WHERE skey_hash = ?", (skey_hash,)
            )
        )

    async def afind_login(
        self, *, session_id: str | None = None, skey_hashes: Sequence[str] = ()
    ) -> tuple[Session, User | None] | None:
        return self.find_login(session_id=session_id, skey_hashes=skey_hashes)

    async def atouch_session(self, session_id: str, *, last_seen: float, expires_at: float) -> None:
        from ..plans import offload  # wafer_py's one thread offload (imported late: no cycle)

        await offload(self.touch_session, session_id, last_seen=last_seen, expires_at=expires_at)

    def touch_session(self, session_id: str, *, last_seen: float, expires_at: float) -> None:
        with self._write() as db:
            db.execute(
                "UPDATE wafer_sessions SET last_seen = ?, expires_at = ? WHERE id = ?",
                (last_seen, expires_at, session_id),
            )

    def supersede_sessions(
        self, openid: str, session_ids: Sequence[str], *, expires_at: float, now: float
    ) -> int:
        if not session_ids:
            return 0
        marks = ", ".join("?" for _ in session_ids)
        with self._write() as db:
            done = db.execute(
                "UPDATE wafer_sessions SET expires_at = ? WHERE openid = ? "
                f"AND id IN ({marks}) AND expires_at > ?",
                (expires_at, openid, *session_ids, expires_at),
            )
            return done.rowcount

    def reseal_session(self, session_id: str, sealed_session_key: str, *, openid: str) -> bool:
        with self._write() as db:
            done = db.execute(
                "UPDATE wafer_sessions SET sealed_session_key = ? WHERE id = ? AND openid = ?",
                (sealed_session_key, session_id, openid),
            )
            return done.rowcount > 0

    def revoke_session(self, session_id: str) -> bool:
        with self._write() as db:
            return db.execute("DELETE FROM wafer_sessions WHERE id = ?", (session_id,)).rowcount > 0

    def revoke_user(self, openid: str) -> int:
        with self._write() as db:
            return db.execute("DELETE FROM wafer_sessions WHERE openid = ?", (openid,)).rowcount

    def list_sessions(self, openid: str) -> list[Session]:
        try:
            rows = (
                self._conn()
                .execute(
                    f"SELECT {_SESSION_COLUMNS} FROM wafer_sessions WHERE openid = ? "
                    "ORDER BY created_at, id",
                    (openid,),
                )
                .fetchall()
            )
        except sqlite3.OperationalError as exc:
            raise _unavailable("SQLite store error", exc) from None
        return [Session(*row) for row in rows]

    def purge_expired(self, now: float, *, limit: int | None = None) -> int:
        with self._write() as db:
            db.execute("DELETE FROM wafer_entries WHERE expires_at <= ?", (now,))
            db.execute("DELETE FROM wafer_locks WHERE expires_at <= ?", (now,))
            args: tuple[float, ...] = (now,)
            if limit is None:
                sql = "DELETE FROM wafer_sessions WHERE expires_at <= ?"
            else:
                sql = (
                    "DELETE FROM wafer_sessions WHERE id IN (SELECT id FROM wafer_sessions "
                    "WHERE expires_at <= ? LIMIT ?)"
                )
                args = (now, limit)
            return db.execute(sql, args).rowcount

    def stats(self, now: float) -> StoreStats:
        row = self._read(
            "SELECT (SELECT COUNT(*) FROM wafer_users), "
            "(SELECT COUNT(*) FROM wafer_sessions WHERE expires_at > ?), "
            "(SELECT COUNT(*) FROM wafer_sessions WHERE expires_at <= ?), "
            "(SELECT COUNT(*) FROM wafer_entries WHERE expires_at > ?)",
            (now, now, now),
        )
        assert row is not None
        return StoreStats(*row)

    def find_login(
        self, *, session_id: str | None = None, skey_hashes: Sequence[str] = ()
    ) -> tuple[Session, User | None] | None:
        join = _LOGIN_JOIN
        if session_id is not None:
            row = self._read(f"{join} WHERE s.id = ?", (session_id,))
        else:
            row = None
            for skey_hash in skey_hashes:
                row = self._read(f"{join} WHERE s.skey_hash = ?", (skey_hash,))
                if row is not None:
                    break
        if row is None:
            return None
        session = Session(*row[:7])
        return session, (None if row[7] is None else _user(row[7:]))

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

    def invalidation_channel(self) -> SQLiteChanges:
        """The change log that keeps a per-process session cache exact (issue #17)."""
        from .sqlite_changes import SQLiteChanges

        return SQLiteChanges(self)

    def close(self) -> None:
        with self._all_lock:
            conns, self._all = self._all, []
        for conn in conns:
            conn.close()
        self._local = threading.local()
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)


class _Transaction:
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
            raise _unavailable("SQLite store error", exc) from None
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
                raise _unavailable("SQLite store error", err) from None
        assert exc is not None
        self._rollback(exc)
        if isinstance(exc, sqlite3.OperationalError):
            raise _unavailable("SQLite store error", exc) from None

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
