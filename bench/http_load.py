"""Over HTTP: requests per second of validated requests against the bare app's.

One server process per framework serves every variant of :mod:`bench.apps` (uvicorn
for Starlette, gunicorn's threaded worker for Flask); wrk, on loopback, sends each
variant's requests in turn, interleaved over several rounds. Target: wafer_py's
validated requests per second at least 0.9 of the bare app's.

    python -m bench.http_load [--smoke] [--stores ...] [--connections 16]

Needs ``wrk`` (Debian: ``apt-get install wrk``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench import common
from bench.apps import BASE_HEADERS, Variant, suite_config

TARGET = 0.9
ROOT = Path(__file__).resolve().parent.parent


def sizes(smoke: bool) -> dict[str, Any]:
    if smoke:
        return {"sessions": 2_000, "probes": 10, "seconds": 1, "rounds": 1, "generations": ["v2"]}
    return {
        "sessions": 100_000,
        "probes": 10,
        "seconds": 3,
        "rounds": 5,
        "generations": ["v1", "v2"],
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def server_command(framework: str, port: int, uvicorn: str = "plain") -> list[str]:
    if framework == "starlette":
        return [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "bench.apps:asgi_server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--log-level",
            "warning",
            "--no-access-log",
            *common.UVICORN[uvicorn],
        ]
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        "1",
        "--worker-class",
        "gthread",
        "--threads",
        "4",
        "--log-level",
        "warning",
        "--timeout",
        "120",
        "bench.apps:wsgi_server()",
    ]


@contextmanager
def serve(
    framework: str, config: Path, requests: Path, timeout: float = 300, uvicorn: str = "plain"
) -> Iterator[tuple[str, list[Variant]]]:
    """Start the server of ``framework``; yield its URL and the variants it serves."""
    port = free_port()
    env = {**os.environ, "WAFER_BENCH_SUITE": str(config), "PYTHONPATH": str(ROOT)}
    command = server_command(framework, port, uvicorn)
    process = subprocess.Popen(command, cwd=ROOT, env=env)
    try:
        deadline = time.monotonic() + timeout
        while not requests.exists() or not _accepts(port):
            if process.poll() is not None:
                raise RuntimeError(f"the {framework} server exited with {process.returncode}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the {framework} server did not start in {timeout} s")
            time.sleep(0.05)
        variants = [Variant(**v) for v in json.loads(requests.read_text())]
        yield f"http://127.0.0.1:{port}", variants
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def check(url: str, variant: Variant) -> None:
    """One request: the app must answer 200 and name the session's user."""
    request = urllib.request.Request(url + variant.path, headers=_own_headers(variant))
    with urllib.request.urlopen(request, timeout=10) as response:
        who = json.loads(response.read()).get("who")
        if response.status != 200 or who != variant.expects[0]:
            raise RuntimeError(f"{variant.name}: HTTP {response.status}, who={who!r}")


def _own_headers(variant: Variant) -> dict[str, str]:
    return {k: v for k, v in variant.requests[0].items() if k not in BASE_HEADERS}


_RATE = re.compile(r"Requests/sec:\s+([0-9.]+)")
_BAD = re.compile(r"Non-2xx or 3xx responses:\s+(\d+)")
_ERRORS = re.compile(r"Socket errors:.*")


def wrk(url: str, variant: Variant, seconds: int, connections: int) -> float:
    """Requests per second wrk gets from one variant."""
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency"]
    for name, value in _own_headers(variant).items():
        command += ["-H", f"{name}: {value}"]
    command.append(url + variant.path)
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    bad = _BAD.search(output)
    if bad:
        raise RuntimeError(f"{variant.name}: {bad.group(1)} answers were not 2xx:\n{output}")
    errors = _ERRORS.search(output)
    if errors:
        print(f"note: {variant.name}: {errors.group(0)}", flush=True)
    rate = _RATE.search(output)
    if rate is None:
        raise RuntimeError(f"no Requests/sec in wrk's output:\n{output}")
    return float(rate.group(1))


