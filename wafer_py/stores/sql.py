"""PostgreSQL and MySQL/MariaDB stores, through plain DB-API drivers.

Why no SQLAlchemy: the store runs a dozen small queries, all fixed, so an ORM or a query
builder would add a dependency and a layer for nothing. What differs between the two
servers is a little SQL (the upsert, the lock, the batched delete, the schema's types),
kept in one table, :class:`_Dialect`. The drivers are psycopg 3 (PostgreSQL) and PyMySQL
(MySQL, MariaDB): ``pip install 'wafer-session[sql]'``; each is imported only when a store
for its server is opened.

Each thread has its own connection, in autocommit mode: a single statement is its own
transaction, and the few operations that need more than one statement to be atomic wrap
them in an explicit short transaction. A lost connection is dropped and reported as
:class:`~wafer_py.exceptions.StoreUnavailable`; the thread's next call connects again,
so the store recovers from a server restart by itself.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
import os
import re
import select
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import SplitResult, parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from ..exceptions import StoreUnavailable
from ..models import Session, User
from .base import SessionStore, StoreStats

__all__ = ["SQLStore"]

logger = logging.getLogger("wafer_py")

_INSTALL = "pip install 'wafer-session[sql]'"
#: Lower case, so that PostgreSQL's folding of unquoted names changes nothing; short, so
#: that prefixed index names stay within PostgreSQL's 63 characters.
_PREFIX = re.compile(r"[a-z_][a-z0-9_]{0,39}")
_MYSQL_OPTIONS = ("unix_socket",)

_USER = "openid, unionid, profile, created_at, updated_at, phone"
_SESSION = "id, openid, skey_hash, sealed_session_key, created_at, last_seen, expires_at"
_SESSION_VALUES = (
    "%(id)s, %(openid)s, %(skey_hash)s, %(sealed_session_key)s, "
    "%(created_at)s, %(last_seen)s, %(expires_at)s"
)
#: A session and its user in one query (validation's lookup); a WHERE clause follows.
_LOGIN = (
    "SELECT "
    + ", ".join("s." + c for c in _SESSION.split(", "))
    + ", "
    + ", ".join("u." + c for c in _USER.split(", "))
    + " FROM {p}sessions s LEFT JOIN {p}users u ON u.openid = s.openid WHERE "
)

#: The queries both servers run as they are. ``{p}`` is the table prefix, ``{key}`` the
#: entries' key column (a reserved word in MySQL, so quoted there).
_COMMON = {
    "get_user": f"SELECT {_USER} FROM {{p}}users WHERE openid = %(openid)s",
    "lock_user": f"SELECT {_USER} FROM {{p}}users WHERE openid = %(openid)s FOR UPDATE",
    "set_profile": "UPDATE {p}users SET unionid = %(unionid)s, profile = %(profile)s, "
    "updated_at = %(now)s WHERE openid = %(openid)s",
    "create_session": f"INSERT INTO {{p}}sessions ({_SESSION}) VALUES ({_SESSION_VALUES})",
    "get_session": f"SELECT {_SESSION} FROM {{p}}sessions WHERE id = %(id)s",
    "find_session": f"SELECT {_SESSION} FROM {{p}}sessions WHERE skey_hash = %(skey_hash)s",
    "login_by_id": _LOGIN + "s.id = %(id)s",
    "touch_session": "UPDATE {p}sessions SET last_seen = %(last_seen)s, "
    "expires_at = %(expires_at)s WHERE id = %(id)s",
    "revoke_session": "DELETE FROM {p}sessions WHERE id = %(id)s",
    "revoke_user": "DELETE FROM {p}sessions WHERE openid = %(openid)s",
    "list_sessions": f"SELECT {_SESSION} FROM {{p}}sessions WHERE openid = %(openid)s "
    "ORDER BY created_at",
    "stats": "SELECT (SELECT COUNT(*) FROM {p}users), "
    "(SELECT COUNT(*) FROM {p}sessions WHERE expires_at > %(now)s), "
    "(SELECT COUNT(*) FROM {p}sessions WHERE expires_at <= %(now)s), "
    "(SELECT COUNT(*) FROM {p}entries WHERE expires_at > %(now)s)",
    "get_entry": "SELECT value FROM {p}entries WHERE {key} = %(key)s AND expires_at > %(now)s",
    "delete_entry": "DELETE FROM {p}entries WHERE {key} = %(key)s",
    "insert_lock": "INSERT INTO {p}locks (name, owner, expires_at) "
    "VALUES (%(name)s, %(owner)s, %(expires_at)s)",
    "release_lock": "DELETE FROM {p}locks WHERE name = %(name)s AND owner = %(owner)s",
}
#: The tables purged of what expired, with their primary keys (``{key}`` as above).
_PURGED = (("entries", "{key}"), ("locks", "name"), ("sessions", "id"))


@dataclass(frozen=True)
class _Dialect:
    """What differs between PostgreSQL and MySQL: the driver, the schema, a few queries."""

    name: str
    driver: str
    params: Callable[[SplitResult, dict[str, str], float, float], dict[str, Any]]
    connect: Callable[[Any, dict[str, Any]], Any]
    #: The connection's socket descriptor.
    fileno: Callable[[Any], int]
    #: A new cursor on a connection.
    cursor: Callable[[Any], Any]
    key: str
    schema: tuple[str, ...]
    #: Serialises table creation between processes (DDL inside a transaction), or None.
    schema_lock: str | None
    begin: str
    #: INSERT/UPDATE ... RETURNING: a write answers the row it wrote, saving a SELECT.
    returning: bool
    #: Return the user, inserting it if missing and filling a missing unionid.
    ensure_user: str
    set_phone: str
    set_entry: str
    #: PostgreSQL: takes the lock in one statement (``upsert_lock``). MySQL: the UPDATE
    #: half of the take, followed by ``insert_lock`` when there is no row.
    take_lock: str
    upsert_lock: bool
    #: Delete at most ``%(limit)s`` expired rows of ``{table}`` (primary key ``{pk}``).
    purge_batch: str


def _pg_params(
    parts: SplitResult, options: dict[str, str], connect_timeout: float, io_timeout: float
) -> dict[str, Any]:
    from psycopg.conninfo import conninfo_to_dict

    # libpq reads the URL itself (percent-escapes, several hosts, sslmode and the other
    # query options); what the URL leaves unsaid gets the store's defaults.
    url = urlunsplit(("postgresql", parts.netloc, parts.path, urlencode(options), ""))
    params: dict[str, Any] = {
        "connect_timeout": max(2, round(connect_timeout)),  # libpq's minimum is 2 s
        # A query to a server that vanished without a word (a network cut) fails after
        # about io_timeout seconds instead of the kernel's default of minutes.
        "tcp_user_timeout": round(io_timeout * 1000),
        "keepalives": 1,
        "keepalives_idle": max(1, round(io_timeout / 2)),
        "keepalives_interval": max(1, round(io_timeout / 6)),
        "keepalives_count": 3,
        "application_name": "wafer_py",
    }
    params.update(conninfo_to_dict(url))
    return params


def _pg_connect(driver: Any, params: dict[str, Any]) -> Any:
    return driver.connect(autocommit=True, **params)


def _mysql_params(
    parts: SplitResult, options: dict[str, str], connect_timeout: float, io_timeout: float
) -> dict[str, Any]:
    from pymysql.constants import CLIENT

    unknown = sorted(set(options) - set(_MYSQL_OPTIONS))
    if unknown:
        raise ValueError(
            f"unknown MySQL store URL option(s) {', '.join(unknown)}; "
            f"known: table_prefix, {', '.join(_MYSQL_OPTIONS)}"
        )
    params: dict[str, Any] = {
        "host": parts.hostname or "127.0.0.1",
        "port": parts.port or 3306,
        "user": unquote(parts.username) if parts.username else None,
        "password": unquote(parts.password) if parts.password else "",
        "database": unquote(parts.path.lstrip("/")) or None,
        "charset": "utf8mb4",
        "autocommit": True,
        "connect_timeout": connect_timeout,
        "read_timeout": io_timeout,
        "write_timeout": io_timeout,
        # An UPDATE counts the rows it matched, not only those it changed: the lock's
        # take relies on it (a holder renewing to the same expiry changes nothing).
        "client_flag": CLIENT.FOUND_ROWS,
        # Too long a value is an error, not silently cut; no fallback to MyISAM.
        "sql_mode": "STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION",
    }
    params.update(options)
    return params


def _mysql_connect(driver: Any, params: dict[str, Any]) -> Any:
    # PyMySQL's connect_timeout covers the TCP connect only; the handshake reads with the
    # read timeout. Connect with both at connect_timeout, so a server that accepts and
    # says nothing fails as fast as one that refuses; queries then get io_timeout.
    quick = params["connect_timeout"]
    conn = driver.connect(**{**params, "read_timeout": quick, "write_timeout": quick})
    conn._read_timeout, conn._write_timeout = params["read_timeout"], params["write_timeout"]
    return conn


_PG_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS {p}users (
    openid      TEXT PRIMARY KEY,
    unionid     TEXT,
    profile     TEXT NOT NULL,
    created_at  DOUBLE PRECISION NOT NULL,
    updated_at  DOUBLE PRECISION NOT NULL,
    phone       TEXT
)""",
    """CREATE TABLE IF NOT EXISTS {p}sessions (
    id                  TEXT PRIMARY KEY,
    openid              TEXT NOT NULL,
    skey_hash           TEXT NOT NULL,
    sealed_session_key  TEXT NOT NULL,
    created_at          DOUBLE PRECISION NOT NULL,
    last_seen           DOUBLE PRECISION NOT NULL,
    expires_at          DOUBLE PRECISION NOT NULL,
    CONSTRAINT {p}sessions_skey_hash UNIQUE (skey_hash)
)""",
    "CREATE INDEX IF NOT EXISTS {p}sessions_openid ON {p}sessions (openid)",
    "CREATE INDEX IF NOT EXISTS {p}sessions_expires ON {p}sessions (expires_at)",
    """CREATE TABLE IF NOT EXISTS {p}entries (
    key         TEXT PRIMARY KEY,
    value       TEXT NOT NULL,
    expires_at  DOUBLE PRECISION NOT NULL
)""",
    "CREATE INDEX IF NOT EXISTS {p}entries_expires ON {p}entries (expires_at)",
    """CREATE TABLE IF NOT EXISTS {p}locks (
    name        TEXT PRIMARY KEY,
    owner       TEXT NOT NULL,
    expires_at  DOUBLE PRECISION NOT NULL
)""",
)

