"""The SQLite store's tables, and how one of their rows becomes a model.

The tables are made when missing (``CREATE ... IF NOT EXISTS``), so a new file and an
existing one open alike. The column lists fix the order the row readers rely on.
"""

from __future__ import annotations

import json
from typing import Any

from ..models import Session, User

__all__ = ["SCHEMA", "SESSION_COLUMNS", "USER_COLUMNS", "LOGIN_JOIN", "to_user", "to_session"]

SCHEMA = """
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

SESSION_COLUMNS = "id, openid, skey_hash, sealed_session_key, created_at, last_seen, expires_at"
USER_COLUMNS = "openid, unionid, profile, created_at, updated_at, phone"
#: A session and its user in one query (validation's lookup).
LOGIN_JOIN = (
    "SELECT "
    + ", ".join(f"s.{c}" for c in SESSION_COLUMNS.split(", "))
    + ", "
    + ", ".join(f"u.{c}" for c in USER_COLUMNS.split(", "))
    + " FROM wafer_sessions s LEFT JOIN wafer_users u ON u.openid = s.openid"
)


def to_user(row: tuple[Any, ...] | None) -> User | None:
    """A row of :data:`USER_COLUMNS` as a :class:`~wafer_py.models.User`."""
    if row is None:
        return None
    return User(row[0], row[1], json.loads(row[2]), row[3], row[4], row[5])


def to_session(row: tuple[Any, ...] | None) -> Session | None:
    """A row of :data:`SESSION_COLUMNS` as a :class:`~wafer_py.models.Session`."""
    return None if row is None else Session(*row)
