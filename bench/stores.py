"""Stores at scale: does validation slow down as sessions pile up, and what does a
session cost in each store?

For SQLite, Redis and PostgreSQL, one store holds 1 000 sessions and another 1 000 000
(each session with its own user, as a code-only login leaves them). Validation
(``WaferAuth.validate``, the store's lookup of a session and its user) is timed call by
call on sessions spread over each store, v1 (by session id) and v2 (by skey hash),
interleaving the two stores. Target: the large store's median latency at most 1.5 times
the small one's. Bytes per session: what the large store takes over the empty one
(SQLite pages in use, PostgreSQL's ``pg_total_relation_size``, Redis ``MEMORY USAGE``),
divided by its sessions.

    python -m bench.stores [--smoke] [--stores sqlite,redis,postgres] [--large 1000000]
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import backends, common
from bench.apps import make_auth
from wafer_py.auth import Credentials, WaferAuth
from wafer_py.stores import SessionStore

TARGET = 1.5
SCALE_STORES = ("sqlite", "redis", "postgres")


def sizes(smoke: bool) -> dict[str, int]:
    if smoke:
        return {"small": 1_000, "large": 5_000, "probes": 50, "calls": 50, "repetitions": 2}
    return {"small": 1_000, "large": 1_000_000, "probes": 1_000, "calls": 500, "repetitions": 15}


def timed_calls(auth: WaferAuth, credentials: list[Credentials], count: int) -> list[float]:
    """The duration of each of ``count`` validations, over random ``credentials``."""
    picks = random.choices(credentials, k=count)
    found = []
    for who in picks:
        started = time.perf_counter()
        auth.validate(who)
        found.append(time.perf_counter() - started)
    return found


def measure_store(
    name: str, args: argparse.Namespace, size: dict[str, int], workdir: Path, tag: str
) -> dict[str, Any]:
    urls = common.store_urls(args)
    stores: dict[str, SessionStore] = {}
    try:
        found: dict[str, Any] = {}
        credentials: dict[str, dict[str, list[Credentials]]] = {}
        for label in ("small", "large"):
            store = common.open_bench_store(name, f"{tag}_scale_{label}_{name}", workdir, urls)
            stores[label] = store
            empty = backends.store_bytes(store) or 0
            server_before = backends.server_memory(store)
            started = time.perf_counter()
            common.note(f"{name}: storing {size[label]:,} sessions...")
            probes = common.fill(
                store, size[label], probes=size["probes"], progress=size[label] >= 200_000
            )
            fill_s = time.perf_counter() - started
            server_after = backends.server_memory(store)
            used = (backends.store_bytes(store) or 0) - empty
            found[label] = {
                "sessions": size[label],
                "fill_s": fill_s,
                "bytes": used,
                "bytes_per_session": used / size[label],
            }
            if server_before is not None and server_after is not None:
                # The whole server's memory grew by this (others' keys too, if any).
                found[label]["server_bytes_per_session"] = (server_after - server_before) / size[
                    label
                ]
            credentials[label] = {
                "v1": [Credentials(skey=p.skey, session_id=p.session_id) for p in probes],
                "v2": [Credentials(skey=p.skey) for p in probes],
            }
        auths = {label: make_auth(store) for label, store in stores.items()}
        calls: dict[str, list[float]] = {}
        runs: dict[str, Callable[[], float]] = {}
        for label, auth in auths.items():
            for generation, creds in credentials[label].items():
                key = f"{label} {generation}"
                calls[key] = []
                runs[key] = _run(auth, creds, size["calls"], calls[key])
        common.interleaved(runs, size["repetitions"])
        for key, values in calls.items():
            label, generation = key.split()
            found[label][generation] = {
                "median_s": common.median(values),
                "p99_s": common.percentile(values, 0.99),
                "calls": len(values),
            }
        return found
    finally:
        for store in stores.values():
            common.drop_bench_store(store)


def _run(
    auth: WaferAuth, credentials: list[Credentials], count: int, into: list[float]
) -> Callable[[], float]:
    def run() -> float:
        values = timed_calls(auth, credentials, count)
        into.extend(values)
        return common.median(values)

    return run


def report(results: dict[str, dict[str, Any]], size: dict[str, int]) -> dict[str, Any]:
    small, large = size["small"], size["large"]
    rows = []
    figures: dict[str, Any] = {}
    for name, found in results.items():
        figures[name] = {"small": found["small"], "large": found["large"]}
        for generation in ("v1", "v2"):
            a = found["small"][generation]
            b = found["large"][generation]
            share = b["median_s"] / a["median_s"]
            ok = share <= TARGET
            figures[name][f"ratio_{generation}"] = share
            figures[name][f"target_met_{generation}"] = ok
            rows.append(
                [
                    f"{name} {generation}",
                    common.us(a["median_s"]),
                    common.us(b["median_s"]),
                    common.ratio(share),
                    common.verdict(ok),
                    common.us(a["p99_s"]),
                    common.us(b["p99_s"]),
                ]
            )
    common.show(
        f"Validation latency, {small:,} vs {large:,} sessions stored "
        "(median and p99 of single calls, microseconds)",
        [
            "store",
            f"median {small:,}",
            f"median {large:,}",
            "ratio",
            "<= 1.5",
            f"p99 {small:,}",
            f"p99 {large:,}",
        ],
        rows,
    )
    rows = []
    for name, found in results.items():
        server = found["large"].get("server_bytes_per_session")
        rows.append(
            [
                name,
                f"{found['large']['bytes_per_session']:,.0f}",
                "-" if server is None else f"{server:,.0f}",
                f"{found['large']['bytes'] / 1e6:,.1f}",
                f"{found['large']['fill_s']:.1f}",
            ]
        )
    common.show(
        f"Bytes per session ({large:,} sessions, each with its user, indexes included)",
        ["store", "bytes/session", "Redis used_memory", "total MB", "fill s"],
        rows,
    )
    return figures


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = common.parser(__doc__)
    parser.set_defaults(stores=",".join(SCALE_STORES))
    parser.add_argument("--large", type=int, help="sessions in the large store (1 000 000)")
    args = parser.parse_args(argv)
    size = sizes(args.smoke)
    if args.large is not None:
        size["large"] = args.large
    stores = [s for s in common.chosen_stores(args) if s in SCALE_STORES]
    tag = common.run_tag()
    found: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="wafer-bench-") as tmp:
        for name in stores:
            found[name] = measure_store(name, args, size, Path(tmp), tag)
    results = {"sizes": size, "machine": common.machine(), "stores": report(found, size)}
    common.write_json(args.json, results)
    return results


if __name__ == "__main__":
    main()
