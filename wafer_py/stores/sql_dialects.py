"""What differs between PostgreSQL and MySQL/MariaDB, in one table: :class:`Dialect`.

The queries both servers run as they are (:data:`QUERIES`), and per server the driver,
how a URL becomes its connection parameters, the schema, and the few statements whose
SQL differs (the upserts, the lock's take, the batched purge). :mod:`.sql` runs them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import SplitResult

from .sql_async_mysql import async_connect as mysql_async_connect
from .sql_async_mysql import installed as mysql_async_installed
from .sql_mysql import mysql_adopt, mysql_connect, mysql_fileno, mysql_params
from .sql_options import STORE_OPTIONS
from .sql_postgres import pg_adopt, pg_async_connect, pg_connect, pg_explain, pg_params

__all__ = ["DIALECTS", "PURGED", "QUERIES", "STORE_OPTIONS", "Dialect"]

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
QUERIES = {
    "get_user": f"SELECT {_USER} FROM {{p}}users WHERE openid = %(openid)s",
    "users_by_unionid": f"SELECT {_USER} FROM {{p}}users WHERE unionid = %(unionid)s "
    "ORDER BY created_at, openid",
    "lock_user": f"SELECT {_USER} FROM {{p}}users WHERE openid = %(openid)s FOR UPDATE",
    "set_profile": "UPDATE {p}users SET unionid = %(unionid)s, profile = %(profile)s, "
    "updated_at = %(now)s WHERE openid = %(openid)s",
    "create_session": f"INSERT INTO {{p}}sessions ({_SESSION}) VALUES ({_SESSION_VALUES})",
    "get_session": f"SELECT {_SESSION} FROM {{p}}sessions WHERE id = %(id)s",
    "find_session": f"SELECT {_SESSION} FROM {{p}}sessions WHERE skey_hash = %(skey_hash)s",
    "login_by_id": _LOGIN + "s.id = %(id)s",
    "touch_session": "UPDATE {p}sessions SET last_seen = %(last_seen)s, "
    "expires_at = %(expires_at)s WHERE id = %(id)s",
    "supersede": "UPDATE {p}sessions SET expires_at = %(expires_at)s "
    "WHERE openid = %(openid)s AND id IN (%(ids)s) AND expires_at > %(expires_at)s",
    "reseal_session": "UPDATE {p}sessions SET sealed_session_key = %(sealed)s "
    "WHERE id = %(id)s AND openid = %(openid)s",
    "revoke_session": "DELETE FROM {p}sessions WHERE id = %(id)s",
    "revoke_user": "DELETE FROM {p}sessions WHERE openid = %(openid)s",
    "list_sessions": f"SELECT {_SESSION} FROM {{p}}sessions WHERE openid = %(openid)s "
    "ORDER BY created_at, id",
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
PURGED = (("entries", "{key}"), ("locks", "name"), ("sessions", "id"))


@dataclass(frozen=True)
class Dialect:
    """What differs between PostgreSQL and MySQL: the driver, the schema, a few queries."""

    name: str
    driver: str
    params: Callable[[SplitResult, dict[str, str], float, float], dict[str, Any]]
    connect: Callable[[Any, dict[str, Any]], Any]
    #: The connection's socket descriptor, watched while it is idle (None: not watched).
    fileno: Callable[[Any], int | None]
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
    #: Opens an asyncio connection (validation on the event loop), where the driver can.
    async_connect: Callable[[Any, dict[str, Any]], Awaitable[Any]] | None = None
    #: Indexes added after the first release, for servers without CREATE INDEX IF NOT
    #: EXISTS (MySQL): (table, index, CREATE INDEX statement), run if the index is missing.
    added_indexes: tuple[tuple[str, str, str], ...] = ()
    #: Readies a connection made by the operator's ``connect=`` for the store (checks
    #: its type, switches on autocommit), raising TypeError or ValueError if it cannot.
    adopt: Callable[[Any, Any], None] | None = None
    #: A hint for an operator, appended to a driver error's message ("" for none).
    explain: Callable[[BaseException], str] = lambda exc: ""


_PG_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS {p}users (
    openid      TEXT PRIMARY KEY,
    unionid     TEXT,
    profile     TEXT NOT NULL,
    created_at  DOUBLE PRECISION NOT NULL,
    updated_at  DOUBLE PRECISION NOT NULL,
    phone       TEXT
)""",
    # Also added to tables made before it existed (IF NOT EXISTS makes it the migration).
    "CREATE INDEX IF NOT EXISTS {p}users_unionid ON {p}users (unionid)",
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
    phone       VARCHAR(64) NULL,
    KEY {p}users_unionid (unionid)
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

POSTGRES = Dialect(
    name="PostgreSQL",
    driver="psycopg",
    params=pg_params,
    connect=pg_connect,
    fileno=lambda conn: int(conn.fileno()),
    async_connect=pg_async_connect,
    adopt=pg_adopt,
    explain=pg_explain,
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

MYSQL = Dialect(
    name="MySQL",
    driver="pymysql",
    params=mysql_params,
    connect=mysql_connect,
    adopt=mysql_adopt,
    fileno=mysql_fileno,
    # Validation on the event loop when the asyncio driver is installed.
    async_connect=mysql_async_connect if mysql_async_installed() else None,
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
    added_indexes=(
        ("{p}users", "{p}users_unionid", "CREATE INDEX {p}users_unionid ON {p}users (unionid)"),
    ),
)

DIALECTS = {
    "postgresql": POSTGRES,
    "postgres": POSTGRES,
    "mysql": MYSQL,
    "mariadb": MYSQL,
}
