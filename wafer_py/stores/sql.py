"""PostgreSQL and MySQL/MariaDB stores, through plain DB-API drivers.

Why no SQLAlchemy: the store runs a dozen small queries, all fixed, so an ORM or a query
builder would add a dependency and a layer for nothing. What differs between the two
servers is a little SQL (the upsert, the lock, the batched delete, the schema's types),
kept in one table, :class:`~.sql_dialects.Dialect`. The drivers are psycopg 3
(PostgreSQL) and PyMySQL (MySQL, MariaDB), the ``sql`` extra; each is
imported only when a store for its server is opened.

Connections are in autocommit mode: a single statement is its own transaction, and the
few operations that need more than one statement to be atomic wrap them in an explicit
short transaction.

Each store borrows its connections from a bounded pool, :mod:`.sql_pool`
(``max_connections``, default 10; ``pool_timeout``, default 5 s, then 503). Under asyncio,
validation (the lookup and the touch) runs on the event loop through a second pool per
loop of async connections (:mod:`.sql_async`): psycopg's, and asyncmy's for MySQL when
it is installed (:mod:`.sql_async_mysql`; without it, a worker thread). A forked child
opens a pool of its own (it never uses its parent's connections, which share their
sockets).
"""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
import os
import threading
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlsplit

from ..exceptions import StoreUnavailable
from ..extras import install_hint
from ..logsafe import redact_url
from ..models import Session, User
from .base import SessionStore, StoreStats
from .entries import EntryStore
from .invalidation import InvalidationChannel
from .loops import PerLoop
from .sql_async import AsyncPool
from .sql_async import socket_poller as _poller
from .sql_dialects import DIALECTS, PURGED, QUERIES, Dialect
from .sql_options import only_options, store_options
from .sql_pool import Pool, Pooled, close_quietly

__all__ = ["SQLStore"]

logger = logging.getLogger("wafer_py")

_INSTALL = install_hint("sql")
#: The store's tables, named with its ``table_prefix``.
TABLES = ("users", "sessions", "entries", "locks")


