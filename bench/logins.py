"""Logins under load: does one server process keep many logins in flight?

Three processes on loopback: the fake WeChat answering every call after 50 ms (like a
real round trip to WeChat), one uvicorn process serving the Starlette example app with
wafer_py's middleware, and this script as 200 mini-programs. Each client gets its own
code from the fake and logs in (``GET /weapp/login`` with ``X-WX-Code``); the logins are
made one after another, then all at once. Inside the server, a task that sleeps 1 ms in
a loop records how late it wakes: the event loop's lag.

Targets: concurrent logins at least 10 times the throughput of sequential ones, and the
event loop's lag under 10 ms while they are in flight. The server's login queue
(``max_queued_logins``) is set to hold the whole burst, so that no login is refused.

    python -m bench.logins [--smoke] [--stores ...] [--clients 200] [--latency 0.05]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench import common
from bench.http_load import ROOT, free_port
from wafer_py import WaferConfig

THROUGHPUT_TARGET = 10.0
LAG_TARGET = 0.010
#: How often the lag monitor wakes.
TICK = 0.001
#: The server's route for the lag figures (``?reset=1`` starts a new window).
LAG_PATH = "/_bench/lag"


def sizes(smoke: bool) -> dict[str, Any]:
    if smoke:
        return {"clients": 20, "latency": 0.02, "rounds": 1}
    return {"clients": 200, "latency": 0.05, "rounds": 3}


# ------------------------------------------------------------ inside the server


class LagMonitor:
    """Records how late a task that sleeps :data:`TICK` wakes up, on the server's loop,
    and when requests arrive (to tell the lag while they arrive from the lag while
    they are all in flight)."""

    def __init__(self) -> None:
        self.ticks: list[tuple[float, float]] = []  # (when the sleep began, lateness)
        self.arrivals: list[float] = []
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            before = time.perf_counter()  # not loop.time(): uvloop's ticks in milliseconds
            await asyncio.sleep(TICK)
            self.ticks.append((before, max(0.0, time.perf_counter() - before - TICK)))

    def figures(self, reset: bool) -> dict[str, Any]:
        """Lag since the last reset: all of it, and from the last arrival on."""
        ticks, arrivals = self.ticks, self.arrivals
        if reset:
            self.ticks, self.arrivals = [], []
        last = max(arrivals, default=float("-inf"))
        return {
            "samples": len(ticks),
            "arrivals": len(arrivals),
            "arrival_spread_s": (last - min(arrivals)) if arrivals else 0.0,
            **_lag_stats("", [late for _, late in ticks]),
            **_lag_stats("in_flight_", [late for began, late in ticks if began >= last]),
        }


def _lag_stats(prefix: str, values: list[float]) -> dict[str, float]:
    return {
        f"{prefix}max_s": max(values, default=0.0),
        f"{prefix}p99_s": common.percentile(values, 0.99) if values else 0.0,
        f"{prefix}median_s": common.median(values) if values else 0.0,
    }


class _WithLag:
    """The app under test, plus :data:`LAG_PATH` reporting the loop's lag."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.monitor = LagMonitor()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == LAG_PATH:
            self.monitor.start()
            figures = self.monitor.figures(b"reset=1" in scope["query_string"])
            body = json.dumps(figures).encode()
            headers = [(b"content-type", b"application/json")]
            headers.append((b"content-length", str(len(body)).encode()))
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        if scope["type"] == "http":
            self.monitor.arrivals.append(time.perf_counter())
        await self.app(scope, receive, send)


def server_app() -> Any:
    """uvicorn's factory: the Starlette example with an auth for ``$WAFER_BENCH_LOGIN``."""
    from bench.apps import make_auth
    from examples.starlette_app.app import create_app

    config = json.loads(os.environ["WAFER_BENCH_LOGIN"])
    store = common.open_bench_store(
        config["store"], config["tag"], Path(config["workdir"]), config["urls"], fresh=False
    )
    options = {}
    if config.get("max_logins"):
        options["max_concurrent_logins"] = config["max_logins"]
    if hasattr(WaferConfig, "max_queued_logins"):
        # Room in the login queue for the whole burst: the benchmark measures how fast
        # queued logins go through, not how many a full queue refuses.
        options["max_queued_logins"] = max(config["clients"], WaferConfig.max_queued_logins)
    app = create_app(make_auth(store, config["api_base"], **options))
    return _WithLag(app)


def fake_main(latency: float, port_file: Path) -> None:
    """Serve the fake WeChat until killed (its own process: its threads take no CPU
    from the server under test, nor from the clients)."""
    from wafer_py.fakewechat import FakeWeChat

    with FakeWeChat(latency=latency).serve() as server:
        port_file.write_text(server.url)
        threading.Event().wait()


# ------------------------------------------------------------------- the driver


@contextmanager
def process(command: list[str], env: dict[str, str] | None = None) -> Iterator[None]:
    child = subprocess.Popen(command, cwd=ROOT, env={**os.environ, **(env or {})})
    try:
        yield
    finally:
        child.send_signal(signal.SIGTERM)
        try:
            child.wait(20)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
        if child.returncode not in (0, -signal.SIGTERM):
            print(f"note: {command[2]} exited with {child.returncode}", flush=True)