# utf8mb4_bin: ids, hashes and keys compare case-sensitively (the default collation
# would make "Ab" and "ab" the same session id). Indexed VARCHARs stay within InnoDB's
# 3072-byte key limit at 4 bytes a character.
_MYSQL_TABLE = " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"
_MYSQL_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS {p}users (
    openid      VARCHAR(128) NOT NULL PRIMARY KEY,
    unionid     VARCHAR(128) NULL,
    profile     TEXT NOT NULL,
    created_at  DOUBLE NOT NULL,
    updated_at  DOUBLE NOT NULL,
    phone       VARCHAR(64) NULL
)"""
    + _MYSQL_TABLE,
    """CREATE TABLE IF NOT EXISTS {p}sessions (
    id                  VARCHAR(64) NOT NULL PRIMARY KEY,
    openid              VARCHAR(128) NOT NULL,
    skey_hash           VARCHAR(128) NOT NULL,
    sealed_session_key  TEXT NOT NULL,
    created_at          DOUBLE NOT NULL,
    last_seen           DOUBLE NOT NULL,
    expires_at          DOUBLE NOT NULL,
    UNIQUE KEY {p}sessions_skey_hash (skey_hash),
    KEY {p}sessions_openid (openid),
    KEY {p}sessions_expires (expires_at)
)"""
    + _MYSQL_TABLE,
    """CREATE TABLE IF NOT EXISTS {p}entries (
    `key`       VARCHAR(255) NOT NULL PRIMARY KEY,
    value       MEDIUMTEXT NOT NULL,
    expires_at  DOUBLE NOT NULL,
    KEY {p}entries_expires (expires_at)
)"""
    + _MYSQL_TABLE,
    """CREATE TABLE IF NOT EXISTS {p}locks (
    name        VARCHAR(255) NOT NULL PRIMARY KEY,
    owner       VARCHAR(255) NOT NULL,
    expires_at  DOUBLE NOT NULL
)"""
    + _MYSQL_TABLE,
)

_POSTGRES = _Dialect(
    name="PostgreSQL",
    driver="psycopg",
    params=_pg_params,
    connect=_pg_connect,
    fileno=lambda conn: int(conn.fileno()),
    # Binary results: floats arrive as 8 bytes, not text to parse.
    cursor=lambda conn: conn.cursor(binary=True),
    key="key",
    schema=_PG_SCHEMA,
    schema_lock="SELECT pg_advisory_xact_lock(%(lock)s)",
    begin="BEGIN",
    returning=True,
    # A login of a known user writes nothing: the update's WHERE is false, so nothing
    # is returned and the store reads the row instead.
    ensure_user=f"INSERT INTO {{p}}users AS u ({_USER}) VALUES (%(openid)s, %(unionid)s, "
    "%(profile)s, %(now)s, %(now)s, NULL) ON CONFLICT (openid) DO UPDATE "
    "SET unionid = excluded.unionid, updated_at = excluded.updated_at "
    f"WHERE u.unionid IS NULL AND excluded.unionid IS NOT NULL RETURNING {_USER}",
    set_phone="UPDATE {p}users SET phone = %(phone)s, updated_at = %(now)s "
    f"WHERE openid = %(openid)s RETURNING {_USER}",
    set_entry="INSERT INTO {p}entries (key, value, expires_at) "
    "VALUES (%(key)s, %(value)s, %(expires_at)s) ON CONFLICT (key) DO UPDATE "
    "SET value = excluded.value, expires_at = excluded.expires_at",
    # ON CONFLICT locks the row and checks the WHERE against its latest version: the
    # check and the take are one atomic step, and the row count says who won.
    take_lock="INSERT INTO {p}locks AS l (name, owner, expires_at) "
    "VALUES (%(name)s, %(owner)s, %(expires_at)s) ON CONFLICT (name) DO UPDATE "
    "SET owner = excluded.owner, expires_at = excluded.expires_at "
    "WHERE l.owner = excluded.owner OR l.expires_at <= %(now)s",
    upsert_lock=True,
    # The outer condition is checked again on a row another transaction just changed, so
    # a session touched while the batch is chosen survives.
    purge_batch="DELETE FROM {p}{table} WHERE {pk} IN (SELECT {pk} FROM {p}{table} "
    "WHERE expires_at <= %(now)s LIMIT %(limit)s) AND expires_at <= %(now)s",
)

_MYSQL = _Dialect(
    name="MySQL",
    driver="pymysql",
    params=_mysql_params,
    connect=_mysql_connect,
    fileno=lambda conn: int(conn._sock.fileno()),
    cursor=lambda conn: conn.cursor(),
    key="`key`",
    schema=_MYSQL_SCHEMA,
    schema_lock=None,  # MySQL commits around DDL; CREATE ... IF NOT EXISTS is safe alone
    begin="START TRANSACTION",
    returning=False,
    # Parameters are repeated rather than read with VALUES(), which MySQL 8 deprecates
    # and MariaDB's row-alias-less syntax needs. updated_at is assigned first: MySQL
    # assigns left to right, and it must see the old unionid.
    ensure_user=f"INSERT INTO {{p}}users ({_USER}) VALUES (%(openid)s, %(unionid)s, "
    "%(profile)s, %(now)s, %(now)s, NULL) ON DUPLICATE KEY UPDATE "
    "updated_at = IF(unionid IS NULL AND %(unionid)s IS NOT NULL, %(now)s, updated_at), "
    "unionid = COALESCE(unionid, %(unionid)s)",
    set_phone="UPDATE {p}users SET phone = %(phone)s, updated_at = %(now)s "
    "WHERE openid = %(openid)s",
    set_entry="INSERT INTO {p}entries (`key`, value, expires_at) "
    "VALUES (%(key)s, %(value)s, %(expires_at)s) ON DUPLICATE KEY UPDATE "
    "value = %(value)s, expires_at = %(expires_at)s",
    # MySQL's affected-rows count of an upsert cannot tell "renewed to the same expiry"
    # from "held by another", so the take is an UPDATE (its matched-rows count is exact)
    # and, when there is no row, an INSERT that the primary key lets only one win.
    take_lock="UPDATE {p}locks SET owner = %(owner)s, expires_at = %(expires_at)s "
    "WHERE name = %(name)s AND (owner = %(owner)s OR expires_at <= %(now)s)",
    upsert_lock=False,
    purge_batch="DELETE FROM {p}{table} WHERE expires_at <= %(now)s "
    "ORDER BY expires_at LIMIT %(limit)s",
)

_DIALECTS = {
    "postgresql": _POSTGRES,
    "postgres": _POSTGRES,
    "mysql": _MYSQL,
    "mariadb": _MYSQL,
}


def _import_driver(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise ImportError(f"the SQL store needs the {name} package: {_INSTALL}") from exc


def _mask(parts: SplitResult) -> str:
    """The URL with its password (in the user part or a query option) replaced by ***."""
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        if ":" in userinfo:
            netloc = userinfo.split(":", 1)[0] + ":***@" + host
    query = [(k, "***" if k == "password" else v) for k, v in parse_qsl(parts.query)]
    return urlunsplit((parts.scheme, netloc, parts.path, urlencode(query, safe="*"), ""))


def _user(row: Sequence[Any] | None) -> User | None:
    if row is None:
        return None
    return User(row[0], row[1], json.loads(row[2]), row[3], row[4], row[5])


def _session(row: Sequence[Any] | None) -> Session | None:
    return None if row is None else Session(*row)


class SQLStore(SessionStore):
    """Sessions in PostgreSQL (``postgresql://user:pass@host:5432/db``) or MySQL/MariaDB
    (``mysql://user:pass@host:3306/db``).

    The tables (``wafer_users``, ``wafer_sessions``, ``wafer_entries``, ``wafer_locks``,
    named with ``table_prefix``, which the URL may also give as ``?table_prefix=app_``)
    and their indexes are created when missing; ``create_tables=False`` skips that, for
    a database user without the right to create tables (an operator made them).

    Other PostgreSQL URL options go to libpq (``sslmode``, ...). ``connect_timeout``
    bounds a connection attempt and ``io_timeout`` a query to a server that stopped
    answering, so an outage is answered with 503 quickly.
    """

    schemes: ClassVar[tuple[str, ...]] = ("postgresql", "postgres", "mysql", "mariadb")

    def __init__(
        self,
        url: str,
        *,
        table_prefix: str | None = None,
        connect_timeout: float = 3.0,
        io_timeout: float = 10.0,
        create_tables: bool = True,
    ) -> None:
        parts = urlsplit(url)
        scheme = parts.scheme.lower().split("+", 1)[0]  # postgresql+psycopg:// too
        dialect = _DIALECTS.get(scheme)
        if dialect is None:
            raise ValueError(f"not a PostgreSQL or MySQL URL: {parts.scheme}://...")
        options = dict(parse_qsl(parts.query, keep_blank_values=True))
        in_url = options.pop("table_prefix", None)
        if table_prefix is not None and in_url is not None and table_prefix != in_url:
            raise ValueError("table_prefix is given twice, differently")
        prefix = table_prefix or in_url or "wafer_"
        if not _PREFIX.fullmatch(prefix):
            raise ValueError(
                f"table_prefix {prefix!r}: lower-case letters, digits and _, at most 40"
            )
        self.dialect = dialect
        self.table_prefix = prefix
        self._url = _mask(parts)
        self._driver = _import_driver(dialect.driver)
        self._params = dialect.params(parts, options, connect_timeout, io_timeout)
        self._password = str(self._params.get("password") or "")
        self._errors: tuple[type[BaseException], ...] = (self._driver.Error, OSError)
        self._lost: tuple[type[BaseException], ...] = (
            self._driver.OperationalError,
            self._driver.InterfaceError,
            OSError,
        )
        fill = {"p": prefix, "key": dialect.key}
        self._q = {name: sql.format(**fill) for name, sql in _COMMON.items()}
        for name in ("ensure_user", "set_phone", "set_entry", "take_lock"):
            self._q[name] = getattr(dialect, name).format(**fill)
        for table, pk in _PURGED:
            self._q["purge_" + table] = dialect.purge_batch.format(
                p=prefix, table=table, pk=pk.format(**fill)
            )
            self._q["purge_all_" + table] = (
                f"DELETE FROM {prefix}{table} WHERE expires_at <= %(now)s"
            )
        self._by_hashes: dict[int, str] = {}
        self._local = threading.local()
        self._conns: list[tuple[threading.Thread, Any]] = []
        self._conns_lock = threading.Lock()
        self._pid = os.getpid()
        if not create_tables:
            return
        try:
            self._create_tables()
        except StoreUnavailable as exc:
            logger.error("wafer_py: cannot create the session store's tables: %s", exc.detail)
            raise

    @classmethod
    def from_url(cls, url: str) -> SQLStore:
        """``postgresql://user:pass@host:5432/db`` (or ``postgres://``),
        ``mysql://user:pass@host:3306/db`` (or ``mariadb://``); ``?table_prefix=app_``."""
        return cls(url)

    def __repr__(self) -> str:
        return f"SQLStore({self._url!r}, table_prefix={self.table_prefix!r})"

    # -- connections ------------------------------------------------------------
    def _create_tables(self) -> None:
        fill = {"p": self.table_prefix}
        statements = [sql.format(**fill) for sql in self.dialect.schema]
        if self.dialect.schema_lock is None:
            with self._cursor() as cur:
                for sql in statements:
                    cur.execute(sql)
            return
        # Concurrent CREATE TABLE IF NOT EXISTS can still collide in PostgreSQL's
        # catalog: processes starting together take turns.
        digest = hashlib.sha256(b"wafer_py tables " + self.table_prefix.encode()).digest()
        lock = int.from_bytes(digest[:8], "big", signed=True)
        with self._transaction() as cur:
            cur.execute(self.dialect.schema_lock, {"lock": lock})
            for sql in statements:
                cur.execute(sql)

    def _conn(self) -> tuple[Any, Any]:
        """This thread's connection and its cursor, connecting if there is none. The
        cursor is kept: a new one would make psycopg look up every column's loader again.
        """
        conn = getattr(self._local, "conn", None)
        if conn is None or self._pid != os.getpid():
            self._connect()
        elif self._local.poll is not None and self._local.poll.poll(0):
            # The server spoke to an idle connection: it ended it (a restart, a KILL,
            # MySQL's wait_timeout). Connect again now rather than fail this call.
            logger.debug("wafer_py: the %s server closed a connection", self.dialect.name)
            self._discard(conn)
            self._connect()
        return self._local.conn, self._local.cursor

    def _connect(self) -> None:
        if self._pid != os.getpid():
            # A forked child: the inherited connections share their sockets with the
            # parent, and closing them would end its sessions. Forget them.
            with self._conns_lock:
                self._conns = []
            self._local = threading.local()
            self._pid = os.getpid()
        try:
            conn = self.dialect.connect(self._driver, self._params)
        except self._errors as exc:
            raise self._unavailable("cannot connect", exc) from None
        # Threads that ended leave their connections behind: close those now, so that a
        # thread-per-request server does not pile them up.
        with self._conns_lock:
            dead = [c for thread, c in self._conns if not thread.is_alive()]
            self._conns = [(t, c) for t, c in self._conns if t.is_alive()]
            self._conns.append((threading.current_thread(), conn))
        for old in dead:
            _close_quietly(old)
        self._local.conn, self._local.cursor = conn, self.dialect.cursor(conn)
        self._local.poll = _poller(self.dialect.fileno(conn))

    def _discard(self, conn: Any) -> None:
        if getattr(self._local, "conn", None) is conn:
            self._local.conn = self._local.cursor = None
        with self._conns_lock:
            self._conns = [(t, c) for t, c in self._conns if c is not conn]
        _close_quietly(conn)

    def _unavailable(self, what: str, exc: BaseException) -> StoreUnavailable:
        detail = f"{self.dialect.name} store: {what}: {type(exc).__name__}: {exc}".strip()
        if self._password:
            detail = detail.replace(self._password, "***")
        return StoreUnavailable(detail=detail)

    @contextmanager
    def _cursor(self) -> Iterator[Any]:
        """A cursor on this thread's connection; a driver error becomes StoreUnavailable
        (after dropping the connection if it is lost: the next call connects again)."""
        conn, cursor = self._conn()
        try:
            yield cursor
        except self._errors as exc:
            if isinstance(exc, self._lost) or getattr(conn, "broken", False):
                self._discard(conn)
            raise self._unavailable("query failed", exc) from None

    @contextmanager
    def _transaction(self) -> Iterator[Any]:
        with self._cursor() as cur:
            cur.execute(self.dialect.begin)
            try:
                yield cur
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            cur.execute("COMMIT")

    def _one(self, name: str, args: dict[str, Any]) -> Any:
        with self._cursor() as cur:
            cur.execute(self._q[name], args)
            return cur.fetchone()

    def _count(self, name: str, args: dict[str, Any]) -> int:
        with self._cursor() as cur:
            cur.execute(self._q[name], args)
            return int(cur.rowcount)

    # -- users ------------------------------------------------------------------
    def ensure_user(
        self, openid: str, *, unionid: str | None, profile: dict[str, Any], now: float
    ) -> User:
        args = {
            "openid": openid,
            "unionid": unionid or None,
            "profile": json.dumps(profile, ensure_ascii=False),
            "now": now,
        }
        with self._cursor() as cur:
            cur.execute(self._q["ensure_user"], args)
            row = cur.fetchone() if self.dialect.returning else None
            if row is None:
                cur.execute(self._q["get_user"], args)
                row = cur.fetchone()
        user = _user(row)
        assert user is not None
        return user

    def update_profile(
        self, openid: str, profile: dict[str, Any], *, now: float, unionid: str | None = None
    ) -> User | None:
        with self._transaction() as cur:
            cur.execute(self._q["lock_user"], {"openid": openid})
            user = _user(cur.fetchone())
            if user is None:
                return None
            user = user.with_profile(profile, now=now, unionid=unionid)
            cur.execute(
                self._q["set_profile"],
                {
                    "openid": openid,
                    "unionid": user.unionid,
                    "profile": json.dumps(user.profile, ensure_ascii=False),
                    "now": now,
                },
            )
        return user

    def update_phone(self, openid: str, phone: str | None, *, now: float) -> User | None:
        args = {"openid": openid, "phone": phone, "now": now}
        with self._cursor() as cur:
            cur.execute(self._q["set_phone"], args)
            if self.dialect.returning:
                return _user(cur.fetchone())
            cur.execute(self._q["get_user"], args)
            return _user(cur.fetchone())

    def get_user(self, openid: str) -> User | None:
        return _user(self._one("get_user", {"openid": openid}))

    # -- sessions ---------------------------------------------------------------
    def create_session(self, session: Session) -> None:
        self._count(
            "create_session",
            {
                "id": session.id,
                "openid": session.openid,
                "skey_hash": session.skey_hash,
                "sealed_session_key": session.sealed_session_key,
                "created_at": session.created_at,
                "last_seen": session.last_seen,
                "expires_at": session.expires_at,
            },
        )

    def get_session(self, session_id: str) -> Session | None:
        return _session(self._one("get_session", {"id": session_id}))

    def find_session(self, skey_hash: str) -> Session | None:
        return _session(self._one("find_session", {"skey_hash": skey_hash}))

    def find_login(
        self, *, session_id: str | None = None, skey_hashes: Sequence[str] = ()
    ) -> tuple[Session, User | None] | None:
        """The session and its user in one query: by id, or by any of the skey hashes
        (``IN``; when several match, the first in ``skey_hashes`` wins)."""
        hashes = list(skey_hashes)
        if session_id is not None:
            sql, args = self._q["login_by_id"], {"id": session_id}
        elif hashes:
            sql = self._by_hashes.get(len(hashes)) or self._login_by_hashes(len(hashes))
            args = {f"h{i}": h for i, h in enumerate(hashes)}
        else:
            return None
        with self._cursor() as cur:
            cur.execute(sql, args)
            rows = cur.fetchall()
        if not rows:
            return None
        row = min(rows, key=lambda r: hashes.index(r[2])) if len(rows) > 1 else rows[0]
        return Session(*row[:7]), _user(row[7:]) if row[7] is not None else None

    def _login_by_hashes(self, n: int) -> str:
        sql = self._q["login_by_id"].replace(
            "s.id = %(id)s", "s.skey_hash IN (" + ", ".join(f"%(h{i})s" for i in range(n)) + ")"
        )
        self._by_hashes[n] = sql
        return sql

    def touch_session(self, session_id: str, *, last_seen: float, expires_at: float) -> None:
        self._count(
            "touch_session", {"id": session_id, "last_seen": last_seen, "expires_at": expires_at}
        )

    def revoke_session(self, session_id: str) -> bool:
        return self._count("revoke_session", {"id": session_id}) > 0

    def revoke_user(self, openid: str) -> int:
        return self._count("revoke_user", {"openid": openid})

    def list_sessions(self, openid: str) -> list[Session]:
        with self._cursor() as cur:
            cur.execute(self._q["list_sessions"], {"openid": openid})
            return [Session(*row) for row in cur.fetchall()]

    def purge_expired(self, now: float, *, limit: int | None = None) -> int:
        """Delete what expired by ``now``, each statement its own transaction.

        With ``limit``, at most that many sessions go; expired entries and lapsed locks
        all go, ``limit`` rows at a time.
        """
        with self._cursor() as cur:
            for table in ("entries", "locks"):
                if limit is None:
                    cur.execute(self._q["purge_all_" + table], {"now": now})
                    continue
                while True:
                    cur.execute(self._q["purge_" + table], {"now": now, "limit": limit})
                    if cur.rowcount < limit:
                        break
            if limit is None:
                cur.execute(self._q["purge_all_sessions"], {"now": now})
            else:
                cur.execute(self._q["purge_sessions"], {"now": now, "limit": limit})
            return int(cur.rowcount)

    def stats(self, now: float) -> StoreStats:
        row = self._one("stats", {"now": now})
        return StoreStats(*(int(n) for n in row))

    # -- entries ----------------------------------------------------------------
    def get_entry(self, key: str, *, now: float) -> str | None:
        row = self._one("get_entry", {"key": key, "now": now})
        return None if row is None else str(row[0])

    def set_entry(self, key: str, value: str, *, expires_at: float) -> None:
        self._count("set_entry", {"key": key, "value": value, "expires_at": expires_at})

    def delete_entry(self, key: str) -> bool:
        return self._count("delete_entry", {"key": key}) > 0

    # -- locks ------------------------------------------------------------------
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

    def close(self) -> None:
        with self._conns_lock:
            conns, self._conns = self._conns, []
        for _, conn in conns:
            _close_quietly(conn)
        self._local = threading.local()


def _poller(fd: int) -> Any:
    """A poll object telling whether the socket ``fd`` has something to read (``None``
    where there is no poll(2), as on Windows: the check is then skipped)."""
    if not hasattr(select, "poll"):
        return None
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return poller


def _close_quietly(conn: Any) -> None:
    # A lost connection may fail to close; it is dropped either way.
    with suppress(Exception):
        conn.close()
