"""What Prometheus metrics cost a validated request: the same session check with and
without ``metrics="prometheus"``, side by side in one run.

    python -m bench.metrics_cost [--smoke] [--stores memory,sqlite,redis,postgres]

Each store is measured twice, on two store objects over the same sessions (an observer
is handed to the store, so the two auths cannot share one): one auth without an
observer, one with a :class:`~wafer_py.metrics.PrometheusObserver` in a registry of its
own (a validation counter and a store-call histogram move on every request). Two ways:
the Starlette middleware in process (a bare app for reference), and
:meth:`WaferProtocol.check <wafer_py.protocol.WaferProtocol.check>` alone, the hot path
with nothing around it. Batches are interleaved as in :mod:`bench.compare`; each table
gives the time per request, what metrics add, and the ratio of the two.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import common
from bench.apps import BASE_HEADERS, make_auth, starlette_stack
from bench.compare import wafer_stack
from bench.overhead import _asgi_run, asgi_answer, asgi_scope, sizes
from wafer_py import WaferAuth
from wafer_py.asgi import WaferMiddleware
from wafer_py.protocol import WaferProtocol
from wafer_py.stores import SessionStore, open_store

TITLE = "Metrics on the validation path, starlette in process"
CORE_TITLE = "Metrics on the validation path, WaferProtocol.check alone"
PLAIN, METERED = "without metrics", "with prometheus"


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


def _check_run(auth: WaferAuth, probes: list[common.Probe], count: int) -> Callable[[], float]:
    """Seconds per :meth:`WaferProtocol.check` of a valid v2 session (blocking)."""
    protocol = WaferProtocol(auth)
    headers = [{"x-wx-skey": p.skey} for p in probes]
    k = len(headers)

    def run() -> float:
        started = time.perf_counter()
        for i in range(count):
            protocol.check("/w/hello", headers[i % k])
        return (time.perf_counter() - started) / count

    return run


def _rows(medians: dict[str, float], base: float | None) -> tuple[list[list[str]], dict[str, Any]]:
    """Table rows and figures: each variant's time, its overhead over ``base`` (if any),
    and for a metered one what metrics add and the ratio to the unmetered one."""
    rows, figures = [], {}
    for label, seconds in medians.items():
        row: dict[str, Any] = {"s_per_request": seconds}
        cost = ratio = ""
        own = seconds if base is None else seconds - base
        if base is not None:
            row["overhead_s"] = own
        if label.endswith(METERED):
            plain = medians[label.replace(METERED, PLAIN)]
            plain_own = plain if base is None else plain - base
            row["metrics_s"] = seconds - plain
            cost = common.us(row["metrics_s"])
            if plain_own > 0:
                row["vs_no_metrics"] = own / plain_own
                ratio = common.ratio(row["vs_no_metrics"])
        figures[label] = row
        cells = [label, common.us(seconds)]
        if base is not None:
            cells.append(common.us(own))
        rows.append([*cells, cost, ratio])
    return rows, figures


def main(argv: list[str] | None = None) -> dict[str, Any]:
    from prometheus_client import CollectorRegistry

    from wafer_py.metrics import PrometheusObserver

    args = common.parser(__doc__).parse_args(argv)
    stores = common.chosen_stores(args)
    size = sizes(args.smoke)
    count, reps = size["requests"], size["repetitions"]
    tag = common.run_tag()
    bare = [asgi_scope("/bare/hello", BASE_HEADERS)]
    apps: dict[str, tuple[Any, list[dict[str, Any]], str]] = {
        "bare app": (starlette_stack("bare", None), bare, "")
    }
    checks: dict[str, Callable[[], float]] = {}
    opened: list[tuple[SessionStore, SessionStore]] = []
    with tempfile.TemporaryDirectory(prefix="wafer-metrics-") as tmp:
        try:
            for name in stores:
                (plain_store, probes), (metered_store, metered_probes) = _two_stores(
                    name, Path(tmp), tag, common.store_urls(args), size
                )
                opened.append((plain_store, metered_store))
                plain = make_auth(plain_store)
                observer = PrometheusObserver(CollectorRegistry())
                metered = WaferAuth(plain.config, store=metered_store, observer=observer)
                for variant, auth, found in (
                    (PLAIN, plain, probes),
                    (METERED, metered, metered_probes),
                ):
                    scopes = [
                        asgi_scope("/w/hello", {**BASE_HEADERS, "X-WX-Skey": p.skey}) for p in found
                    ]
                    app = wafer_stack(WaferMiddleware, auth)
                    apps[f"{name} {variant}"] = (app, scopes, found[-1].openid)
                    checks[f"{name} {variant}"] = _check_run(auth, found, count)
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
                measured_checks = common.interleaved(checks, reps) if checks else {}
            finally:
                loop.close()
        finally:
            for plain_store, metered_store in opened:
                metered_store.close()
                common.drop_bench_store(plain_store)  # the keys or tables of both
    medians = {label: common.median(values) for label, values in measured.items()}
    rows, figures = _rows(medians, medians["bare app"])
    common.show(
        f"{TITLE} (median of {reps} interleaved batches of {count})",
        ["variant", "us/request", "overhead us", "metrics us", "overhead ratio"],
        rows,
    )
    results: dict[str, Any] = {
        "sizes": size,
        "machine": common.machine(),
        "variants": figures,
    }
    if measured_checks:
        core = {label: common.median(values) for label, values in measured_checks.items()}
        core_rows, results["check_alone"] = _rows(core, None)
        common.show(
            f"{CORE_TITLE} (median of {reps} interleaved batches of {count})",
            ["variant", "us/check", "metrics us", "ratio"],
            core_rows,
        )
    common.write_json(args.json, results)
    return results


if __name__ == "__main__":
    main()
