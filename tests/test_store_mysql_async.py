"""MySQL validation on the event loop (asyncmy), against the shared MariaDB and a private
one that a test stops and starts.

Each test uses tables of its own prefix, dropped at the end of the module.
"""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.support.ci import skip_or_fail
from tests.support.mariadb_instance import PASSWORD, MariaDBInstance, require_mariadb_instance
from tests.support.services import drop_namespace, require
from tests.support.sql_loop import busy_pool_is_unavailable, validate_on_the_loop
from wafer_py import WaferAuth
from wafer_py.asgi import WaferMiddleware
from wafer_py.exceptions import StoreUnavailable
from wafer_py.models import Session
from wafer_py.stores import sql_async_mysql, sql_dialects
from wafer_py.stores.sql import SQLStore
from wafer_py.testing import make_session

_made: set[str] = set()


def new_prefix() -> str:
    prefix = f"wa{secrets.token_hex(4)}_"
    _made.add(prefix)
    return prefix


@pytest.fixture(scope="module")
def mysql_url() -> Iterator[str]:
    url = require("mysql")
    if not sql_async_mysql.installed():
        skip_or_fail(
            f"{sql_async_mysql.DRIVER} is not installed (pip install 'wafer-session[sql]')"
        )
    yield url
    for prefix in _made:
        drop_namespace(f"{url}?table_prefix={prefix}")


def kill(url: str, thread_id: int) -> None:
    """End a connection of the server's, as an operator's KILL does."""
    import pymysql

    parts = urlsplit(url)
    conn = pymysql.connect(
        host=parts.hostname,
        port=parts.port or 3306,
        user=unquote(parts.username or "root"),
        password=unquote(parts.password or ""),
    )
    try:
        conn.cursor().execute(f"KILL {int(thread_id)}")
    finally:
        conn.close()


def sessions_in(store: SQLStore, count: int) -> list[Session]:
    made = []
    for i in range(count):
        openid = f"o-amy-{i}-" + secrets.token_hex(4)
        store.ensure_user(openid, unionid=None, profile={"nickName": "李四 🐱"}, now=1.0)
        session, _ = make_session(openid)
        store.create_session(session)
        made.append(session)
    return made


def test_validation_runs_on_the_loop_within_the_pool_size(mysql_url: str) -> None:
    """30 lookups and touches at once on the loop: no worker thread, no connection of the
    threaded pool, never more than max_connections async connections, right answers."""
    with SQLStore(mysql_url, table_prefix=new_prefix(), max_connections=3) as store:
        assert store.supports_async
        sessions = sessions_in(store, 30)
        opened, found = validate_on_the_loop(store, sessions)
        assert opened == 3
        assert [f[0].id for f in found] == [s.id for s in sessions] * 2
        assert found[0][1].nickname == "李四 🐱"  # utf8mb4 on this connection too
        # The threaded pool again, to read what the touches wrote.
        again = store.find_login(session_id=sessions[-1].id)
        assert again is not None and again[0].last_seen == 7.0


def test_a_connection_the_server_closed_is_replaced(mysql_url: str) -> None:
    """An idle async connection the server killed is replaced before use: the next
    lookup succeeds instead of answering 503."""
    with SQLStore(mysql_url, table_prefix=new_prefix()) as store:
        (session,) = sessions_in(store, 1)

        async def main() -> None:
            assert await store.afind_login(session_id=session.id) is not None
            assert store._async_pools is not None
            pool = await store._async_pools.get()
            ((conn, _),) = pool._idle
            driver_conn = conn._conn
            kill(mysql_url, driver_conn.thread_id())
            for _ in range(500):  # until the server's goodbye reached the driver
                if sql_async_mysql._gone(driver_conn):
                    break
                await asyncio.sleep(0.01)
            assert await store.afind_login(session_id=session.id) is not None
            assert conn._conn is not driver_conn

        asyncio.run(main())


def test_all_connections_busy_for_pool_timeout_is_unavailable(mysql_url: str) -> None:
    with SQLStore(
        mysql_url, table_prefix=new_prefix(), max_connections=1, pool_timeout=0.2
    ) as store:
        busy_pool_is_unavailable(store, "SELECT SLEEP(1)", tries=1000)


