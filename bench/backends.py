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
from dataclasses import dataclass, field
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
# RedisStore's key layout is its own business: the first session of a fill goes through
# the store's methods, the keys it made are read back as a template (identifiers
# replaced by placeholders), and every other session is written from the template in
# pipelines. Whatever the layout, the bulk rows are what the store itself writes.


@dataclass
class _Key:
    """One key a session's creation made: its name and value with placeholders."""

    name: str
    type: str
    value: Any
    pttl: int

    @property
    def shared(self) -> bool:
        """A key every session adds to (an index), not one of its own."""
        return "\0" not in self.name


@dataclass
class _Template:
    keys: list[_Key]
    rows: int = 1
    samples: list[dict[str, str]] = field(default_factory=list)


_TEMPLATES: dict[int, _Template] = {}


def _slots(session: Session, openid: str) -> dict[str, str]:
    """The identifiers of a row, by placeholder (NUL-marked: no real text holds one)."""
    return {
        "\0openid\0": openid,
        "\0id\0": session.id,
        "\0skey_hash\0": session.skey_hash,
        "\0sealed\0": session.sealed_session_key,
    }


def _mask(text: str, slots: dict[str, str]) -> str:
    for mark, value in slots.items():
        text = text.replace(value, mark)
    return text


def _fill(text: str, slots: dict[str, str]) -> str:
    for mark, value in slots.items():
        text = text.replace(mark, value)
    return text


def _learn(
    store: SessionStore, session: Session, openid: str, profile: dict[str, Any], now: float
) -> _Template:
    """Store one row through the store's methods; read back what it wrote."""
    client = _redis_client(store)
    store.ensure_user(openid, unionid=None, profile=profile, now=now)
    store.create_session(session)
    slots = _slots(session, openid)
    keys = []
    for name in client.scan_iter(match=_glob(store.prefix) + "*", count=1000):  # type: ignore[attr-defined]
        kind_ = client.type(name)
        value: Any
        if kind_ == "string":
            value = _mask(client.get(name), slots)
        elif kind_ == "hash":
            value = {_mask(k, slots): _mask(v, slots) for k, v in client.hgetall(name).items()}
        elif kind_ == "zset":
            value = {
                _mask(m, slots): score for m, score in client.zrange(name, 0, -1, withscores=True)
            }
        elif kind_ == "set":
            value = [_mask(m, slots) for m in client.smembers(name)]
        else:
            raise RuntimeError(f"bench: no template for a Redis {kind_} ({name})")
        keys.append(_Key(_mask(name, slots), kind_, value, client.pttl(name)))
    template = _Template(keys, samples=[slots])
    _TEMPLATES[id(store)] = template
    return template


def _fill_redis(
    store: SessionStore, chunk: list[tuple[Session, str]], profile: dict[str, Any], now: float
) -> None:
    template = _TEMPLATES.get(id(store))
    if template is None:
        template = _learn(store, chunk[0][0], chunk[0][1], profile, now)
        chunk = chunk[1:]
    pipe = _redis_client(store).pipeline(transaction=False)
    for session, openid in chunk:
        slots = _slots(session, openid)
        for key in template.keys:
            name = _fill(key.name, slots)
            if key.type == "string":
                pipe.set(name, _fill(key.value, slots), px=key.pttl if key.pttl > 0 else None)
                continue
            if key.type == "hash":
                pipe.hset(
                    name, mapping={_fill(k, slots): _fill(v, slots) for k, v in key.value.items()}
                )
            elif key.type == "zset":
                pipe.zadd(name, {_fill(m, slots): score for m, score in key.value.items()})
            else:
                pipe.sadd(name, *(_fill(m, slots) for m in key.value))
            if key.pttl > 0 and not key.shared:
                pipe.pexpire(name, key.pttl)
    pipe.execute()
    template.rows += len(chunk)
    if len(template.samples) < 200 and chunk:
        template.samples.append(_slots(*chunk[-1]))


def _redis_client(store: SessionStore) -> Any:
    return store._client  # type: ignore[attr-defined]


def redis_bytes(store: SessionStore) -> int:
    """Bytes of the store's keys (``MEMORY USAGE``): the shared indexes whole, and a
    sample of sessions' own keys scaled to every session."""
    client = _redis_client(store)
    template = _TEMPLATES.get(id(store))
    if template is None:
        return 0
    total = 0
    for key in template.keys:
        if key.shared:
            total += client.memory_usage(key.name, samples=0) or 0
    own = [k for k in template.keys if not k.shared]
    per = [
        sum(client.memory_usage(_fill(k.name, slots), samples=0) or 0 for k in own)
        for slots in template.samples
    ]
    return int(total + sum(per) / len(per) * template.rows)


def server_memory(store: SessionStore) -> int | None:
    """Redis's ``used_memory`` (the whole server's); ``None`` for other stores."""
    if kind(store) != "redis":
        return None
    return int(_redis_client(store).info("memory")["used_memory"])


def _drop_redis(store: SessionStore) -> None:
    _TEMPLATES.pop(id(store), None)
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
