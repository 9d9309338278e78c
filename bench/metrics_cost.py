"""What Prometheus metrics cost a validated request: the Starlette middleware validating a
v2 session with and without ``metrics="prometheus"``, side by side in one run.

    python -m bench.metrics_cost [--smoke] [--stores memory,sqlite,redis,postgres]

Each store is measured twice, on two store objects over the same sessions (an observer
is handed to the store, so the two auths cannot share one): one auth without an
observer, one with a :class:`~wafer_py.metrics.PrometheusObserver` in a registry of its
own (a validation counter and a store-call histogram move on every request). Batches are
interleaved as in :mod:`bench.compare`; the table gives each variant's time per request,
its overhead over the bare app, and the ratio of the metered overhead to the plain one.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any

from bench import common
from bench.apps import BASE_HEADERS, make_auth, starlette_stack
from bench.compare import wafer_stack
from bench.overhead import _asgi_run, asgi_answer, asgi_scope, sizes
from wafer_py import WaferAuth
from wafer_py.asgi import WaferMiddleware
from wafer_py.stores import SessionStore, open_store

TITLE = "Metrics on the validation path, starlette in process"


def _two_stores(
    name: str, workdir: Path, tag: str, urls: dict[str, str], size: dict[str, int]
) -> list[tuple[SessionStore, list[common.Probe]]]:
    """Two store objects and their probes: two opened over the same data, or for the
    memory store (which cannot be opened twice) two filled alike."""
    first = common.open_bench_store(name, tag, workdir, urls)
    probes = common.fill(first, size["sessions"], probes=size["probes"])
    if name == "memory":
        second = open_store("memory://")
        return [
            (first, probes),
            (second, common.fill(second, size["sessions"], probes=size["probes"])),
        ]
    second = common.open_bench_store(name, tag, workdir, urls, fresh=False)
    return [(first, probes), (second, probes)]


def main(argv: list[str] | None = None) -> dict[str, Any]:
    from prometheus_client import CollectorRegistry

    from wafer_py.metrics import PrometheusObserver

    parser = common.parser(__doc__)
    args = parser.parse_args(argv)
    stores = common.chosen_stores(args)
    size = sizes(args.smoke)
    count, reps = size["requests"], size["repetitions"]
    tag = common.run_tag()
    apps: dict[str, tuple[Any, list[dict[str, Any]], str]] = {}
    apps["bare app"] = (
        starlette_stack("bare", None),
        [asgi_scope("/bare/hello", BASE_HEADERS)],
        "",
    )
    closing: list[SessionStore] = []
    with tempfile.TemporaryDirectory(prefix="wafer-metrics-") as tmp:
        for name in stores:
            (plain_store, probes), (metered_store, metered_probes) = _two_stores(
                name, Path(tmp), tag, common.store_urls(args), size
            )
            closing += [metered_store, plain_store]
            plain = make_auth(plain_store)
            observer = PrometheusObserver(CollectorRegistry())
            metered = WaferAuth(plain.config, store=metered_store, observer=observer)
            for label, auth, found in (
                (f"{name} without metrics", plain, probes),
                (f"{name} with prometheus", metered, metered_probes),
            ):
                scopes = [
                    asgi_scope("/w/hello", {**BASE_HEADERS, "X-WX-Skey": p.skey}) for p in found
                ]
                apps[label] = (wafer_stack(WaferMiddleware, auth), scopes, found[-1].openid)
        loop = asyncio.new_event_loop()
        try:
            for label, (app, scopes, expected) in apps.items():
                status, body = loop.run_until_complete(asgi_answer(app, scopes[-1]))
                if status != 200 or (expected and expected.encode() not in body):
                    raise RuntimeError(f"{label}: HTTP {status}: {body[:80]!r}")
            runs = {
                label: _asgi_run(loop, app, scopes, count)
                for label, (app, scopes, _) in apps.items()
            }
            measured = common.interleaved(runs, reps)
        finally:
            loop.close()
            for store in closing[0::2]:
                store.close()
            for store in closing[1::2]:  # each first store drops the keys or tables
                common.drop_bench_store(store)
    medians = {label: common.median(values) for label, values in measured.items()}
    bare = medians["bare app"]
    rows, figures = [], {}
    for label, seconds in medians.items():
        overhead = seconds - bare
        row: dict[str, Any] = {"s_per_request": seconds, "overhead_s": overhead}
        ratio = ""
        if label.endswith("with prometheus"):
            plain_s = medians[label.replace("with prometheus", "without metrics")]
            plain_overhead = plain_s - bare
            row["metrics_s"] = seconds - plain_s
            if plain_overhead > 0:
                row["vs_no_metrics"] = overhead / plain_overhead
                ratio = common.ratio(row["vs_no_metrics"])
        figures[label] = row
        extra = common.us(row["metrics_s"]) if "metrics_s" in row else ""
        rows.append([label, common.us(seconds), common.us(overhead), extra, ratio])
    common.show(
        f"{TITLE} (median of {reps} interleaved batches of {count})",
        ["variant", "us/request", "overhead us", "metrics us", "overhead ratio"],
        rows,
    )
    results = {"sizes": size, "machine": common.machine(), "variants": figures}
    common.write_json(args.json, results)
    return results


if __name__ == "__main__":
    main()
