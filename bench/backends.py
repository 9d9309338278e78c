"""Per-backend chores of the benchmarks: filling a store fast, its size, one round trip
to its server, and deleting what a run made.

The fast fill paths write the rows each store's own methods would write, in bulk
(``executemany``, ``COPY``, pipelines); :func:`bulk_insert` checks a few of them back
through the store's methods, so a fill that drifted from the store's layout fails loudly.
"""

from __future__ import annotations

import itertools
import json
import sqlite3
from collections.abc import Iterable, Iterator
from typing import Any

from wafer_py.models import Session
from wafer_py.stores import SessionStore, SQLiteStore

_CHUNK = 20_000


def kind(store: SessionStore) -> str:
    """``memory``, ``sqlite``, ``redis``, ``postgres`` (or the class name)."""
    name = type(store).__name__
    return {
        "MemoryStore": "memory",
        "SQLiteStore": "sqlite",
        "RedisStore": "redis",
        "SQLStore": "postgres",
    }.get(name, name)


def _chunks(rows: Iterable[tuple[Session, str]]) -> Iterator[list[tuple[Session, str]]]:
    iterator = iter(rows)
    while chunk := list(itertools.islice(iterator, _CHUNK)):
        yield chunk


def bulk_insert(
    store: SessionStore,
    rows: Iterable[tuple[Session, str]],
    profile: dict[str, Any],
    now: float,
) -> None:
    """Store each ``(session, openid)`` and a user for it with ``profile``."""
    sample: list[Session] = []
    fast = {"sqlite": _fill_sqlite, "redis": _fill_redis, "postgres": _fill_sql}.get(kind(store))
    for chunk in _chunks(rows):
        if not sample:
            sample = [chunk[0][0], chunk[-1][0]]
        if fast is None:
            for session, openid in chunk:
                store.ensure_user(openid, unionid=None, profile=profile, now=now)
                store.create_session(session)
        else:
            fast(store, chunk, profile, now)
    for session in sample:
        found = store.find_login(session_id=session.id)
        if found is None or found[0] != session or found[1] is None:
            raise RuntimeError(f"the bulk fill of {store!r} does not read back: {found!r}")


# ------------------------------------------------------------------------ SQLite


def _fill_sqlite(
    store: SessionStore, chunk: list[tuple[Session, str]], profile: dict[str, Any], now: float
) -> None:
    assert isinstance(store, SQLiteStore)
    text = json.dumps(profile, ensure_ascii=False)
    conn = sqlite3.connect(store.path, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(
            "INSERT INTO wafer_users (openid, unionid, profile, created_at, updated_at) "
            "VALUES (?, NULL, ?, ?, ?)",
            [(openid, text, now, now) for _, openid in chunk],
        )
        conn.executemany(
            "INSERT INTO wafer_sessions (id, openid, skey_hash, sealed_session_key, "
            "created_at, last_seen, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    s.id,
                    s.openid,
                    s.skey_hash,
                    s.sealed_session_key,
                    s.created_at,
                    s.last_seen,
                    s.expires_at,
                )
                for s, _ in chunk
            ],
        )
        conn.execute("COMMIT")
    finally:
        conn.close()


def sqlite_bytes(store: SQLiteStore) -> int:
    """The database's size once its write-ahead log is folded in (pages in use)."""
    conn = sqlite3.connect(store.path, isolation_level=None)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        free = conn.execute("PRAGMA freelist_count").fetchone()[0]
        size = conn.execute("PRAGMA page_size").fetchone()[0]
        return int((pages - free) * size)
    finally:
        conn.close()


# ------------------------------------------------------------------------- Redis
#
# What RedisStore.ensure_user and create_session write (see the key layout in
# wafer_py/stores/redis.py), as plain commands in pipelines of a chunk at a time.


def _fill_redis(
    store: SessionStore, chunk: list[tuple[Session, str]], profile: dict[str, Any], now: float
) -> None:
    from wafer_py.stores.redis import GRACE

    client = _redis_client(store)
    profile_fields: dict[str, str] = {
        "p:" + k: json.dumps(v, ensure_ascii=False) for k, v in profile.items()
    }
    users = store._users  # type: ignore[attr-defined]
    everyone = store._sessions  # type: ignore[attr-defined]
    pipe = client.pipeline(transaction=False)
    for session, openid in chunk:
        base = store._base(openid)  # type: ignore[attr-defined]
        record = store._record(session)  # type: ignore[attr-defined]
        ttl = int((session.expires_at - session.last_seen + GRACE) * 1000)
        pipe.hset(
            base + ":user",
            mapping={"openid": openid, "created_at": now, "updated_at": now, **profile_fields},
        )
        pipe.sadd(users, openid)
        pipe.hset(
            record,
            mapping={
                "id": session.id,
                "openid": session.openid,
                "skey_hash": session.skey_hash,
                "sealed_session_key": session.sealed_session_key,
                "created_at": session.created_at,
                "last_seen": session.last_seen,
                "expires_at": session.expires_at,
            },
        )
        pipe.pexpire(record, ttl)
        pipe.zadd(base + ":sessions", {session.id: session.created_at})
        pipe.pexpire(base + ":sessions", ttl)
        pipe.set(store._skey_pointer(session.skey_hash), record, px=ttl)  # type: ignore[attr-defined]
        pipe.set(store._id_pointer(session.id), record, px=ttl)  # type: ignore[attr-defined]
        pipe.zadd(everyone, {record: session.expires_at})
    pipe.execute()