def wait_for(check: Any, what: str, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            found = check()
        except OSError:
            found = None
        if found:
            return found
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not start in {timeout} s")


async def mint_codes(fake_url: str, count: int, prefix: str) -> list[str]:
    """``count`` login codes from the fake's control API, for users of their own."""
    import httpx

    async with httpx.AsyncClient(base_url=fake_url, timeout=30) as client:
        codes = []
        for i in range(count):
            answer = await client.post("/_fake/login", json={"user": f"bench-{prefix}-{i}"})
            answer.raise_for_status()
            codes.append(answer.json()["code"])
        return codes


class Client:
    """One mini-program's keep-alive HTTP/1.1 connection to the server: a few lines of
    asyncio streams, so that 200 of them cost the load generator next to nothing."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, host: str, port: int) -> Client:
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer)

    async def get(self, path: str, headers: dict[str, str]) -> tuple[int, bytes]:
        lines = [f"GET {path} HTTP/1.1", "Host: 127.0.0.1"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        head = await self.reader.readuntil(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        length = 0
        for line in header_lines:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        body = await self.reader.readexactly(length)
        return int(status_line.split()[1]), body

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()


async def login(client: Client, code: str) -> float:
    """One login; its duration in seconds."""
    started = time.perf_counter()
    status, raw = await client.get("/weapp/login", {"X-WX-Code": code})
    elapsed = time.perf_counter() - started
    body = json.loads(raw)
    if status != 200 or body.get("code") != 0 or not body["data"].get("skey"):
        raise RuntimeError(f"login failed: HTTP {status} {body}")
    return elapsed


async def lag(client: Client) -> dict[str, Any]:
    """The lag figures since the last call (which started a new window)."""
    status, raw = await client.get(f"{LAG_PATH}?reset=1", {})
    if status != 200:
        raise RuntimeError(f"{LAG_PATH} answered {status}")
    figures: dict[str, Any] = json.loads(raw)
    return figures


async def health(client: Client, code: str) -> float:
    started = time.perf_counter()
    status, _ = await client.get("/health", {})
    if status != 200:
        raise RuntimeError(f"/health answered {status}")
    return time.perf_counter() - started


async def burst(
    clients: list[Client], codes: list[str], probe: Client, path: str = "/weapp/login"
) -> dict[str, Any]:
    """Every client logs in at once (or asks for ``/health``); the wall time, each
    request's duration and the lag."""
    call = login if path == "/weapp/login" else health
    await asyncio.sleep(0.2)  # the lag window starts quiet
    await lag(probe)
    started = time.perf_counter()
    durations = await asyncio.gather(
        *(call(c, code) for c, code in zip(clients, codes, strict=True))
    )
    wall = time.perf_counter() - started
    return {"wall_s": wall, "durations_s": sorted(durations), "lag": await lag(probe)}


async def drive(port: int, fake_url: str, size: dict[str, Any]) -> dict[str, Any]:
    count = size["clients"]
    rounds = size["rounds"]
    codes = await mint_codes(fake_url, count * (rounds + 2), "run")
    batches = [codes[i * count : (i + 1) * count] for i in range(rounds + 2)]
    probe = await Client.connect("127.0.0.1", port)
    clients = [await Client.connect("127.0.0.1", port) for _ in range(count)]
    await asyncio.gather(*(health(c, "") for c in clients))  # the server has accepted all
    found: dict[str, Any] = {}
    try:
        await lag(probe)  # starts the monitor
        # The first burst opens the server's worker threads and its connections to
        # WeChat: measured apart ("cold"); the bursts after it are the steady state.
        found["cold"] = await burst(clients, batches[0], probe)
        await lag(probe)
        started = time.perf_counter()
        durations = [await login(probe, code) for code in batches[1]]
        found["sequential_s"] = time.perf_counter() - started
        found["sequential_per_login_s"] = common.median(durations)
        found["sequential_lag"] = await lag(probe)
        found["concurrent"] = [await burst(clients, batch, probe) for batch in batches[2:]]
        # The reference: as many requests at once that need no login (``/health``).
        found["health"] = await burst(clients, [""] * count, probe, path="/health")
    finally:
        for client in [probe, *clients]:
            await client.close()
    return found


def measure(
    name: str,
    args: argparse.Namespace,
    size: dict[str, Any],
    workdir: Path,
    tag: str,
) -> dict[str, Any]:
    """One store: a fake WeChat and a server of their own, then :func:`drive`."""
    urls = common.store_urls(args)
    store_tag = f"{tag}_login_{name}"
    # The store starts empty (made here, so that the server opens it as it is).
    common.open_bench_store(name, store_tag, workdir, urls).close()
    port_file = workdir / f"fake-{store_tag}.url"
    fake = [sys.executable, "-m", "bench.logins", "--serve-fake", str(port_file)]
    fake += ["--latency", str(size["latency"])]
    try:
        with process(fake, {"PYTHONPATH": str(ROOT)}):
            fake_url = wait_for(lambda: port_file.exists() and port_file.read_text(), "the fake")
            port = free_port()
            config = {
                "store": name,
                "tag": store_tag,
                "workdir": str(workdir),
                "urls": urls,
                "api_base": fake_url,
                "max_logins": args.max_logins,
                "clients": size["clients"],
            }
            server = [sys.executable, "-m", "uvicorn", "--factory", "bench.logins:server_app"]
            server += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
            # Idle keep-alive connections live on between the phases.
            server += ["--no-access-log", "--timeout-keep-alive", "600"]
            server += common.UVICORN[args.uvicorn]
            env = {"WAFER_BENCH_LOGIN": json.dumps(config), "PYTHONPATH": str(ROOT)}
            with process(server, env):
                url = f"http://127.0.0.1:{port}"
                wait_for(lambda: _answers(url), "the server")
                return asyncio.run(drive(port, fake_url, size))
    finally:
        if name in common.SERVER_STORES:
            common.drop_bench_store(
                common.open_bench_store(name, store_tag, workdir, urls, fresh=False)
            )


def _answers(url: str) -> bool:
    import urllib.request

    with urllib.request.urlopen(url + LAG_PATH, timeout=5) as answer:
        return bool(answer.status == 200)


def summary(found: dict[str, Any], clients: int, sequential_rate: float) -> dict[str, Any]:
    """The figures of one server: throughputs, the loop's lag, the reference's lag."""
    bursts = found["concurrent"]
    rate = clients / common.median([r["wall_s"] for r in bursts])
    speedup = rate / sequential_rate
    lag_max = max(r["lag"]["max_s"] for r in bursts)
    return {
        "sequential_logins_per_s": sequential_rate,
        "concurrent_logins_per_s": rate,
        "cold_logins_per_s": clients / found["cold"]["wall_s"],
        "speedup": speedup,
        "speedup_target_met": speedup >= THROUGHPUT_TARGET,
        "login_p99_s": common.median([common.percentile(r["durations_s"], 0.99) for r in bursts]),
        "lag_max_s": lag_max,
        "lag_p99_s": max(r["lag"]["p99_s"] for r in bursts),
        "lag_in_flight_max_s": max(r["lag"]["in_flight_max_s"] for r in bursts),
        "lag_target_met": lag_max < LAG_TARGET,
        "health_lag_max_s": found["health"]["lag"]["max_s"],
        "raw": found,
    }


def report(
    results: dict[str, dict[str, Any]], size: dict[str, Any], uvicorn: str = "plain"
) -> dict[str, Any]:
    clients = size["clients"]
    figures = {
        name: summary(found, clients, clients / found["sequential_s"])
        for name, found in results.items()
    }
    rows = [
        [
            name,
            f"{f['sequential_logins_per_s']:.1f}",
            f"{f['concurrent_logins_per_s']:.0f}",
            f"{f['speedup']:.1f}x",
            common.verdict(f["speedup_target_met"]),
            common.ms(f["login_p99_s"]),
            common.ms(f["lag_p99_s"]),
            common.ms(f["lag_max_s"]),
            common.verdict(f["lag_target_met"]),
            common.ms(f["lag_in_flight_max_s"]),
            common.ms(f["health_lag_max_s"]),
        ]
        for name, f in figures.items()
    ]
    common.show(
        f"Logins under load: {clients} clients, fake WeChat answering after "
        f"{size['latency'] * 1000:.0f} ms, one uvicorn process "
        f"({common.uvicorn_label(uvicorn)}; median of {size['rounds']} bursts)",
        [
            "store",
            "seq/s",
            "at once/s",
            "speedup",
            ">= 10x",
            "p99 login ms",
            "lag p99 ms",
            "lag max ms",
            "< 10 ms",
            "max after arrivals",
            f"max, {clients} x /health",
        ],
        rows,
    )
    return figures


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = common.parser(__doc__)
    parser.add_argument(
        "--clients",
        type=int,
        help="concurrent logins (default 200); the server's max_queued_logins holds them all",
    )
    parser.add_argument("--latency", type=float, help="WeChat's latency, seconds (0.05)")
    parser.add_argument(
        "--max-logins",
        type=int,
        help="the server's max_concurrent_logins (default: WaferConfig's, 16)",
    )
    common.add_uvicorn_option(parser)
    parser.add_argument("--serve-fake", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_fake is not None:
        fake_main(args.latency, args.serve_fake)
        return {}
    size = sizes(args.smoke)
    if args.clients is not None:
        size["clients"] = args.clients
    if args.latency is not None:
        size["latency"] = args.latency
    stores = common.chosen_stores(args)
    tag = common.run_tag()
    found: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="wafer-bench-") as tmp:
        for name in stores:
            found[name] = measure(name, args, size, Path(tmp), tag)
    results: dict[str, Any] = {
        "sizes": size,
        "machine": common.machine(),
        "uvicorn": args.uvicorn,
        # (None: a wafer_py from before the cap, measured for comparison.)
        "max_logins": args.max_logins or getattr(WaferConfig, "max_concurrent_logins", None),
        "stores": report(found, size, args.uvicorn),
    }
    common.write_json(args.json, results)
    return results


if __name__ == "__main__":
    main()
