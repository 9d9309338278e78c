"""Per-request overhead, in process: what validating a session adds to each request.

Drives each app directly (ASGI: a scope and two callables; WSGI: an environ and
``start_response``; no network) and compares, in one run:

* the bare app (zero overhead, the limit);
* the framework's signed-cookie session (Starlette's ``SessionMiddleware``, Flask's
  ``session``: one itsdangerous signature check per request);
* wafer_py validating v1 (``X-WX-Id`` + ``X-WX-Skey``) and v2 (``X-WX-Skey``) sessions
  with the memory, SQLite, Redis and PostgreSQL stores, each holding 100 000 sessions.

Overhead is a variant's time per request minus the bare app's. Targets: wafer_py's
overhead with the memory and SQLite stores at most half the signed cookie's; with Redis
and PostgreSQL at most one loopback round trip (measured here with the same driver) plus
the memory store's overhead; with the session cache (issue #17), "sqlite+cache" at most
half the cookie's and "redis+cache", "postgres+cache" at most twice the memory store's
("memory+cache" is the cache's hit path alone, on a memory store driven by the tests'
channel). A second table splits wafer_py's cost into its parts: ``WaferAuth.validate``
alone, the hop to a worker thread (the ASGI middleware's way to call a blocking store)
and one round trip to each server.

    python -m bench.overhead [--smoke] [--stores memory,sqlite,redis,redis+cache,...]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import common
from bench.apps import Suite, Variant, build_suite
from wafer_py.auth import Credentials

#: Targets: the overhead ratio to the signed cookie's, for these stores.
LOCAL_TARGET = 0.5
#: With the session cache: the overhead ratio to the memory store's.
CACHE_TARGET = 2.0


def sizes(smoke: bool) -> dict[str, int]:
    if smoke:
        return {"sessions": 2_000, "probes": 50, "requests": 50, "repetitions": 2}
    return {"sessions": 100_000, "probes": 1_000, "requests": 2_000, "repetitions": 15}


# -------------------------------------------------------------------------- ASGI


def asgi_scope(path: str, headers: dict[str, str]) -> dict[str, Any]:
    """A GET request's scope, as uvicorn builds it."""
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }


_REQUEST = {"type": "http.request", "body": b"", "more_body": False}


async def _receive() -> dict[str, Any]:
    return _REQUEST


async def _discard(message: dict[str, Any]) -> None:
    return None


async def asgi_batch(app: Any, scopes: list[dict[str, Any]], count: int) -> float:
    """Seconds per request over ``count`` requests, cycling through ``scopes``."""
    k = len(scopes)
    started = time.perf_counter()
    for i in range(count):
        await app(dict(scopes[i % k]), _receive, _discard)
    return (time.perf_counter() - started) / count


async def asgi_answer(app: Any, scope: dict[str, Any]) -> tuple[int, bytes]:
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(dict(scope), _receive, send)
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, body


# -------------------------------------------------------------------------- WSGI


def wsgi_environ(path: str, headers: dict[str, str]) -> dict[str, Any]:
    from werkzeug.test import EnvironBuilder

    environ: dict[str, Any] = EnvironBuilder(path=path, headers=list(headers.items())).get_environ()
    environ["wsgi.input"] = io.BytesIO(b"")
    return environ


def _start_response(status: str, headers: Any, exc_info: Any = None) -> Callable[[bytes], None]:
    return _write


def _write(data: bytes) -> None:
    return None


def wsgi_batch(app: Any, environs: list[dict[str, Any]], count: int) -> float:
    k = len(environs)
    started = time.perf_counter()
    for i in range(count):
        result = app(dict(environs[i % k]), _start_response)
        for _ in result:
            pass
        close = getattr(result, "close", None)
        if close is not None:
            close()
    return (time.perf_counter() - started) / count


def wsgi_answer(app: Any, environ: dict[str, Any]) -> tuple[int, bytes]:
    found: list[str] = []

    def start_response(status: str, headers: Any, exc_info: Any = None) -> Any:
        found.append(status)
        return _write

    result = app(dict(environ), start_response)
    body = b"".join(result)
    close = getattr(result, "close", None)
    if close is not None:
        close()
    return int(found[0].split()[0]), body


# ------------------------------------------------------------------------- parts


def validate_batch(suite: Suite, variant: Variant, count: int) -> float:
    """``WaferAuth.validate`` alone, per call."""
    assert variant.store is not None
    auth = suite.auths[variant.store]
    credentials = []
    for headers in variant.requests:
        session_id = headers.get("X-WX-Id")
        credentials.append(Credentials(skey=headers["X-WX-Skey"], session_id=session_id))
    k = len(credentials)
    started = time.perf_counter()
    for i in range(count):
        auth.validate(credentials[i % k])
    return (time.perf_counter() - started) / count


