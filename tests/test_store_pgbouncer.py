"""The PostgreSQL store through a real PgBouncer in transaction pooling mode.

PgBouncer (Debian's, 1.18) runs on a free port in front of the shared server, with 3
server connections for all its clients: consecutive statements of one client land on
different server connections, and the server connections serve many clients in turn.
With ``?prepare_threshold=none`` in the store URL, or with nothing (the store notices the
pooler and turns psycopg's prepared statements off), all of it works, sync and async,
through the contract suite and two app processes. With prepared statements forced on
(``?prepare_threshold=5``), they go astray: the store answers 503 naming the fix.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests

from tests.support import services
from tests.support.app_process import AppProcess, app_processes
from tests.support.pgbouncer import PgBouncer, require_pgbouncer
from wafer_py.config import DEMO_APPID
from wafer_py.exceptions import StoreUnavailable
from wafer_py.fakewechat import FakeWeChat
from wafer_py.stores import sql_postgres
from wafer_py.stores.sql import SQLStore
from wafer_py.testing import StoreContract, make_session, run_threads

NO_PREPARE = "prepare_threshold=none"
_prefixes: set[str] = set()


def new_prefix() -> str:
    """A table prefix of this run, its tables dropped when the module ends."""
    prefix = f"pgb{secrets.token_hex(4)}_"
    _prefixes.add(prefix)
    return prefix


PREFIX = new_prefix()


@pytest.fixture(scope="module")
def bouncer() -> Iterator[PgBouncer]:
    require_pgbouncer()
    with PgBouncer(pool_size=3) as running:
        yield running
    with psycopg.connect(services.url("postgres"), autocommit=True) as conn:
        for prefix in _prefixes:
            for table in services.TABLES:
                conn.execute(f"DROP TABLE IF EXISTS {prefix}{table}")


@pytest.fixture(scope="module")
def pg_direct() -> str:
    return services.require("postgres")


class TestStoreThroughPgBouncer(StoreContract):
    query = NO_PREPARE

    @pytest.fixture(autouse=True)
    def _bouncer(self, bouncer: PgBouncer) -> None:
        self.url = bouncer.url(self.query)

    def make_store(self) -> SQLStore:
        return SQLStore(self.url, table_prefix=PREFIX)


class TestStoreThroughPgBouncerNoticed(TestStoreThroughPgBouncer):
    """No option: the store notices the pooler."""

    query = ""


def test_the_store_notices_the_pooler(
    bouncer: PgBouncer, pg_direct: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Through the bouncer, without the option, prepared statements are off on the
    threaded pool's and the event loop's connections (said once in the log); straight
    to the server, or with the option given, psycopg's setting is what it was."""

    def thresholds(url: str) -> tuple[int | None, int | None]:
        with SQLStore(url, table_prefix=PREFIX) as store:
            with store._cursor() as cur:
                sync = cur.connection.prepare_threshold

            async def main() -> int | None:
                assert await store.afind_login(session_id="nope") is None
                assert store._async_pools is not None
                pool = await store._async_pools.get()
                return pool._idle[0][0].prepare_threshold  # type: ignore[no-any-return]

            return sync, asyncio.run(main())

    sql_postgres._say_pooler.cache_clear()  # said once a process: earlier tests did
    with caplog.at_level(logging.INFO, logger="wafer_py"):
        assert thresholds(bouncer.url()) == (None, None)
        assert thresholds(bouncer.url()) == (None, None)
    said = [r for r in caplog.records if "is a connection pooler" in r.getMessage()]
    assert len(said) == 1 and f"127.0.0.1:{bouncer.port}" in said[0].getMessage()
    assert thresholds(bouncer.url("prepare_threshold=3")) == (3, 3)
    assert thresholds(pg_direct) == (5, 5)  # psycopg's default