def measure(
    framework: str,
    stores: list[str],
    args: argparse.Namespace,
    size: dict[str, Any],
    workdir: Path,
    tag: str,
) -> dict[str, Any]:
    config = workdir / f"{framework}.json"
    requests = suite_config(
        config,
        framework=framework,
        stores=stores,
        sessions=size["sessions"],
        probes=size["probes"],
        tag=tag,
        workdir=workdir,
        urls=common.store_urls(args),
    )
    try:
        with serve(framework, config, requests, uvicorn=args.uvicorn) as (url, served):
            variants = [
                v for v in served if v.generation is None or v.generation in size["generations"]
            ]
            for variant in variants:
                check(url, variant)
                if not args.smoke:
                    wrk(url, variant, 1, args.connections)  # warm up
            rates: dict[str, list[float]] = {v.name: [] for v in variants}
            for rnd in range(size["rounds"]):
                shift = rnd % len(variants)
                for variant in variants[shift:] + variants[:shift]:
                    rates[variant.name].append(wrk(url, variant, size["seconds"], args.connections))
    finally:
        _drop(framework, stores, tag, workdir, args)
    return report(framework, variants, rates, args.connections, args.uvicorn)


def _drop(
    framework: str, stores: list[str], tag: str, workdir: Path, args: argparse.Namespace
) -> None:
    """Delete the keys and tables the server process made (it cannot: it was killed)."""
    urls = common.store_urls(args)
    for name in {common.base_store(s) for s in stores}:
        if name in common.SERVER_STORES:
            store = common.open_bench_store(
                name, f"{tag}_{framework}_{name}", workdir, urls, fresh=False
            )
            common.drop_bench_store(store)


def report(
    framework: str,
    variants: list[Variant],
    rates: dict[str, list[float]],
    connections: int,
    uvicorn: str = "plain",
) -> dict[str, Any]:
    medians = {name: common.median(values) for name, values in rates.items()}
    bare = medians["bare app"]
    rows = []
    figures: dict[str, Any] = {}
    for variant in variants:
        rate = medians[variant.name]
        share = rate / bare
        ok = share >= TARGET if variant.store is not None else None
        rows.append(
            [
                variant.name,
                f"{rate:,.0f}",
                common.ratio(share),
                f">= {TARGET}" if ok is not None else "",
                common.verdict(ok) if ok is not None else "",
            ]
        )
        figures[variant.name] = {
            "requests_per_s": rate,
            "vs_bare": share,
            "target_met": ok,
            "store": variant.store,
            "generation": variant.generation,
            "samples": rates[variant.name],
        }
    server = (
        f"uvicorn (1 process; {common.uvicorn_label(uvicorn)})"
        if framework == "starlette"
        else "gunicorn gthread (1x4)"
    )
    common.show(
        f"Over HTTP: {framework} on {server}, wrk -c{connections} on loopback "
        "(median of interleaved rounds)",
        ["variant", "requests/s", "vs bare", "target", ""],
        rows,
    )
    return figures


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = common.parser(__doc__, cached=True)
    parser.add_argument("--connections", type=int, default=16, help="wrk's connections")
    common.add_uvicorn_option(parser)
    parser.add_argument(
        "--frameworks", default="starlette,flask", help="starlette, flask or both (default)"
    )
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (Debian: apt-get install wrk)")
    stores = common.chosen_stores(args)
    size = sizes(args.smoke)
    tag = common.run_tag()
    results: dict[str, Any] = {
        "sizes": size,
        "stores": stores,
        "machine": common.machine(),
        "uvicorn": args.uvicorn,
    }
    common.note(
        f"{size['sessions']:,} sessions in each store; wrk {size['seconds']} s a variant, "
        f"{size['rounds']} interleaved round(s)\n"
    )
    with tempfile.TemporaryDirectory(prefix="wafer-bench-") as tmp:
        for framework in args.frameworks.split(","):
            results[framework] = measure(framework, stores, args, size, Path(tmp), tag)
    common.write_json(args.json, results)
    return results


if __name__ == "__main__":
    main()
