"""Login churn: what a day of v2 traffic leaves in each store, per user.

A v2 client (wafer2-client-sdk) logs in before every ``login: true`` request and drops
the skey it held, so a busy user leaves a session behind per request. On a clock the
script moves (the stores take ``now`` from their caller), three users live one day:

* ``v1``: one login, then a validated request every 5 minutes all day;
* ``v2 even``: a login and a validated request every 3 minutes all day (480 logins);
* ``v2 bursts``: 12 visits, one every 2 hours, of 40 requests 7.5 s apart, each after a
  login (480 logins); the day ends with the last visit.

Each v2 user runs with ``superseded_ttl`` as configured (300 s by default) and with it off
(0: superseded sessions keep their 7 days, as before). At the end of the day, expired
sessions are purged with the same clock, and the user's sessions and bytes are counted:
Redis ``MEMORY USAGE`` of the user's keys, plus its members of the shared indexes (their
cost per member measured on a skiplist-encoded index, as at scale); PostgreSQL
``pg_column_size`` of its rows; SQLite and MySQL the bytes of its rows' values; both SQL
kinds plus the bytes of their index keys; the memory store the size of its objects.

Target: a v2 user's bytes at most 3 times a v1 user's, on every store.

    python -m bench.churn [--smoke] [--stores memory,sqlite,redis,postgres,mysql]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields, is_dataclass
from pathlib import Path
from typing import Any

from bench import common
from wafer_py import WaferAuth, WaferConfig
from wafer_py.auth import Credentials
from wafer_py.config import DEMO_APPID
from wafer_py.models import Session
from wafer_py.stores import SessionStore
from wafer_py.wechat.client import Code2Session

STORES = ("memory", "sqlite", "redis", "postgres", "mysql")
MYSQL_URL = "mysql://root@127.0.0.1:3306/test"
DAY = 86_400.0
TARGET = 3.0
SESSION_KEY = "c2Vzc2lvbmtleTEyMzQ1Ng=="


@dataclass
class Day:
    """What one simulated user left at the end of the day."""

    sessions: int
    bytes: int
    peak: int  # live sessions at the worst moment (after a login)
    mean: float  # live sessions averaged over the day
    mean_bytes: int  # the user's record, and its sessions averaged over the day


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def requests(pattern: str, smoke: bool) -> list[float]:
    """The seconds into the day of each request of ``pattern``; the last is the day's end."""
    scale = 4 if smoke else 1  # smoke: a quarter of the requests, the same day
    if pattern == "v1":
        return [300.0 * scale * (i + 1) for i in range(int(DAY // (300 * scale)))]
    if pattern == "v2 even":
        return [180.0 * scale * (i + 1) for i in range(int(DAY // (180 * scale)))]
    visits, per_visit, gap = 12, 40 // scale, 7.5 * scale
    times = []
    for visit in range(visits):
        end = DAY - (visits - 1 - visit) * 7200.0
        times += [end - gap * (per_visit - 1 - i) for i in range(per_visit)]
    return times


def simulate(store: SessionStore, pattern: str, superseded_ttl: int, smoke: bool) -> Day:
    """One user's day on ``store``; its sessions and bytes once expired ones are purged."""
    start = 1_800_000_000.0
    clock = Clock(start)
    config = WaferConfig(
        appid=DEMO_APPID,
        app_secret="bench",
        secret_keys=(common.SECRET,),
        superseded_ttl=superseded_ttl,
    )
    auth = WaferAuth(config, store=store, clock=clock)
    openid = common.new_openid()
    times = requests(pattern, smoke)
    result = auth.complete_login(Code2Session(openid, SESSION_KEY))
    peak, area, previous = 0, 0.0, start
    listed: list[Session] = store.list_sessions(openid)
    for at in times:
        clock.now = start + at
        area += _live_seconds(listed, previous, clock.now)
        if pattern != "v1":
            result = auth.complete_login(Code2Session(openid, SESSION_KEY))
        auth.validate(Credentials(result.skey, result.session_id))
        listed = store.list_sessions(openid)
        peak = max(peak, sum(1 for s in listed if not s.is_expired(clock.now)))
        previous = clock.now
    store.purge_expired(clock.now)
    left = [s for s in store.list_sessions(openid) if not s.is_expired(clock.now)]
    mean = area / (clock.now - start)
    alone, sessions = user_bytes(store, openid, left)
    per_session = sessions / max(len(left), 1)
    return Day(len(left), alone + sessions, peak, mean, int(alone + mean * per_session))


def _live_seconds(sessions: list[Session], since: float, until: float) -> float:
    """Session-seconds lived between two requests (nothing changes in between)."""
    return sum(max(0.0, min(s.expires_at, until) - since) for s in sessions)


# ------------------------------------------------------------------------ sizes


def user_bytes(store: SessionStore, openid: str, sessions: list[Session]) -> tuple[int, int]:
    """Bytes of the user's record, and of its ``sessions`` (their indexes included)."""
    kind = type(store).__name__
    if kind == "MemoryStore":
        user = store.get_user(openid)
        return _deep_size(user, set()), sum(_deep_size(s, set()) for s in sessions)
    if kind == "SQLiteStore":
        return _sql_bytes(store, openid, _sqlite_query)
    if kind == "RedisStore":
        return _redis_bytes(store, openid, sessions)
    if store.dialect.name == "postgresql":  # type: ignore[attr-defined]
        return _sql_bytes(store, openid, _pg_query)
    return _sql_bytes(store, openid, _mysql_query)


def _deep_size(obj: Any, seen: set[int]) -> int:
    """Bytes of an object and what it holds (strings, floats, dicts, dataclasses)."""
    if id(obj) in seen:
        return 0
    seen.add(id(obj))
    size = sys.getsizeof(obj)
    if isinstance(obj, dict):
        size += sum(_deep_size(k, seen) + _deep_size(v, seen) for k, v in obj.items())
    elif isinstance(obj, (list, tuple)):
        size += sum(_deep_size(v, seen) for v in obj)
    elif is_dataclass(obj):
        size += sum(_deep_size(getattr(obj, f.name), seen) for f in fields(obj))
    return size


_TEXT_SESSION = ("id", "openid", "skey_hash", "sealed_session_key")
_TEXT_USER = ("openid", "unionid", "profile", "phone")
#: Per session: the primary key, the skey hash, the openid and the expiry are indexed;
#: per user: the openid and the unionid.
_INDEXED_SESSION = "LENGTH(id) + LENGTH(skey_hash) + LENGTH(openid) + 8"
_INDEXED_USER = "LENGTH(openid) + COALESCE(LENGTH(unionid), 0)"


def _sqlite_query(prefix: str) -> tuple[str, str]:
    def length(column: str) -> str:
        return f"COALESCE(LENGTH(CAST({column} AS BLOB)), 0)"

    session = " + ".join(length(c) for c in _TEXT_SESSION) + " + 24 + " + _INDEXED_SESSION
    user = " + ".join(length(c) for c in _TEXT_USER) + " + 16 + " + _INDEXED_USER
    return (
        f"SELECT COALESCE(SUM({session}), 0) FROM wafer_sessions WHERE openid = ?",
        f"SELECT COALESCE(SUM({user}), 0) FROM wafer_users WHERE openid = ?",
    )


def _mysql_query(prefix: str) -> tuple[str, str]:
    def length(column: str) -> str:
        return f"COALESCE(LENGTH({column}), 0)"

    session = " + ".join(length(c) for c in _TEXT_SESSION) + " + 24 + " + _INDEXED_SESSION
    user = " + ".join(length(c) for c in _TEXT_USER) + " + 16 + " + _INDEXED_USER
    return (
        f"SELECT COALESCE(SUM({session}), 0) FROM {prefix}sessions WHERE openid = %s",
        f"SELECT COALESCE(SUM({user}), 0) FROM {prefix}users WHERE openid = %s",
    )


def _pg_query(prefix: str) -> tuple[str, str]:
    return (
        f"SELECT COALESCE(SUM(pg_column_size(s.*) + {_INDEXED_SESSION}), 0) "
        f"FROM {prefix}sessions s WHERE openid = %s",
        f"SELECT COALESCE(SUM(pg_column_size(u.*) + {_INDEXED_USER}), 0) "
        f"FROM {prefix}users u WHERE openid = %s",
    )


def _sql_bytes(
    store: Any, openid: str, queries: Callable[[str], tuple[str, str]]
) -> tuple[int, int]:
    """(the user's row, its sessions' rows), with their index keys."""
    if type(store).__name__ == "SQLiteStore":
        conn = store._conn()
        sessions, user = (int(conn.execute(q, (openid,)).fetchone()[0]) for q in queries(""))
        return user, sessions
    found = []
    with store._cursor() as cur:
        for sql in queries(store.table_prefix):
            cur.execute(sql, (openid,))
            found.append(int(cur.fetchone()[0]))
    return found[1], found[0]


#: Bytes a member of a shared index costs at scale (skiplist-encoded), by index kind.
_INDEX_COST: dict[str, float] = {}


def _redis_bytes(store: Any, openid: str, sessions: list[Session]) -> tuple[int, int]:
    client = store._client
    base = store._base(openid)
    keys = [base + ":sessions"]  # the user's index of sessions: theirs
    for s in sessions:
        keys += [f"{base}:s:{s.id}", store._id_pointer(s.id), store._skey_pointer(s.skey_hash)]
    if not _INDEX_COST:
        _measure_index_costs(store, f"{base}:s:{'0' * 32}", openid)
    user = (client.memory_usage(base + ":user", samples=0) or 0) + _INDEX_COST["set"]
    own = sum(client.memory_usage(k, samples=0) or 0 for k in keys)
    return int(user), int(own + _INDEX_COST["zset"] * len(sessions))


def _measure_index_costs(store: Any, member: str, openid: str) -> None:
    """What one more member costs in the expiry index (a zset of record keys) and the
    users set, once they are too large for the compact encodings (as at scale)."""
    client = store._client
    zset, users = store.prefix + "{x}:scratch-zset", store.prefix + "{x}:scratch-set"
    n = 2000
    try:
        pipe = client.pipeline(transaction=False)
        for i in range(n):
            pipe.zadd(zset, {f"{member[:-6]}{i:06d}": 1.8e9 + i})
            pipe.sadd(users, f"{openid[:-6]}{i:06d}")
        pipe.execute()
        _INDEX_COST["zset"] = (client.memory_usage(zset, samples=0) or 0) / n
        _INDEX_COST["set"] = (client.memory_usage(users, samples=0) or 0) / n
    finally:
        client.delete(zset, users)


# ------------------------------------------------------------------------ stores


@contextmanager
def opened(name: str, args: argparse.Namespace, workdir: Path) -> Iterator[SessionStore]:
    tag = common.run_tag()
    if name != "mysql":
        store = common.open_bench_store(name, tag, workdir, common.store_urls(args))
        try:
            yield store
        finally:
            common.drop_bench_store(store)
        return
    from wafer_py.stores.sql import SQLStore

    digest = hashlib.sha256(tag.encode()).hexdigest()[:16]
    sql_store = SQLStore(args.mysql_url, table_prefix=f"bench_{digest}_")
    try:
        yield sql_store
    finally:
        with sql_store._cursor() as cur:
            for table in ("users", "sessions", "entries", "locks"):
                cur.execute(f"DROP TABLE IF EXISTS {sql_store.table_prefix}{table}")
        sql_store.close()


def chosen(args: argparse.Namespace) -> list[str]:
    wanted = [s.strip() for s in args.stores.split(",") if s.strip()]
    unknown = [s for s in wanted if s not in STORES]
    if unknown:
        raise SystemExit(f"unknown store(s) {unknown}; choose from {', '.join(STORES)}")
    names = []
    for name in STORES:
        if name not in wanted:
            continue
        url = {"redis": args.redis_url, "postgres": args.postgres_url, "mysql": args.mysql_url}
        if name in url:
            problem = (_mysql_problem if name == "mysql" else common.server_problem)(url[name])
            if problem is not None:
                print(f"note: leaving out {name}: {problem}", flush=True)
                continue
        names.append(name)
    return names


def _mysql_problem(url: str) -> str | None:
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 3306
    try:
        with socket.create_connection((host, port), timeout=2):
            return None
    except OSError as exc:
        return f"no server at {host}:{port} ({exc})"


def main() -> None:
    parser = common.parser(__doc__)
    parser.set_defaults(stores=",".join(STORES))
    parser.add_argument(
        "--mysql-url",
        default=os.environ.get("WAFER_BENCH_MYSQL_URL", MYSQL_URL),
        help=f"the MySQL or MariaDB server (default $WAFER_BENCH_MYSQL_URL or {MYSQL_URL})",
    )
    parser.add_argument(
        "--superseded-ttl",
        type=int,
        default=WaferConfig.superseded_ttl,
        help="seconds a superseded session lives on (default: the setting's default)",
    )
    args = parser.parse_args()
    ttl = args.superseded_ttl
    runs = [("v1", ttl), ("v2 even", ttl), ("v2 bursts", ttl), ("v2 even", 0), ("v2 bursts", 0)]
    results: dict[str, Any] = {"machine": common.machine(), "superseded_ttl": ttl, "stores": {}}
    rows = []
    ok_all = True
    with tempfile.TemporaryDirectory(prefix="wafer-churn-") as tmp:
        for name in chosen(args):
            days: dict[str, Day] = {}
            for pattern, run_ttl in runs:
                label = pattern if run_ttl else f"{pattern}, off"
                with opened(name, args, Path(tmp)) as store:
                    days[label] = simulate(store, pattern, run_ttl, args.smoke)
            v1 = days["v1"]
            results["stores"][name] = {k: vars(v) for k, v in days.items()}
            for label, day in days.items():
                ratio = day.mean_bytes / v1.mean_bytes
                checked = not label.endswith("off") and label != "v1"
                ok = ratio <= TARGET
                ok_all = ok_all and (ok or not checked)
                rows.append(
                    [
                        f"{name} {label}",
                        day.sessions,
                        day.bytes,
                        f"{day.bytes / v1.bytes:.2f}x",
                        day.peak,
                        f"{day.mean:.2f}",
                        day.mean_bytes,
                        f"{ratio:.2f}x",
                        common.verdict(ok) if checked else "",
                    ]
                )
    common.show(
        f"Login churn: one user's day (superseded_ttl {ttl} s; 'off': 0)",
        [
            "store, user",
            "sessions at end",
            "bytes at end",
            "vs v1",
            "peak",
            "mean sessions",
            "mean bytes",
            "vs v1",
            f"<= {TARGET:g}x",
        ],
        rows,
    )
    common.note(
        "at end: once the day's last request is done and expired sessions are purged; "
        "peak: the most live sessions right after a request; mean: live sessions averaged "
        "over the day, and the bytes they and the user's record take (what a population "
        "of such users keeps, so what capacity is planned on). The target is on the mean."
    )
    results["met"] = ok_all
    common.write_json(args.json, results)


if __name__ == "__main__":
    main()