def test_own_connections_through_a_pooler_are_warned_about(
    bouncer: PgBouncer, caplog: pytest.LogCaptureFixture
) -> None:
    """connect= connections keep the operator's settings; prepared statements on behind
    a pooler are worth a warning, once."""
    url = bouncer.url()
    sql_postgres._warn_own_connections.cache_clear()
    with SQLStore(
        "postgresql://", connect=lambda: psycopg.connect(url), table_prefix=PREFIX
    ) as store:
        assert store.get_user("o-nobody") is None
    warned = [r for r in caplog.records if "prepare_threshold=None" in r.getMessage()]
    assert len(warned) == 1 and warned[0].levelname == "WARNING"
    caplog.clear()
    with SQLStore(
        "postgresql://",
        connect=lambda: psycopg.connect(url, prepare_threshold=None),
        table_prefix=PREFIX,
    ) as store:
        assert store.get_user("o-nobody") is None
    assert caplog.records == []


def _server_connections(bouncer: PgBouncer) -> int:
    return sum(1 for server in bouncer.show("SERVERS") if server["database"] == "test")


def test_many_clients_share_three_server_connections(bouncer: PgBouncer) -> None:
    """24 threads, 12 store connections, 3 server connections: every login, lookup and
    touch succeeds, and the bouncer never opened more than its 3."""
    with SQLStore(bouncer.url(NO_PREPARE), table_prefix=PREFIX, max_connections=12) as store:
        errors: list[BaseException] = []

        def work(i: int) -> None:
            try:
                for n in range(10):
                    openid = f"o-pgb-{i}-{n}-" + secrets.token_hex(3)
                    store.ensure_user(openid, unionid=None, profile={"n": n}, now=1.0)
                    session, _ = make_session(openid)
                    store.create_session(session)
                    for _ in range(3):
                        found = store.find_login(skey_hashes=[session.skey_hash])
                        assert found is not None and found[0].id == session.id
                        store.touch_session(session.id, last_seen=2.0, expires_at=9e9)
            except BaseException as exc:  # reported below, with the others
                errors.append(exc)

        run_threads(work, 24)
        assert errors == []
        clients = [c for c in bouncer.show("CLIENTS") if c["database"] == "test"]
        assert len(clients) >= 12  # the store's connections, idle in the pool now
        assert 1 <= _server_connections(bouncer) <= 3


@pytest.mark.parametrize("query", [NO_PREPARE, ""])
def test_async_validation_through_pgbouncer(bouncer: PgBouncer, query: str) -> None:
    """Validation on the event loop (psycopg async connections), the option given or
    the pooler noticed: 60 lookups and touches at once, each lookup run 6 times (more
    than psycopg's default threshold of 5), all right."""
    with SQLStore(bouncer.url(query), table_prefix=PREFIX, max_connections=6) as store:
        assert store.supports_async
        sessions = []
        for i in range(30):
            openid = f"o-pgb-aio-{i}-" + secrets.token_hex(3)
            store.ensure_user(openid, unionid=None, profile={}, now=1.0)
            session, _ = make_session(openid)
            store.create_session(session)
            sessions.append(session)

        async def main() -> list[Any]:
            found = []
            for _ in range(6):
                found = await asyncio.gather(
                    *(store.afind_login(skey_hashes=[s.skey_hash]) for s in sessions),
                    *(store.afind_login(session_id=s.id) for s in sessions),
                )
                await asyncio.gather(
                    *(store.atouch_session(s.id, last_seen=7.0, expires_at=9e9) for s in sessions)
                )
            return list(found)

        found = asyncio.run(main())
        assert [f[0].id for f in found] == [s.id for s in sessions] * 2
        again = store.find_login(session_id=sessions[0].id)
        assert again is not None and again[0].last_seen == 7.0


