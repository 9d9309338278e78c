"""Revocation with the session cache on (issue #17): two server processes on one store
(Starlette under uvicorn, Flask under gunicorn), 200 sessions revoked one by one from a
third process (this one: ``WaferAuth.revoke``, and ``wafer-py sessions revoke`` every
tenth). Each is refused by the revoking process at once and, once refused, never
accepted again by any process; the invalidation connections are killed, then the server
restarted, mid-run.

How long each server took to refuse (from the revoke's return to the first 401, one
HTTP round trip included) is measured, printed as one line (``-rP`` shows it), and not
asserted: the figures go to BENCHMARKS.md.

Private servers (:mod:`tests.support.redis_instance`, :mod:`tests.support.pg_instance`):
the test restarts them.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis
import requests

from tests.support.app_process import ROOT, SECRET, AppProcess, app_process
from tests.support.pg_instance import PostgresInstance, require_pg_instance
from tests.support.redis_instance import RedisInstance, require_redis_server
from wafer_py.auth import Credentials, WaferAuth
from wafer_py.config import DEMO_APP_SECRET, DEMO_APPID, WaferConfig
from wafer_py.exceptions import InvalidSession
from wafer_py.fakewechat import FakeWeChat
from wafer_py.stores.invalidation import Invalidation

SESSIONS = 200
KILL_AT, RESTART_AT = 70, 140
#: Seconds a server may take to refuse a revoked session before the test gives up (a
#: deadline for a wait, not a measurement).
REFUSAL_DEADLINE = 30.0


class Server:
    """A store server the test can cut the channels of, and restart."""

    url: str
    #: How many session lookups the server has run so far (for the hit ratio).
    lookups: Callable[[], int]
    kill_channels: Callable[[], int]
    stop: Callable[[], None]
    start: Callable[[], None]


@contextmanager
def _redis(tmp_path: Path) -> Iterator[Server]:
    require_redis_server()
    with RedisInstance(tmp_path / "redis", persist=True) as instance:
        server = Server()
        server.url = instance.url + "?prefix=rv:"

        def kill() -> int:
            admin = redis.Redis(port=instance.port, decode_responses=True)
            try:
                ids = [
                    c["id"]
                    for c in admin.client_list()
                    if c["name"].startswith("wafer-invalidation-")
                ]
                for client_id in ids:
                    admin.client_kill_filter(_id=client_id)
                return len(ids)
            finally:
                admin.close()

        def lookups() -> int:
            with redis.Redis(port=instance.port) as admin:
                stats = admin.info("commandstats")
            return sum(
                int(stats.get(f"cmdstat_{c}", {}).get("calls", 0)) for c in ("evalsha", "eval")
            )

        server.lookups = lookups
        server.kill_channels, server.stop, server.start = kill, instance.stop, instance.start
        yield server


@contextmanager
def _postgres(tmp_path: Path) -> Iterator[Server]:
    require_pg_instance()
    with PostgresInstance() as instance:
        server = Server()
        server.url = instance.url + "?table_prefix=rv_"

        def kill() -> int:
            with psycopg.connect(instance.url, autocommit=True) as conn:
                rows = conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE application_name LIKE 'wafer_py invalidation %'"
                ).fetchall()
            return len(rows)

        # Every statement in the server's log: the validation lookups are counted there
        # (the statistics views lag by up to 10 s).
        with psycopg.connect(instance.url, autocommit=True) as conn:
            conn.execute("ALTER SYSTEM SET log_statement = 'all'")
            conn.execute("SELECT pg_reload_conf()")

        def lookups() -> int:
            text = instance.log.read_text(errors="replace")
            return text.count("FROM rv_sessions s LEFT JOIN")

        server.lookups = lookups
        server.kill_channels, server.stop, server.start = kill, instance.stop, instance.start
        yield server


@pytest.fixture(params=["redis", "postgres"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
    with (_redis if request.param == "redis" else _postgres)(tmp_path) as running:
        yield running


def _status(http: requests.Session, app: AppProcess, skey: str) -> int:
    response = http.get(f"{app.url}/weapp/user", headers={"X-WX-Skey": skey}, timeout=10)
    return response.status_code


def _time_to_refusal(app: AppProcess, skey: str, since: float) -> tuple[float, int]:
    """Poll ``app`` until it refuses ``skey``: seconds from ``since`` to that answer, and
    how many answers accepted it first. Once refused, it stays refused."""
    accepted = 0
    with requests.Session() as http:
        deadline = since + REFUSAL_DEADLINE
        while True:
            status = _status(http, app, skey)
            if status == 401:
                took = time.perf_counter() - since
                break
            assert status in (200, 503), f"{app.url}: unexpected {status}"
            accepted += status == 200
            assert time.perf_counter() < deadline, f"{app.url} still accepts a revoked session"
        for _ in range(3):
            assert _status(http, app, skey) == 401, f"{app.url} accepted a refused session again"
    return took, accepted


def _wait_serving(apps: tuple[AppProcess, ...], skey: str) -> None:
    """After a restart: wait until every app answers for a live session again."""
    deadline = time.monotonic() + 60
    with requests.Session() as http:
        for app in apps:
            while _status(http, app, skey) != 200:
                assert time.monotonic() < deadline, f"{app.url} did not come back"
                time.sleep(0.05)


def _cli_revoke(store_url: str, session_id: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "wafer_py", "sessions", "revoke", "--session", session_id],
        env={**os.environ, "WAFER_STORE_URL": store_url, "WAFER_SECRET_KEY": SECRET},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def test_revocations_reach_every_process(
    server: Server, fake: FakeWeChat, fake_server: Any, tmp_path: Path
) -> None:
    with (
        app_process(
            "starlette",
            store_url=server.url,
            api_base=fake_server.url,
            log_dir=tmp_path,
            WAFER_SESSION_CACHE="10000",
        ) as starlette,
        app_process(
            "flask",
            store_url=server.url,
            api_base=fake_server.url,
            log_dir=tmp_path,
            WAFER_SESSION_CACHE="10000",
        ) as flask,
    ):
        apps = (starlette, flask)
        config = WaferConfig(
            appid=DEMO_APPID,
            app_secret=DEMO_APP_SECRET,
            secret_keys=(SECRET,),
            session_cache=10_000,
        )
        auth = WaferAuth(config, store=server.url)
        try:
            _run(server, apps, auth, fake)
        finally:
            auth.close()


def _run(server: Server, apps: tuple[AppProcess, AppProcess], auth: WaferAuth, fake: Any) -> None:
    sessions: list[tuple[str, str]] = []  # (session id, skey)
    with requests.Session() as http:
        for i in range(SESSIONS):
            code = fake.login(DEMO_APPID, f"user{i}")["code"]
            app = apps[i % 2]
            reply = http.get(f"{app.url}/weapp/login", headers={"X-WX-Code": code}, timeout=10)
            assert reply.status_code == 200, reply.text
            data = reply.json()["data"]
            (session,) = auth.store.list_sessions(data["userinfo"]["openId"])
            sessions.append((session.id, data["skey"]))
        # Every process validates every session (and caches it, its channel being live).
        for _, skey in sessions:
            assert all(_status(http, app, skey) == 200 for app in apps)
            auth.validate(Credentials(skey))
        before = server.lookups()
        for _, skey in sessions:
            assert all(_status(http, app, skey) == 200 for app in apps)
        cached_pass = server.lookups() - before  # lookups the store ran for 400 requests
        for _, skey in sessions:
            auth.validate(Credentials(skey))
    assert auth.session_cache is not None and auth.session_cache.hits > 0

    # A channel of this process's own, timestamping what it hears: the delivery itself.
    heard: dict[str, float] = {}
    channel = auth.store.invalidation_channel()
    assert channel is not None

    def change(change: Invalidation) -> None:
        heard.setdefault(change.key, time.perf_counter())

    channel.start(change, lambda live: None)

    latencies: dict[str, list[float]] = {"starlette": [], "flask": []}
    delivery: list[float] = []
    steady: list[float] = []  # refusals away from the kill and the restart
    accepted = killed = 0
    try:
        with ThreadPoolExecutor(2) as pool:
            for i, (session_id, skey) in enumerate(sessions):
                if i == KILL_AT:
                    killed = server.kill_channels()
                if i == RESTART_AT:
                    server.stop()
                    server.start()
                    _wait_serving(apps, skey)
                auth.validate(Credentials(skey))
                by_cli = i % 10 == 5
                heard.pop(session_id, None)  # a touch may have been heard before
                if by_cli:
                    _cli_revoke(server.url, session_id)
                else:
                    assert auth.revoke(session_id)
                    with pytest.raises(InvalidSession):  # the revoking process, at once
                        auth.validate(Credentials(skey))
                since = time.perf_counter()
                waits = [pool.submit(_time_to_refusal, app, skey, since) for app in apps]
                for name, wait in zip(latencies, waits, strict=True):
                    took, first = wait.result()
                    latencies[name].append(took)
                    accepted += first
                    if not any(0 <= i - at < 10 for at in (KILL_AT, RESTART_AT)):
                        steady.append(took)
                if not by_cli and session_id in heard:
                    delivery.append(max(0.0, heard[session_id] - since))
    finally:
        channel.close()
    assert killed >= 4  # both apps' channels, this process's cache's and its own

    # None of them is accepted anywhere, after it all.
    with requests.Session() as http:
        for _, skey in sessions:
            assert all(_status(http, app, skey) == 401 for app in apps)
            with pytest.raises(InvalidSession):
                auth.validate(Credentials(skey))

    def ms(values: list[float]) -> str:
        return (
            f"p50 {_percentile(values, 50) * 1000:.1f} p99 {_percentile(values, 99) * 1000:.1f} "
            f"max {max(values) * 1000:.1f} (n={len(values)})"
        )

    kind = server.url.split(":")[0]
    print(
        f"revocation, {kind}, ms from the revoke's return: channel delivery {ms(delivery)}; "
        f"first 401 over HTTP: starlette {ms(latencies['starlette'])}, "
        f"flask {ms(latencies['flask'])}, away from the kill and restart {ms(steady)}; "
        f"answers that still accepted a revoked session before its refusal: {accepted}; "
        f"store lookups for {2 * SESSIONS} requests on cached sessions: {cached_pass}"
    )
