"""SQLite's session cache: is the exact check cheaper than the lookup it saves?

SQLite cannot push changes to other processes: a cache in front of it asks, before
every lookup, whether anything changed (:mod:`wafer_py.stores.sqlite_changes` reads its
change log), and that question must cost much less than the lookup. Measured in one run,
per call (median of interleaved batches), on one store of 100 000 sessions:

* the store's own lookup (``find_login``, v1 by id and v2 by skey hash), and
  ``WaferAuth.validate`` with it (no cache);
* ``WaferAuth.validate`` with the session cache on the same store (a hit after one read
  of the change log), and a hit with no check at all (the tests' channel store);
* the exact checks SQLite offers: the change log's read (what the cache does),
  ``PRAGMA data_version`` (moves on any commit by another connection: a touch, a login,
  a cached token, so a cache keyed on it would be emptied all the time) and a one-row
  revocation epoch.

    python -m bench.sqlite_cache [--smoke]
"""

from __future__ import annotations

import sqlite3
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import common
from bench.apps import cache_live, make_auth
from wafer_py.auth import Credentials
from wafer_py.stores import SQLiteStore


def sizes(smoke: bool) -> dict[str, int]:
    if smoke:
        return {"sessions": 2_000, "probes": 50, "calls": 200, "repetitions": 2}
    return {"sessions": 100_000, "probes": 1_000, "calls": 5_000, "repetitions": 15}


def per_call(call: Callable[[int], object], count: int) -> Callable[[], float]:
    def run() -> float:
        started = time.perf_counter()
        for i in range(count):
            call(i)
        return (time.perf_counter() - started) / count

    return run


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = common.parser(__doc__).parse_args(argv)
    size = sizes(args.smoke)
    results: dict[str, Any] = {"sizes": size, "machine": common.machine()}
    with tempfile.TemporaryDirectory(prefix="wafer-bench-") as tmp:
        workdir = Path(tmp)
        tag = common.run_tag()
        store = common.open_bench_store("sqlite", tag, workdir, {})
        memory = common.open_bench_store("memory+cache", tag, workdir, {})
        try:
            assert isinstance(store, SQLiteStore)
            probes = common.fill(store, size["sessions"], probes=size["probes"])
            memory_probes = common.fill(memory, size["probes"], probes=size["probes"])
            plain = make_auth(store)
            cached = make_auth(store, session_cache=common.CACHE_SIZE)
            hit_only = make_auth(memory, session_cache=common.CACHE_SIZE)
            if not (cache_live(cached) and cache_live(hit_only)):
                raise SystemExit("a session cache did not become live")
            v2 = [Credentials(p.skey) for p in probes]
            v1 = [Credentials(p.skey, p.session_id) for p in probes]
            hits = [Credentials(p.skey) for p in memory_probes]
            for creds in v1 + v2:
                cached.validate(creds)  # fill the caches
            for creds in hits:
                hit_only.validate(creds)
            hashes = [[common.BOX.hash_skey(p.skey)] for p in probes]
            ids = [p.session_id for p in probes]
            changes: Any = cached.session_cache._channel  # type: ignore[union-attr]
            conn = store._conn()  # the store's own connection of this thread
            with sqlite3.connect(store.path, isolation_level=None) as setup:
                setup.execute("CREATE TABLE bench_epoch (id INTEGER PRIMARY KEY, n INTEGER)")
                setup.execute("INSERT INTO bench_epoch VALUES (1, 0)")
            n, k = size["calls"], len(probes)
            runs = {
                "validate() sqlite v2": per_call(lambda i: plain.validate(v2[i % k]), n),
                "validate() sqlite v1": per_call(lambda i: plain.validate(v1[i % k]), n),
                "validate() sqlite+cache v2": per_call(lambda i: cached.validate(v2[i % k]), n),
                "validate() sqlite+cache v1": per_call(lambda i: cached.validate(v1[i % k]), n),
                "validate() memory+cache v2 (hit, no check)": per_call(
                    lambda i: hit_only.validate(hits[i % k]), n
                ),
                "find_login v2 (the lookup)": per_call(
                    lambda i: store.find_login(skey_hashes=hashes[i % k]), n
                ),
                "find_login v1 (the lookup)": per_call(
                    lambda i: store.find_login(session_id=ids[i % k]), n
                ),
                "change log read (the check)": per_call(lambda i: changes.poll(), n),
                "PRAGMA data_version": per_call(
                    lambda i: conn.execute("PRAGMA data_version").fetchone(), n
                ),
                "SELECT one-row epoch": per_call(
                    lambda i: conn.execute("SELECT n FROM bench_epoch WHERE id = 1").fetchone(), n
                ),
            }
            measured = common.interleaved(runs, size["repetitions"])
            medians = {name: common.median(values) for name, values in measured.items()}
            base = medians["validate() sqlite v2"]
            common.show(
                "SQLite: the session cache's exact check against the lookup it saves "
                "(median, per call)",
                ["call", "us/call", "vs validate() sqlite v2"],
                [
                    [name, common.us(value), common.ratio(value / base)]
                    for name, value in medians.items()
                ],
            )
            hits_seen = cached.session_cache.hits  # type: ignore[union-attr]
            common.note(f"sqlite+cache: {hits_seen:,} hits over the run\n")
            results["medians_s"] = medians
        finally:
            for auth in (locals().get("cached"), locals().get("hit_only")):
                if auth is not None and auth.session_cache is not None:
                    auth.session_cache.close()
            common.drop_bench_store(store)
            memory.close()
    common.write_json(args.json, results)
    return results


if __name__ == "__main__":
    main()