def _import_driver(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise ImportError(f"the SQL store needs the {name} package: {_INSTALL}") from exc


def _user(row: Sequence[Any] | None) -> User | None:
    if row is None:
        return None
    return User(row[0], row[1], json.loads(row[2]), row[3], row[4], row[5])


def _login(rows: Sequence[Sequence[Any]], hashes: list[str]) -> tuple[Session, User | None] | None:
    """A session and its user from the login query's rows (when several skey hashes
    matched, the first in ``hashes`` wins)."""
    if not rows:
        return None
    row = min(rows, key=lambda r: hashes.index(r[2])) if len(rows) > 1 else rows[0]
    return Session(*row[:7]), _user(row[7:]) if row[7] is not None else None


def _session(row: Sequence[Any] | None) -> Session | None:
    return None if row is None else Session(*row)


class SQLStore(SessionStore, EntryStore):
    """Sessions in PostgreSQL (``postgresql://user:pass@host:5432/db``) or MySQL/MariaDB
    (``mysql://user:pass@host:3306/db``).

    The tables (``wafer_users``, ``wafer_sessions``, ``wafer_entries``, ``wafer_locks``,
    named with ``table_prefix``, which the URL may also give as ``?table_prefix=app_``)
    and their indexes are created when missing; ``create_tables=False`` skips that, for
    a database user without the right to create tables (an operator made them).

    At most ``max_connections`` connections (default 10) are open at once, in a pool the
    threads share; a thread waits up to ``pool_timeout`` seconds (default 5) for one
    when all are in use. The URL may give both too: ``?max_connections=20&pool_timeout=2``.
    Size it so that processes x ``max_connections`` stays under the server's own
    ``max_connections`` (the module's docstring says more).

    Other PostgreSQL URL options go to psycopg (``prepare_threshold``; without it,
    prepared statements are off behind a pooler such as PgBouncer, which the store
    notices) and libpq (``sslmode``, ``application_name``, ...); an unknown one stops
    the store at start. ``connect_timeout`` bounds a connection
    attempt and ``io_timeout`` a query to a server that stopped answering, so an outage
    is answered with 503 quickly.

    Bring your own connections: ``connect()`` returns one of the URL's driver (psycopg,
    PyMySQL) for the pool, ``async_connect()`` (PostgreSQL) a psycopg AsyncConnection
    for validation on the loop; the URL then gives only the scheme and the store's
    options (``postgresql://?table_prefix=app_``). See docs/operators-postgresql.md.
    """

    schemes: ClassVar[tuple[str, ...]] = ("postgresql", "postgres", "mysql", "mariadb")
    #: A server many app processes use: they need one configured secret key.
    shared: ClassVar[bool] = True

    def __init__(
        self,
        url: str,
        *,
        connect: Callable[[], Any] | None = None,
        async_connect: Callable[[], Awaitable[Any]] | None = None,
        table_prefix: str | None = None,
        max_connections: int | None = None,
        pool_timeout: float | None = None,
        connect_timeout: float = 3.0,
        io_timeout: float = 10.0,
        create_tables: bool = True,
    ) -> None:
        parts = urlsplit(url)
        scheme = parts.scheme.lower().split("+", 1)[0]  # postgresql+psycopg:// too
        dialect = DIALECTS.get(scheme)
        if dialect is None:
            raise ValueError(f"not a PostgreSQL or MySQL URL: {parts.scheme}://...")
        options = dict(parse_qsl(parts.query, keep_blank_values=True))
        mine = store_options(
            options,
            table_prefix=table_prefix,
            max_connections=max_connections,
            pool_timeout=pool_timeout,
        )
        prefix, size, wait = mine.table_prefix, mine.max_connections, mine.pool_timeout
        self.dialect: Dialect = dialect
        self.table_prefix = prefix
        self._url = redact_url(url)
        self._driver = _import_driver(dialect.driver)
        self._own_connect, self._own_async_connect = connect, async_connect
        if connect is None and async_connect is None:
            self._params = dialect.params(parts, options, connect_timeout, io_timeout)
        else:
            only_options(parts, options, connect, async_connect, dialect.async_connect)
            self._params = {}
        self._password = str(self._params.get("password") or "")
        self._errors: tuple[type[BaseException], ...] = (self._driver.Error, OSError)
        self._lost: tuple[type[BaseException], ...] = (
            self._driver.OperationalError,
            self._driver.InterfaceError,
            OSError,
        )
        fill = {"p": prefix, "key": dialect.key}
        self._q = {name: sql.format(**fill) for name, sql in QUERIES.items()}
        for name in ("ensure_user", "set_phone", "set_entry", "take_lock"):
            self._q[name] = getattr(dialect, name).format(**fill)
        for table, pk in PURGED:
            self._q["purge_" + table] = dialect.purge_batch.format(
                p=prefix, table=table, pk=pk.format(**fill)
            )
            self._q["purge_all_" + table] = (
                f"DELETE FROM {prefix}{table} WHERE expires_at <= %(now)s"
            )
        self._by_hashes: dict[int, str] = {}
        self._pool = self._new_pool(size, wait)
        # Under asyncio, validation's queries on the event loop, where the driver can.
        self._async_pools: PerLoop[AsyncPool] | None = None
        if dialect.async_connect is not None and (connect is None or async_connect is not None):
            self.supports_async = True
            self._async_pools = PerLoop(
                lambda: AsyncPool(self._aopen, dialect.fileno, size, wait, dialect.name),
                AsyncPool.aclose,
            )
        self._fork_lock = threading.Lock()
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
        ``mysql://user:pass@host:3306/db`` (or ``mariadb://``); options
        ``?table_prefix=app_&max_connections=10&pool_timeout=5``."""
        return cls(url)

    @property
    def max_connections(self) -> int:
        """The most connections this process's pool opens at once."""
        return self._pool.size

    @property
    def pool_timeout(self) -> float:
        """How long a call waits for a connection when all are in use, in seconds."""
        return self._pool.timeout

    def __repr__(self) -> str:
        return (
            f"SQLStore({self._url!r}, table_prefix={self.table_prefix!r}, "
            f"max_connections={self._pool.size})"
        )

    def missing_tables(self) -> list[str]:
        """The names of this store's tables that do not exist. A read-only probe (nothing
        is created) for a store opened with ``create_tables=False``: the ``wafer-py``
        commands that only read tell a mistyped ``table_prefix`` from an empty store."""
        names = [f"{self.table_prefix}{table}" for table in TABLES]
        schema = (
            "ANY (current_schemas(false))" if self.dialect.name == "PostgreSQL" else "DATABASE()"
        )
        wanted = ", ".join(f"%(t{i})s" for i in range(len(names)))
        with self._cursor() as cur:
            cur.execute(
                "SELECT table_name FROM information_schema.tables "
                f"WHERE table_schema = {schema} AND table_name IN ({wanted})",
                {f"t{i}": name for i, name in enumerate(names)},
            )
            found = {str(row[0]) for row in cur.fetchall()}
        return [name for name in names if name not in found]

    # -- connections ------------------------------------------------------------
    def invalidation_channel(self) -> InvalidationChannel | None:
        """PostgreSQL: LISTEN on what the tables' triggers NOTIFY (:mod:`.sql_notify`).
        MySQL: none."""
        if self.dialect.name != "PostgreSQL":
            return None
        from .sql_notify import PostgresNotifyChannel

        return PostgresNotifyChannel(self)

    def _create_tables(self) -> None:
        fill = {"p": self.table_prefix}
        statements = [sql.format(**fill) for sql in self.dialect.schema]
        if self.dialect.name == "PostgreSQL":  # the triggers of the invalidation channel
            from .sql_notify import notify_schema

            statements += notify_schema(self.table_prefix)
        if self.dialect.schema_lock is None:
            with self._cursor() as cur:
                for sql in statements:
                    cur.execute(sql)
                for table, index, create in self.dialect.added_indexes:
                    self._add_index(cur, table.format(**fill), index.format(**fill), create)
            return
        # Concurrent CREATE TABLE IF NOT EXISTS can still collide in PostgreSQL's
        # catalog: processes starting together take turns.
        digest = hashlib.sha256(b"wafer_py tables " + self.table_prefix.encode()).digest()
        lock = int.from_bytes(digest[:8], "big", signed=True)
        with self._transaction() as cur:
            cur.execute(self.dialect.schema_lock, {"lock": lock})
            for sql in statements:
                cur.execute(sql)

    def _add_index(self, cur: Any, table: str, index: str, create: str) -> None:
        """Add an index a table made by an older release lacks (MySQL's migration)."""
        cur.execute(
            "SELECT COUNT(*) FROM information_schema.statistics WHERE table_schema = "
            "DATABASE() AND table_name = %(table)s AND index_name = %(index)s",
            {"table": table, "index": index},
        )
        if cur.fetchone()[0]:
            return
        try:
            cur.execute(create.format(p=self.table_prefix))
        except self._errors as exc:
            # Another process starting at the same time added it first.
            if "Duplicate key name" not in str(exc):
                raise

    def _open(self) -> Pooled:
        """A new connection for the pool."""
        try:
            conn = self._connect()
        except self._errors as exc:
            raise self._unavailable("cannot connect", exc) from None
        try:
            return Pooled(conn, self.dialect.cursor(conn), _poller(self.dialect.fileno(conn)))
        except BaseException:
            close_quietly(conn)
            raise

    def _connect(self) -> Any:
        if self._own_connect is None:
            return self.dialect.connect(self._driver, self._params)
        conn = self._own_connect()
        try:
            if self.dialect.adopt is not None:
                self.dialect.adopt(self._driver, conn)
        except BaseException:
            close_quietly(conn)
            raise
        return conn

    async def _aopen(self) -> Any:
        """A new asyncio connection for the running loop's pool."""
        assert self.dialect.async_connect is not None
        try:
            if self._own_async_connect is None:
                return await self.dialect.async_connect(self._driver, self._params)
            conn = await self._own_async_connect()
        except self._errors as exc:
            raise self._unavailable("cannot connect", exc) from None
        if not getattr(conn, "autocommit", False):
            await conn.close()
            raise ValueError(
                "async_connect= must return a connection in autocommit mode "
                "(psycopg: AsyncConnection.connect(..., autocommit=True))"
            )
        return conn

    def _pool_after_fork(self) -> Pool:
        """A new pool for a forked child: the inherited connections share their sockets
        with the parent, and closing them would end its sessions, so the child forgets
        them. (The pid is checked on each call rather than in an at-fork hook: servers
        that fork from C, such as uWSGI by default, run no such hooks.)"""
        with self._fork_lock:  # only ever taken in a child, never by the parent
            if self._pool.pid != os.getpid():
                self._pool = self._new_pool(self._pool.size, self._pool.timeout)
            return self._pool

    def _new_pool(self, size: int, timeout: float) -> Pool:
        return Pool(self._open, self._failed, size, timeout, self.dialect.name)

    def _unavailable(self, what: str, exc: BaseException) -> StoreUnavailable:
        detail = f"{self.dialect.name} store: {what}: {type(exc).__name__}: {exc}".strip()
        if self._password:
            detail = detail.replace(self._password, "***")
        return StoreUnavailable(detail=detail + self.dialect.explain(exc))

    def _cursor(self) -> Pooled:
        """A connection borrowed from the pool: ``with`` it for its cursor, given back
        after the block (see :meth:`_failed` when the block raises)."""
        pool = self._pool
        if pool.pid != os.getpid():
            pool = self._pool_after_fork()
        return pool.borrow()

    def _failed(self, pooled: Pooled, exc: BaseException) -> None:
        """A block on a borrowed connection raised ``exc``. A driver error becomes
        StoreUnavailable, and the connection goes back to the pool unless it is lost
        (then it is closed, and the next call connects again). Other exceptions pass;
        the connection goes back, unless the block was interrupted (KeyboardInterrupt, a
        timeout raised into the thread), maybe mid-query: its state is unknown."""
        pool = pooled.pool
        assert pool is not None
        if isinstance(exc, self._errors):
            lost = isinstance(exc, self._lost) or getattr(pooled.conn, "broken", False)
            if lost or pooled.doomed:
                pool.discard(pooled)
            else:
                pool.give_back(pooled)
            raise self._unavailable("query failed", exc) from None
        if isinstance(exc, Exception) and not pooled.doomed:
            pool.give_back(pooled)
        else:
            pool.discard(pooled)

    @contextmanager
    def _transaction(self) -> Iterator[Any]:
        """A short explicit transaction. When its body fails, the error reported is the
        body's: a rollback that fails too (the connection died with the statement) is
        logged and its connection discarded, never raised in the original's place."""
        pooled = self._cursor()
        with pooled as cur:
            cur.execute(self.dialect.begin)
            try:
                yield cur
            except BaseException as exc:
                try:
                    cur.execute("ROLLBACK")
                except self._errors as err:
                    pooled.doomed = True
                    logger.warning(
                        "wafer_py: %s store: rollback failed (%s) after: %s",
                        self.dialect.name,
                        type(err).__name__,
                        self._unavailable("query failed", exc).detail,
                    )
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

    def find_users_by_unionid(self, unionid: str) -> list[User]:
        with self._cursor() as cur:
            cur.execute(self._q["users_by_unionid"], {"unionid": unionid})
            rows = cur.fetchall()
        return [u for u in map(_user, rows) if u is not None]

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
        query = self._login_query(session_id, hashes)
        if query is None:
            return None
        with self._cursor() as cur:
            cur.execute(*query)
            rows = cur.fetchall()
        return _login(rows, hashes)

    async def afind_login(
        self, *, session_id: str | None = None, skey_hashes: Sequence[str] = ()
    ) -> tuple[Session, User | None] | None:
        """:meth:`find_login` on the event loop; it blocks for MySQL without its asyncio
        driver (the ASGI middleware calls it from a worker thread then)."""
        if self._async_pools is None:
            return self.find_login(session_id=session_id, skey_hashes=skey_hashes)
        hashes = list(skey_hashes)
        query = self._login_query(session_id, hashes)
        if query is None:
            return None
        pool = await self._async_pools.get()
        try:
            rows = await pool.fetch(*query)
        except self._errors as exc:
            raise self._unavailable("query failed", exc) from None
        return _login(rows, hashes)

    def _login_query(
        self, session_id: str | None, hashes: list[str]
    ) -> tuple[str, dict[str, Any]] | None:
        if session_id is not None:
            return self._q["login_by_id"], {"id": session_id}
        if not hashes:
            return None
        sql = self._by_hashes.get(len(hashes)) or self._login_by_hashes(len(hashes))
        return sql, {f"h{i}": h for i, h in enumerate(hashes)}

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

    def supersede_sessions(
        self, openid: str, session_ids: Sequence[str], *, expires_at: float, now: float
    ) -> int:
        if not session_ids:
            return 0
        ids = {f"i{n}": session_id for n, session_id in enumerate(session_ids)}
        marks = ", ".join(f"%({name})s" for name in ids)
        sql = self._q["supersede"].replace("%(ids)s", marks)
        with self._cursor() as cur:
            cur.execute(sql, {"openid": openid, "expires_at": expires_at, **ids})
            return int(cur.rowcount)

    def reseal_session(self, session_id: str, sealed_session_key: str, *, openid: str) -> bool:
        args = {"id": session_id, "openid": openid, "sealed": sealed_session_key}
        return self._count("reseal_session", args) > 0

    async def atouch_session(self, session_id: str, *, last_seen: float, expires_at: float) -> None:
        if self._async_pools is None:
            self.touch_session(session_id, last_seen=last_seen, expires_at=expires_at)
            return
        args = {"id": session_id, "last_seen": last_seen, "expires_at": expires_at}
        pool = await self._async_pools.get()
        try:
            await pool.execute(self._q["touch_session"], args)
        except self._errors as exc:
            raise self._unavailable("query failed", exc) from None

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
        """Close the pool's connections: the idle ones now, the lent ones when they come
        back. A later call opens new ones."""
        self._pool.close()
        if self._async_pools is not None:
            self._async_pools.close()
