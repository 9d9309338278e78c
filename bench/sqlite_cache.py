"""Could SQLite have a session cache? What an exact check of "nothing changed" costs.

SQLite has no channel to push changes to other processes: a cache in front of it must
ask, on every validation, whether anything changed since it filled, and that question
must be cheaper than the lookup it saves. Measured in one run, per call (median of
interleaved batches), on one store of 100 000 sessions:

* the store's own lookup (``find_login``, v1 by id and v2 by skey hash), and
  ``WaferAuth.validate`` with it;
* the two exact checks SQLite offers: ``PRAGMA data_version`` (changes on any commit by
  another connection: a touch, a login, a cached token) and the read of a one-row
  revocation epoch (a counter the store's revoking and profile writes would bump);
* a cache hit (``WaferAuth.validate`` on the tests' channel store: no I/O at all), and
  so what a cached SQLite validation would cost: a hit plus one check.

Also: how often ``data_version`` moves under ordinary traffic (one touch per session and
minute), which empties a cache keyed on it.

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
from bench.apps import make_auth
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
        cached_store = common.open_bench_store("memory+cache", tag, workdir, {})
        try:
            assert isinstance(store, SQLiteStore)
            probes = common.fill(store, size["sessions"], probes=size["probes"])
            cached_probes = common.fill(cached_store, size["probes"], probes=size["probes"])
            auth = make_auth(store)
            cached = make_auth(cached_store, session_cache=common.CACHE_SIZE)
            v2 = [Credentials(p.skey) for p in probes]
            v1 = [Credentials(p.skey, p.session_id) for p in probes]
            hashes = [[common.BOX.hash_skey(p.skey)] for p in probes]
            ids = [p.session_id for p in probes]
            hits = [Credentials(p.skey) for p in cached_probes]
            for creds in hits:
                cached.validate(creds)  # fill the cache
            conn = store._conn()  # the store's own connection of this thread
            with sqlite3.connect(store.path, isolation_level=None) as setup:
                setup.execute("CREATE TABLE bench_epoch (id INTEGER PRIMARY KEY, n INTEGER)")
                setup.execute("INSERT INTO bench_epoch VALUES (1, 0)")
            n, k = size["calls"], len(probes)
            runs = {
                "find_login v2 (store)": per_call(
                    lambda i: store.find_login(skey_hashes=hashes[i % k]), n
                ),
                "find_login v1 (store)": per_call(
                    lambda i: store.find_login(session_id=ids[i % k]), n
                ),
                "validate() sqlite v2": per_call(lambda i: auth.validate(v2[i % k]), n),
                "validate() sqlite v1": per_call(lambda i: auth.validate(v1[i % k]), n),
                "PRAGMA data_version": per_call(
                    lambda i: conn.execute("PRAGMA data_version").fetchone(), n
                ),
                "SELECT epoch (one row)": per_call(
                    lambda i: conn.execute("SELECT n FROM bench_epoch WHERE id = 1").fetchone(), n
                ),
                "validate() cache hit v2": per_call(lambda i: cached.validate(hits[i % k]), n),
            }
            measured = common.interleaved(runs, size["repetitions"])
            medians = {name: common.median(values) for name, values in measured.items()}
            hit = medians["validate() cache hit v2"]
            plain = medians["validate() sqlite v2"]
            rows = [
                [name, common.us(value), common.ratio(value / plain)]
                for name, value in medians.items()
            ]
            for check in ("PRAGMA data_version", "SELECT epoch (one row)"):
                value = hit + medians[check]
                rows.append([f"= hit + {check}", common.us(value), common.ratio(value / plain)])
            common.show(
                "SQLite: an exact check against the lookup it would save (median, per call)",
                ["call", "us/call", "vs validate() sqlite v2"],
                rows,
            )
            results["medians_s"] = medians
            results["data_version_moves"] = churn(store, conn, probes[0].session_id)
        finally:
            common.drop_bench_store(store)
            cached_store.close()
    common.write_json(args.json, results)
    return results


def churn(store: SQLiteStore, conn: sqlite3.Connection, session_id: str) -> dict[str, Any]:
    """Whether one touch by another connection moves ``data_version`` (so empties a
    cache keyed on it), and what that means at a given traffic."""
    before = conn.execute("PRAGMA data_version").fetchone()[0]
    other = SQLiteStore(store.path)  # another process's connection, in effect
    try:
        now = time.time()
        other.touch_session(session_id, last_seen=now, expires_at=now + common.TTL)
    finally:
        other.close()
    after = conn.execute("PRAGMA data_version").fetchone()[0]
    moved = after != before
    common.note(
        f"A touch by another connection {'moves' if moved else 'does not move'} "
        "PRAGMA data_version: with a touch per active session and minute, 10 000 active "
        "sessions empty a cache keyed on it about 170 times a second.\n"
    )
    return {"touch_moves_data_version": moved}


if __name__ == "__main__":
    main()
