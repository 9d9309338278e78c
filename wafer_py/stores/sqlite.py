"""The embedded default: SQLite through the standard library, in WAL mode.

:class:`SQLiteStore` opens the file and keeps users and sessions. Beside it: the tables
(:mod:`.sqlite_schema`), the per-thread connections and the write transaction
(:mod:`.sqlite_connections`), entries and locks (:mod:`.sqlite_entries`), the files'
mode and the key file (:mod:`.sqlite_files`), the session cache's change log
(:mod:`.sqlite_changes`).
"""

from __future__ import annotations

import json
import logging
import shutil
import sqlite3
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit

from ..exceptions import StoreUnavailable
from ..models import Session, User
from .base import SessionStore, StoreStats
from .entries import EntryStore
from .sqlite_connections import MMAP_SIZE as MMAP_SIZE
from .sqlite_connections import unavailable
from .sqlite_entries import SQLiteEntries
from .sqlite_files import PRIVATE_MODE as PRIVATE_MODE
from .sqlite_files import key_file_secret, private_database
from .sqlite_schema import LOGIN_JOIN, SCHEMA, SESSION_COLUMNS, USER_COLUMNS, to_session, to_user

if TYPE_CHECKING:
    from .sqlite_changes import SQLiteChanges

__all__ = ["SQLiteStore"]

logger = logging.getLogger("wafer_py")


class SQLiteStore(SQLiteEntries, SessionStore, EntryStore):
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
            private_database(file)
        except OSError as exc:
            logger.error("wafer_py: cannot create the SQLite store's file: %s", exc)
            raise unavailable("cannot create the SQLite store's file", exc) from None
        self._open_connections(file.absolute().as_uri(), timeout)
        try:
            self._keepalive = self._conn()
            self._keepalive.executescript(SCHEMA)
        except sqlite3.Error as exc:
            logger.error("wafer_py: cannot create the SQLite store's tables: %s", exc)
            raise unavailable("cannot create the SQLite store's tables", exc) from None
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
        return key_file_secret(Path(self.path + ".key"))

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
                f"SELECT {USER_COLUMNS} FROM wafer_users WHERE openid = ?", (openid,)
            ).fetchone()
        user = to_user(row)
        assert user is not None
        return user

    def update_profile(
        self, openid: str, profile: dict[str, Any], *, now: float, unionid: str | None = None
    ) -> User | None:
        with self._write() as db:
            user = to_user(
                db.execute(
                    f"SELECT {USER_COLUMNS} FROM wafer_users WHERE openid = ?", (openid,)
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
        return to_user(
            self._read(f"SELECT {USER_COLUMNS} FROM wafer_users WHERE openid = ?", (openid,))
        )

    def find_users_by_unionid(self, unionid: str) -> list[User]:
        try:
            rows = (
                self._conn()
                .execute(
                    f"SELECT {USER_COLUMNS} FROM wafer_users WHERE unionid = ? "
                    "ORDER BY created_at, openid",
                    (unionid,),
                )
                .fetchall()
            )
        except sqlite3.OperationalError as exc:
            raise unavailable("SQLite store error", exc) from None
        return [u for u in map(to_user, rows) if u is not None]

    def update_phone(self, openid: str, phone: str | None, *, now: float) -> User | None:
        with self._write() as db:
            db.execute(
                "UPDATE wafer_users SET phone = ?, updated_at = ? WHERE openid = ?",
                (phone, now, openid),
            )
            row = db.execute(
                f"SELECT {USER_COLUMNS} FROM wafer_users WHERE openid = ?", (openid,)
            ).fetchone()
        return to_user(row)

    # -- sessions ---------------------------------------------------------------
    def create_session(self, session: Session) -> None:
        with self._write() as db:
            db.execute(
                f"INSERT INTO wafer_sessions ({SESSION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
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
        return to_session(
            self._read(f"SELECT {SESSION_COLUMNS} FROM wafer_sessions WHERE id = ?", (session_id,))
        )

    def find_session(self, skey_hash: str) -> Session | None:
        return to_session(
            self._read(
                f"SELECT {SESSION_COLUMNS} FROM wafer_sessions WHERE skey_hash = ?", (skey_hash,)
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
                    f"SELECT {SESSION_COLUMNS} FROM wafer_sessions WHERE openid = ? "
                    "ORDER BY created_at, id",
                    (openid,),
                )
                .fetchall()
            )
        except sqlite3.OperationalError as exc:
            raise unavailable("SQLite store error", exc) from None
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
        join = LOGIN_JOIN
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
        return session, (None if row[7] is None else to_user(row[7:]))

    def invalidation_channel(self) -> SQLiteChanges:
        """The change log that keeps a per-process session cache exact (issue #17)."""
        from .sqlite_changes import SQLiteChanges

        return SQLiteChanges(self)

    def close(self) -> None:
        self._close_connections()
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