def _redis_client(store: SessionStore) -> Any:
    return store._client  # type: ignore[attr-defined]


def redis_bytes(store: SessionStore, probes: list[Session] | None = None) -> int:
    """Bytes of the store's keys (``MEMORY USAGE``): the shared indexes whole, the keys
    of each session and its user from a sample (every key if few), scaled up."""
    client = _redis_client(store)
    prefix: str = store.prefix  # type: ignore[attr-defined]
    shared = [store._users, store._sessions, store._entries]  # type: ignore[attr-defined]
    total = sum(client.memory_usage(key, samples=0) or 0 for key in shared)
    count = client.zcard(store._sessions)  # type: ignore[attr-defined]
    records = [
        r
        for r, _ in client.zscan_iter(store._sessions, count=1000)  # type: ignore[attr-defined]
    ][:2000]
    per: list[int] = []
    for record in records:
        base = record.split("}", 1)[0] + "}"
        keys = [record, base + ":user", base + ":sessions"]
        fields = client.hmget(record, "id", "skey_hash")
        keys += [f"{prefix}{{i:{fields[0]}}}", f"{prefix}{{k:{fields[1]}}}"]
        per.append(sum(client.memory_usage(key, samples=0) or 0 for key in keys))
    if per:
        total += round(sum(per) / len(per) * count)
    return int(total)


def server_memory(store: SessionStore) -> int | None:
    """Redis's ``used_memory`` (the whole server's); ``None`` for other stores."""
    if kind(store) != "redis":
        return None
    return int(_redis_client(store).info("memory")["used_memory"])


def _drop_redis(store: SessionStore) -> None:
    client = _redis_client(store)
    prefix: str = store.prefix  # type: ignore[attr-defined]
    batch: list[str] = []
    for key in client.scan_iter(match=_glob(prefix) + "*", count=5000):
        batch.append(key)
        if len(batch) >= 5000:
            client.unlink(*batch)
            batch = []
    if batch:
        client.unlink(*batch)


def _glob(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


# -------------------------------------------------------------------- PostgreSQL


def _pg_connect(store: SessionStore) -> Any:
    import psycopg

    params = dict(store._params)  # type: ignore[attr-defined]
    return psycopg.connect(autocommit=True, **params)


def _fill_sql(
    store: SessionStore, chunk: list[tuple[Session, str]], profile: dict[str, Any], now: float
) -> None:
    prefix: str = store.table_prefix  # type: ignore[attr-defined]
    text = json.dumps(profile, ensure_ascii=False)
    with _pg_connect(store) as conn, conn.transaction(), conn.cursor() as cur:
        with cur.copy(
            f"COPY {prefix}users (openid, unionid, profile, created_at, updated_at) FROM STDIN"
        ) as copy:
            for _, openid in chunk:
                copy.write_row((openid, None, text, now, now))
        with cur.copy(
            f"COPY {prefix}sessions (id, openid, skey_hash, sealed_session_key, "
            "created_at, last_seen, expires_at) FROM STDIN"
        ) as copy:
            for s, _ in chunk:
                copy.write_row(
                    (
                        s.id,
                        s.openid,
                        s.skey_hash,
                        s.sealed_session_key,
                        s.created_at,
                        s.last_seen,
                        s.expires_at,
                    )
                )


_SQL_TABLES = ("users", "sessions", "entries", "locks")


def sql_bytes(store: SessionStore) -> int:
    """``pg_total_relation_size`` (tables, indexes, TOAST) of the store's tables."""
    prefix: str = store.table_prefix  # type: ignore[attr-defined]
    with _pg_connect(store) as conn:
        total = 0
        for table in _SQL_TABLES:
            conn.execute(f"VACUUM ANALYZE {prefix}{table}")
            row = conn.execute("SELECT pg_total_relation_size(%s)", (prefix + table,)).fetchone()
            total += int(row[0]) if row else 0
        return total


def _drop_sql(store: SessionStore) -> None:
    prefix: str = store.table_prefix  # type: ignore[attr-defined]
    with _pg_connect(store) as conn:
        for table in _SQL_TABLES:
            conn.execute(f"DROP TABLE IF EXISTS {prefix}{table}")


# ------------------------------------------------------------------------- sizes


def store_bytes(store: SessionStore) -> int | None:
    """What the store's data takes: SQLite pages in use, PostgreSQL relation sizes,
    Redis memory of the run's keys; ``None`` for the memory store."""
    found = kind(store)
    if isinstance(store, SQLiteStore):
        return sqlite_bytes(store)
    if found == "redis":
        return redis_bytes(store)
    if found == "postgres":
        return sql_bytes(store)
    return None


def drop(store: SessionStore) -> None:
    """Delete the keys or tables a benchmark store made (files are the caller's)."""
    found = kind(store)
    if found == "redis":
        _drop_redis(store)
    elif found == "postgres":
        _drop_sql(store)