async def hop_batch(count: int) -> float:
    """One call of a no-op in a worker thread, as the ASGI middleware calls a blocking store."""
    import anyio.to_thread
    from anyio import CapacityLimiter

    limiter = CapacityLimiter(64)

    def noop() -> None:
        return None

    started = time.perf_counter()
    for _ in range(count):
        await anyio.to_thread.run_sync(noop, limiter=limiter)
    return (time.perf_counter() - started) / count


class RoundTrips:
    """One loopback round trip to each server, with the drivers the stores use: Redis
    ``PING`` (sync and asyncio clients), PostgreSQL ``SELECT 1`` (psycopg's sync and
    asyncio connections)."""

    def __init__(self, stores: list[str], urls: dict[str, str]) -> None:
        self.runs: dict[str, Callable[[int], float]] = {}
        self.aruns: dict[str, Callable[[int], Any]] = {}
        self._closers: list[Callable[[], Any]] = []
        if "redis" in stores:
            import redis
            import redis.asyncio

            client = redis.Redis.from_url(urls["redis"])
            aclient = redis.asyncio.Redis.from_url(urls["redis"])
            self._closers += [client.close, aclient.aclose]
            self.runs["redis"] = lambda n: _timed(n, client.ping)
            self.aruns["redis"] = lambda n: _atimed(n, aclient.ping)
        if "postgres" in stores:
            import psycopg

            conn = psycopg.connect(urls["postgres"], autocommit=True)
            self._closers.append(conn.close)

            def select_one() -> None:
                conn.execute("SELECT 1").fetchone()

            held: list[Any] = []  # the asyncio connection, opened on the measuring loop

            async def aselect_one() -> None:
                if not held:
                    url = urls["postgres"]
                    held.append(await psycopg.AsyncConnection.connect(url, autocommit=True))
                    self._closers.append(held[0].close)
                await (await held[0].execute("SELECT 1")).fetchone()

            self.runs["postgres"] = lambda n: _timed(n, select_one)
            self.aruns["postgres"] = lambda n: _atimed(n, aselect_one)

    async def aclose(self) -> None:
        for close in self._closers:
            result = close()
            if asyncio.iscoroutine(result):
                await result


def _timed(count: int, call: Callable[[], object]) -> float:
    started = time.perf_counter()
    for _ in range(count):
        call()
    return (time.perf_counter() - started) / count


async def _atimed(count: int, call: Callable[[], Any]) -> float:
    started = time.perf_counter()
    for _ in range(count):
        await call()
    return (time.perf_counter() - started) / count


# ---------------------------------------------------------------------- reports


def report(
    framework: str,
    medians: dict[str, float],
    variants: list[Variant],
    round_trips: dict[str, float],
) -> dict[str, Any]:
    """Print the overhead table of one framework; return its figures and verdicts."""
    bare = medians["bare app"]
    cookie = medians["signed cookie"] - bare
    rows = []
    figures: dict[str, Any] = {}
    for variant in variants:
        overhead = medians[variant.name] - bare
        target = verdict = ""
        ok: bool | None = None
        memory = medians.get(f"wafer memory {variant.generation}")
        if variant.store in ("memory", "sqlite", "sqlite+cache"):
            target = f"<= {LOCAL_TARGET:.2f}"
            ok = overhead <= LOCAL_TARGET * cookie
        elif variant.store in ("redis+cache", "postgres+cache"):
            if memory is not None:
                target = (
                    f"<= {CACHE_TARGET:.0f}x mem ({common.us(CACHE_TARGET * (memory - bare))} us)"
                )
                ok = overhead <= CACHE_TARGET * (memory - bare)
        elif variant.store is not None and variant.store != "memory+cache":
            trip = round_trips.get(variant.store)
            if memory is not None and trip is not None:
                limit = trip + (memory - bare)
                target = f"<= RTT+mem ({common.us(limit)} us)"
                ok = overhead <= limit
        if ok is not None:
            verdict = common.verdict(ok)
        rows.append(
            [
                variant.name,
                common.us(medians[variant.name]),
                common.us(overhead),
                common.ratio(overhead / cookie) if cookie > 0 else "-",
                target,
                verdict,
            ]
        )
        figures[variant.name] = {
            "per_request_s": medians[variant.name],
            "overhead_s": overhead,
            "overhead_vs_cookie": overhead / cookie if cookie > 0 else None,
            "target_met": ok,
            "store": variant.store,
            "generation": variant.generation,
        }
    common.show(
        f"Per-request overhead, {framework} in process (median of interleaved batches)",
        ["variant", "us/request", "overhead us", "vs cookie", "target", ""],
        rows,
    )
    return figures


