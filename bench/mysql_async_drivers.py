"""MySQL validation under asyncio: aiomysql, asyncmy, and PyMySQL in a worker thread.

What an ASGI app pays per validated request with a MySQL store: the store's lookup and
touch (``afind_login`` + ``atouch_session``) on the event loop through each asyncio
driver, against the same two calls of the blocking store in one worker-thread hop
(``wafer_py.plans.offload``, what the middleware does without an asyncio driver).
Elapsed time is mostly the server's (and a loaded machine's); the client's CPU time per
call is what the app server spends, and its user-mode part the driver's own work. Each
variant has a store of its own on the same tables; rounds are interleaved. Two loads:
the lookup alone (the drivers' costs show best there: a touch is a commit, and the
server's log flush dominates it) and validation (lookup and touch), each one at a time
and by 20 tasks at once (time per call; ``max_connections`` 10).

    python -m bench.mysql_async_drivers [--smoke] [--mysql-url mysql://root@127.0.0.1/test]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import secrets
import time
from collections.abc import Callable
from typing import Any

from bench import common
from wafer_py.plans import offload
from wafer_py.stores import sql_async_mysql
from wafer_py.stores.sql import SQLStore
from wafer_py.testing import make_session

DRIVERS = ("asyncmy", "aiomysql")
THREAD = "PyMySQL, thread"
DEFAULT_URL = "mysql://root@127.0.0.1:3306/test"
CONCURRENCY = 20


def open_store(url: str, prefix: str, driver: str | None) -> SQLStore:
    """A store whose validation runs through ``driver`` (None: the blocking store)."""
    store = SQLStore(url, table_prefix=prefix)
    if driver is None:
        store.supports_async = False
        store._async_pools = None
        return store

    async def aopen() -> sql_async_mysql.AsyncMySQL:
        # The store's own opener with another driver (its pools call it on first use).
        conn = await sql_async_mysql.AsyncMySQL(driver, store._params).open()
        assert type(conn._conn).__module__.startswith(driver)
        return conn

    store._aopen = aopen  # type: ignore[method-assign]
    return store


def validations(
    store: SQLStore, ids: list[str], hashes: list[str], *, touch: bool
) -> Callable[[int], Any]:
    """One coroutine function: validate session ``i`` (by id when i is even, else by
    skey hash) as the ASGI middleware would with this store; without ``touch``, only
    the lookup."""
    now = time.time()

    def blocking(i: int) -> None:
        by_id = i % 2 == 0
        found = store.find_login(
            session_id=ids[i] if by_id else None, skey_hashes=() if by_id else [hashes[i]]
        )
        assert found is not None
        if touch:
            store.touch_session(found[0].id, last_seen=now, expires_at=now + common.TTL)

    async def validate(i: int) -> None:
        if not store.supports_async:
            await offload(blocking, i)
            return
        by_id = i % 2 == 0
        found = await store.afind_login(
            session_id=ids[i] if by_id else None, skey_hashes=() if by_id else [hashes[i]]
        )
        assert found is not None
        if touch:
            await store.atouch_session(found[0].id, last_seen=now, expires_at=now + common.TTL)

    return validate


async def per_validation(
    validate: Callable[[int], Any], count: int, tasks: int
) -> tuple[float, float, float]:
    """Seconds per validation, ``count`` of them spread over ``tasks`` concurrent tasks:
    elapsed, this process's CPU time (every thread's), and the part of it in user mode
    (the kernel's share, sending and receiving on the socket, is every driver's alike)."""

    async def worker(start: int) -> None:
        for i in range(start, count, tasks):
            await validate(i)

    started, cpu, user = time.perf_counter(), time.process_time(), _user_time()
    await asyncio.gather(*(worker(t) for t in range(tasks)))
    return (
        (time.perf_counter() - started) / count,
        (time.process_time() - cpu) / count,
        (_user_time() - user) / count,
    )


def _user_time() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_utime


async def measure(args: argparse.Namespace) -> dict[str, dict[str, tuple[float, float, float]]]:
    prefix = f"bench_{os.getpid()}_{secrets.token_hex(2)}_"
    count, repetitions = (60, 2) if args.smoke else (600, 7)
    names = [d for d in DRIVERS if sql_async_mysql.installed(d)]
    for missing in sorted(set(DRIVERS) - set(names)):
        print(f"note: leaving out {missing}: not installed (pip install {missing})")
    stores = {name: open_store(args.mysql_url, prefix, name) for name in names}
    stores[THREAD] = open_store(args.mysql_url, prefix, None)
    try:
        some = stores[THREAD]
        ids, hashes = [], []
        for _ in range(count):
            openid = common.new_openid()
            some.ensure_user(openid, unionid=None, profile=common.DEFAULT_PROFILE, now=1.0)
            session, _ = make_session(openid, now=time.time(), ttl=common.TTL)
            some.create_session(session)
            ids.append(session.id)
            hashes.append(session.skey_hash)
        found: dict[str, dict[str, tuple[float, float, float]]] = {}
        loads = (
            ("lookup, 1 task", 1, False),
            (f"lookup, {CONCURRENCY} tasks", CONCURRENCY, False),
            ("validation, 1", 1, True),
            (f"validation, {CONCURRENCY}", CONCURRENCY, True),
        )
        for load, tasks, touch in loads:
            runs = {}
            for name, store in stores.items():
                validate = validations(store, ids, hashes, touch=touch)
                runs[name] = lambda v=validate, t=tasks: per_validation(v, count, t)
            times: dict[str, list[tuple[float, float, float]]] = {name: [] for name in runs}
            order = list(runs)
            for rep in range(repetitions + 1):  # the first round warms up
                shift = rep % len(order)
                for name in order[shift:] + order[:shift]:
                    measured = await runs[name]()
                    if rep:
                        times[name].append(measured)
            found[load] = {
                name: (
                    common.median([m[0] for m in got]),
                    common.median([m[1] for m in got]),
                    common.median([m[2] for m in got]),
                )
                for name, got in times.items()
            }
        return found
    finally:
        first = next(iter(stores.values()))
        with first._cursor() as cur:
            for table in ("users", "sessions", "entries", "locks"):
                cur.execute(f"DROP TABLE IF EXISTS {prefix}{table}")
        for store in stores.values():
            store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: does it run?")
    parser.add_argument("--mysql-url", default=os.environ.get("WAFER_BENCH_MYSQL_URL", DEFAULT_URL))
    args = parser.parse_args()
    problem = common.server_problem(args.mysql_url)
    if problem is not None:
        raise SystemExit(f"no MySQL server: {problem}")
    found = asyncio.run(measure(args))
    print("MySQL validation under asyncio (median us per call; ratios to asyncmy)")
    line = "-" * 90
    print(line)
    print(
        f"{'load':<19}{'variant':<17}{'elapsed':>9}{'ratio':>7}"
        f"{'CPU':>9}{'ratio':>7}{'user CPU':>11}{'ratio':>7}"
    )
    print(line)
    for load, by_name in found.items():
        base = by_name.get("asyncmy") or next(iter(by_name.values()))
        for name, measured in by_name.items():
            cells = "".join(
                f"{common.us(value):>{width}}{value / of:>7.2f}"
                for value, of, width in zip(measured, base, (9, 9, 11), strict=True)
            )
            print(f"{load:<19}{name:<17}{cells}")
    print(line)


if __name__ == "__main__":
    main()