def test_a_server_error_is_unavailable_not_a_crash(mysql_url: str) -> None:
    """asyncmy's own errors come out as the store's StoreUnavailable (no tables here)."""
    with SQLStore(mysql_url, table_prefix=new_prefix(), create_tables=False) as store:
        with pytest.raises(StoreUnavailable) as caught:
            asyncio.run(store.afind_login(session_id="x"))
        assert "ProgrammingError" in (caught.value.detail or "")


def test_without_the_driver_validation_blocks_in_a_thread(
    mysql_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No asyncio driver installed: the store says so (the ASGI middleware then calls it
    in a worker thread) and its async methods still answer."""
    assert not sql_async_mysql.installed("no_such_driver_module")
    blocking = dataclasses.replace(sql_dialects.MYSQL, async_connect=None)
    monkeypatch.setitem(sql_dialects.DIALECTS, "mysql", blocking)
    with SQLStore(mysql_url, table_prefix=new_prefix()) as store:
        assert not store.supports_async
        (session,) = sessions_in(store, 1)
        found = asyncio.run(store.afind_login(session_id=session.id))
        assert found is not None and found[0].id == session.id


# -- a private server: TLS on the async path, and an outage under ASGI ------------------
@pytest.fixture
def private_mariadb(tmp_path: Path) -> Iterator[MariaDBInstance]:
    require_mariadb_instance()
    if not sql_async_mysql.installed():
        skip_or_fail(f"{sql_async_mysql.DRIVER} is not installed")
    with MariaDBInstance(tmp_path) as db:
        yield db


def asgi_app(auth: WaferAuth) -> Starlette:
    async def me(request: Request) -> JSONResponse:
        return JSONResponse({"openid": request.user.openid})

    return Starlette(routes=[Route("/me", me)], middleware=[Middleware(WaferMiddleware, auth=auth)])


def test_asgi_validates_on_the_loop_and_answers_503_in_an_outage(
    private_mariadb: MariaDBInstance, make_auth: Any, fake: Any
) -> None:
    """Starlette validates a MySQL session on the event loop (the blocking lookup is
    never called), answers 503 (never 401 or 500) while the server is down, quickly and
    without the password, and 200 again once it is back, with the same app."""
    from wafer_py.config import DEMO_APPID

    auth = make_auth(store_url=private_mariadb.url)
    store = auth.store
    assert isinstance(store, SQLStore) and store.supports_async
    code = fake.login(DEMO_APPID, "mysql-async-user")["code"]
    result = auth.login(code)
    skey, me = result.skey, {"openid": result.user.openid}

    def blocking(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("validation went through the blocking store")

    store.find_login = blocking  # type: ignore[method-assign]
    store.touch_session = blocking  # type: ignore[method-assign]

    async def main() -> list[tuple[int, Any]]:
        transport = httpx.ASGITransport(app=asgi_app(auth))
        answers = []
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:

            async def get() -> tuple[int, Any]:
                response = await client.get("/me", headers={"X-WX-Skey": skey})
                return response.status_code, response.json()

            answers.append(await get())
            await asyncio.to_thread(private_mariadb.stop)
            for _ in range(2):  # the lost connection, then a refused connect
                started = time.monotonic()
                answers.append(await get())
                assert time.monotonic() - started < 5
            await asyncio.to_thread(private_mariadb.start)
            answers.append(await get())
        return answers

    answers = asyncio.run(main())
    assert answers[0] == (200, me)
    for status, body in answers[1:3]:
        assert status == 503, body
        assert body["reason"] == "store_unavailable" and body["code"] == 503
        assert PASSWORD not in str(body)
    assert answers[3] == (200, me)


def test_async_outage_detail_hides_the_password(private_mariadb: MariaDBInstance) -> None:
    store = SQLStore(private_mariadb.url, table_prefix="out_")
    private_mariadb.stop()
    try:
        with pytest.raises(StoreUnavailable) as caught:
            asyncio.run(store.afind_login(session_id="x"))
        detail = caught.value.detail or ""
        assert "cannot connect" in detail and PASSWORD not in detail
    finally:
        store.close()