def test_prepared_statements_forced_on_answer_503_with_the_hint(bouncer: PgBouncer) -> None:
    """psycopg prepares a query on its 6th run, as ``_pg3_0`` on the server connection
    it runs on. Two stores taking turns get the same server connection (the bouncer
    reuses the last one used): the second's prepare collides with the first's. With
    ``?prepare_threshold=5`` that is StoreUnavailable (503) naming the fix; with the
    option ``none``, or none at all (the pooler noticed), the same turns all succeed."""
    openid = "o-pgb-prepared-" + secrets.token_hex(3)
    with SQLStore(bouncer.url(NO_PREPARE), table_prefix=PREFIX) as setup:
        setup.ensure_user(openid, unionid=None, profile={}, now=1.0)
    for query, expect_failure in (("prepare_threshold=5", True), (NO_PREPARE, False), ("", False)):
        first = SQLStore(bouncer.url(query), table_prefix=PREFIX, max_connections=1)
        second = SQLStore(bouncer.url(query), table_prefix=PREFIX, max_connections=1)
        failures: list[StoreUnavailable] = []
        try:
            for store in (first, second, first, second):
                for _ in range(8):
                    try:
                        user = store.get_user(openid)
                    except StoreUnavailable as exc:
                        failures.append(exc)
                    else:
                        assert user is not None and user.openid == openid
        finally:
            first.close()
            second.close()
        if not expect_failure:
            assert failures == [], query
            continue
        assert failures, "psycopg's prepared statements worked behind the bouncer"
        for failure in failures:
            assert "prepared statement" in failure.detail
            assert "?prepare_threshold=none" in failure.detail


def test_an_option_pgbouncer_cannot_pass_on_stops_the_store_at_start(bouncer: PgBouncer) -> None:
    """libpq's ``options`` (``-c statement_timeout=...``) is a startup parameter
    PgBouncer 1.18 refuses: the store does not start, and says what to do instead."""
    url = bouncer.url(f"{NO_PREPARE}&options=-c%20statement_timeout%3D5000")
    with pytest.raises(StoreUnavailable) as caught:
        SQLStore(url, table_prefix=PREFIX)
    assert "unsupported startup parameter: options" in caught.value.detail
    assert "ALTER ROLE" in caught.value.detail


# -- two app processes through the bouncer ----------------------------------------
@pytest.fixture(params=[NO_PREPARE, ""], ids=["prepare_threshold=none", "noticed"])
def apps(
    request: pytest.FixtureRequest, bouncer: PgBouncer, fake_server: Any, tmp_path: Path
) -> Iterator[tuple[AppProcess, AppProcess]]:
    query = "&".join(q for q in (request.param, f"table_prefix={new_prefix()}") if q)
    url = bouncer.url(query)
    with app_processes(
        ["starlette", "flask"], store_url=url, api_base=fake_server.url, log_dir=tmp_path
    ) as (a, b):
        yield a, b


def test_200_logins_and_validations_on_both_frameworks(
    apps: tuple[AppProcess, AppProcess], fake: FakeWeChat, bouncer: PgBouncer
) -> None:
    """200 logins at once (half on Starlette under uvicorn, half on Flask under
    gunicorn), then each session validated on the other process, 200 at once: all
    answered 200, no prepared-statement error in either log."""
    a, b = apps
    codes = [(a if i % 2 else b, fake.login(DEMO_APPID, f"user{i}")["code"]) for i in range(200)]

    def log_in(job: tuple[AppProcess, str]) -> tuple[AppProcess, requests.Response]:
        app, code = job
        response = requests.get(f"{app.url}/weapp/login", headers={"X-WX-Code": code}, timeout=60)
        return app, response

    def validate(job: tuple[AppProcess, str]) -> requests.Response:
        app, skey = job
        return requests.get(f"{app.url}/weapp/user", headers={"X-WX-Skey": skey}, timeout=60)

    with ThreadPoolExecutor(max_workers=50) as pool:
        logins = list(pool.map(log_in, codes))
        statuses = [r.status_code for _, r in logins]
        assert statuses == [200] * 200, sorted(set(statuses))
        checks = [(b if app is a else a, r.json()["data"]["skey"]) for app, r in logins]
        validations = list(pool.map(validate, checks))
    statuses = [r.status_code for r in validations]
    assert statuses == [200] * 200, sorted(set(statuses))
    openids = {r.json()["data"]["userInfo"]["openId"] for r in validations}
    assert len(openids) == 200
    for app in apps:
        assert "prepared statement" not in app.log_text()
    assert _server_connections(bouncer) <= 3