def measure_framework(
    framework: str,
    stores: list[str],
    args: argparse.Namespace,
    size: dict[str, int],
    workdir: Path,
    tag: str,
) -> dict[str, Any]:
    suite = build_suite(
        framework,
        stores,
        sessions=size["sessions"],
        probes=size["probes"],
        tag=tag,
        workdir=workdir,
        urls=common.store_urls(args),
    )
    loop = asyncio.new_event_loop()
    trips = RoundTrips([common.base_store(s) for s in stores], common.store_urls(args))
    try:
        count, reps = size["requests"], size["repetitions"]
        runs: dict[str, Callable[[], float]] = {}
        for variant in suite.variants:
            app = suite.apps[variant.stack]
            if framework == "starlette":
                scopes = [asgi_scope(variant.path, h) for h in variant.requests]
                status, body = loop.run_until_complete(asgi_answer(app, scopes[-1]))
                runs[variant.name] = _asgi_run(loop, app, scopes, count)
            else:
                environs = [wsgi_environ(variant.path, h) for h in variant.requests]
                status, body = wsgi_answer(app, environs[-1])
                runs[variant.name] = _wsgi_run(app, environs, count)
            who = json.loads(body).get("who")
            if status != 200 or who != variant.expects[-1]:
                raise RuntimeError(f"{variant.name}: HTTP {status}, who={who!r}")
        # Round trips with the driver each path uses: the asyncio client where the ASGI
        # middleware validates on the event loop (Redis, PostgreSQL), the sync one elsewhere.
        for name, run in trips.runs.items():
            if framework == "starlette" and name in trips.aruns:
                arun = trips.aruns[name]
                runs[f"round trip {name}"] = _loop_run(loop, arun, count)
            else:
                runs[f"round trip {name}"] = _bind(run, count)
        measured = common.interleaved(runs, reps)
        medians = {name: common.median(values) for name, values in measured.items()}
        round_trips = {name: medians[f"round trip {name}"] for name in trips.runs}
        figures = report(framework, medians, suite.variants, round_trips)
        return {"variants": figures, "round_trips_s": round_trips, "samples": measured}
    finally:
        loop.run_until_complete(trips.aclose())
        loop.close()
        suite.close()


def measure_parts(
    stores: list[str], args: argparse.Namespace, size: dict[str, int], workdir: Path, tag: str
) -> dict[str, Any]:
    """validate() alone per store, the thread hop and round trips, in one interleaving."""
    suite = build_suite(
        "starlette",
        stores,
        sessions=size["sessions"],
        probes=size["probes"],
        tag=f"{tag}_parts",
        workdir=workdir,
        urls=common.store_urls(args),
    )
    loop = asyncio.new_event_loop()
    trips = RoundTrips([common.base_store(s) for s in stores], common.store_urls(args))
    try:
        count, reps = size["requests"], size["repetitions"]
        runs: dict[str, Callable[[], float]] = {}
        for variant in suite.variants:
            if variant.store is not None:
                runs[f"validate() {variant.store} {variant.generation}"] = _bind_validate(
                    suite, variant, count
                )
        runs["worker-thread hop (anyio)"] = _loop_run(loop, hop_batch, count)
        for name, run in trips.runs.items():
            runs[f"round trip {name}"] = _bind(run, count)
            if name in trips.aruns:
                runs[f"round trip {name} (asyncio)"] = _loop_run(loop, trips.aruns[name], count)
        measured = common.interleaved(runs, reps)
        medians = {name: common.median(values) for name, values in measured.items()}
        common.show(
            "Parts of wafer_py's cost (median, microseconds per call)",
            ["part", "us/call"],
            [[name, common.us(value)] for name, value in medians.items()],
        )
        return medians
    finally:
        loop.run_until_complete(trips.aclose())
        loop.close()
        suite.close()


def _asgi_run(
    loop: asyncio.AbstractEventLoop, app: Any, scopes: list[dict[str, Any]], count: int
) -> Callable[[], float]:
    return lambda: loop.run_until_complete(asgi_batch(app, scopes, count))


def _wsgi_run(app: Any, environs: list[dict[str, Any]], count: int) -> Callable[[], float]:
    return lambda: wsgi_batch(app, environs, count)


def _loop_run(
    loop: asyncio.AbstractEventLoop, batch: Callable[[int], Any], count: int
) -> Callable[[], float]:
    return lambda: float(loop.run_until_complete(batch(count)))


def _bind(run: Callable[[int], float], count: int) -> Callable[[], float]:
    return lambda: run(count)


def _bind_validate(suite: Suite, variant: Variant, count: int) -> Callable[[], float]:
    return lambda: validate_batch(suite, variant, count)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = common.parser(__doc__, cached=True).parse_args(argv)
    stores = common.chosen_stores(args)
    size = sizes(args.smoke)
    tag = common.run_tag()
    results: dict[str, Any] = {"sizes": size, "stores": stores, "machine": common.machine()}
    common.note(
        f"{size['sessions']:,} sessions in each store; {size['requests']:,} requests a batch, "
        f"{size['repetitions']} interleaved batches a variant\n"
    )
    with tempfile.TemporaryDirectory(prefix="wafer-bench-") as tmp:
        workdir = Path(tmp)
        results["starlette"] = measure_framework("starlette", stores, args, size, workdir, tag)
        results["flask"] = measure_framework("flask", stores, args, size, workdir, tag)
        results["parts"] = measure_parts(stores, args, size, workdir, tag)
    common.write_json(args.json, results)
    return results


if __name__ == "__main__":
    main()
