"""The SQL store's URL options and bring-your-own connections.

What a PostgreSQL URL's query may say (the store's options, psycopg's
``prepare_threshold``, libpq's keywords), what it may not (anything else: refused at
start, the password never in the message), and ``connect=``/``async_connect=``: the
operator's own psycopg or PyMySQL connections under the store's pool, through the
contract suite on both servers.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote, urlsplit

import psycopg
import pymysql
import pytest
from pymysql.constants import CLIENT

from tests.support import services
from wafer_py.stores.sql import SQLStore
from wafer_py.testing import StoreContract, make_session

_made: dict[str, set[str]] = {"postgres": set(), "mysql": set()}


def new_prefix(kind: str) -> str:
    prefix = f"opt{secrets.token_hex(4)}_"
    _made[kind].add(prefix)
    return prefix


PREFIX = {kind: new_prefix(kind) for kind in _made}


def _drop(url: str, prefixes: set[str]) -> None:
    for prefix in prefixes:
        services.drop_namespace(f"{url}{'&' if '?' in url else '?'}table_prefix={prefix}")


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    url = services.require("postgres")
    yield url
    _drop(url, _made["postgres"])


@pytest.fixture(scope="module")
def mysql_url() -> Iterator[str]:
    url = services.require("mysql")
    yield url
    _drop(url, _made["mysql"])


def pymysql_connect(url: str, **extra: Any) -> Any:
    """A PyMySQL connection made by the test, as an operator's ``connect=`` would."""
    parts = urlsplit(url)
    return pymysql.connect(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 3306,
        user=unquote(parts.username or "root"),
        password=unquote(parts.password or ""),
        database=parts.path.lstrip("/"),
        charset="utf8mb4",
        **extra,
    )


# -- what a PostgreSQL URL may say ---------------------------------------------------
def params(url: str) -> dict[str, Any]:
    with SQLStore(url, create_tables=False) as store:
        return dict(store._params)


def test_libpq_options_go_to_libpq() -> None:
    got = params(
        "postgresql://u@h/db?sslmode=verify-full&sslrootcert=/etc/ca.pem&connect_timeout=7"
        "&application_name=app&target_session_attrs=read-write&options=-c%20x%3D1"
        "&table_prefix=a_&max_connections=3"
    )
    assert got["sslmode"] == "verify-full" and got["sslrootcert"] == "/etc/ca.pem"
    assert got["connect_timeout"] == "7"  # the URL's, over the store's default
    assert got["application_name"] == "app"
    assert got["target_session_attrs"] == "read-write" and got["options"] == "-c x=1"
    assert "table_prefix" not in got and "max_connections" not in got
    assert "prepare_threshold" not in got  # psycopg's default (5) unless the URL says


@pytest.mark.parametrize(
    ("value", "threshold"), [("none", None), ("None", None), ("0", 0), ("12", 12)]
)
def test_prepare_threshold(value: str, threshold: int | None) -> None:
    assert params(f"postgresql://u@h/db?prepare_threshold={value}")["prepare_threshold"] == (
        threshold
    )


@pytest.mark.parametrize("value", ["", "-1", "five", "1.5"])
def test_a_bad_prepare_threshold_is_refused(value: str) -> None:
    with pytest.raises(ValueError, match=r"prepare_threshold=.*a whole number >= 0, or none"):
        SQLStore(f"postgresql://u@h/db?prepare_threshold={value}", create_tables=False)


def test_an_unknown_option_is_refused_naming_the_known_ones() -> None:
    url = "postgresql://u:hunter2-pw@h/db?sslmod=verify-xyz&statement_cache_size=0"
    with pytest.raises(ValueError) as caught:
        SQLStore(url, create_tables=False)
    message = str(caught.value)
    assert "'sslmod' (did you mean 'sslmode'?)" in message
    assert "'statement_cache_size'" in message
    for known in ("table_prefix", "prepare_threshold", "sslrootcert", "target_session_attrs"):
        assert known in message
    assert "hunter2-pw" not in message and "verify-xyz" not in message  # keys, not values


def test_an_unreadable_url_is_refused_without_its_password() -> None:
    with pytest.raises(ValueError, match="cannot be read") as caught:
        SQLStore("postgresql://u:p%zzsecret@h/db", create_tables=False)
    assert "zzsecret" not in str(caught.value)


def test_options_reach_the_server_sync_and_async(pg_url: str) -> None:
    """The URL's libpq options and prepare_threshold on both pools' connections."""
    name = "wafer-opt-" + secrets.token_hex(3)
    query = f"application_name={name}&options=-c%20statement_timeout%3D4321&prepare_threshold=none"
    with SQLStore(f"{pg_url}?{query}", table_prefix=PREFIX["postgres"]) as store:
        with store._cursor() as cur:
            cur.execute("SHOW statement_timeout")
            assert cur.fetchone()[0] == "4321ms"
            cur.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", [name])
            assert cur.fetchone()[0] >= 1
            assert cur.connection.prepare_threshold is None

        async def main() -> None:
            assert await store.afind_login(session_id="nope") is None
            assert store._async_pools is not None
            pool = await store._async_pools.get()
            ((conn, _),) = pool._idle
            assert conn.prepare_threshold is None
            assert conn.info.parameter_status("application_name") == name

        asyncio.run(main())


# -- bring your own connections -------------------------------------------------------
class TestPostgresOwnConnections(StoreContract):
    @pytest.fixture(autouse=True)
    def _server(self, pg_url: str) -> None:
        self.url = pg_url

    def make_store(self) -> SQLStore:
        url = self.url
        return SQLStore(
            "postgresql://",
            connect=lambda: psycopg.connect(url),  # not autocommit: the store sees to it
            async_connect=lambda: psycopg.AsyncConnection.connect(url, autocommit=True),
            table_prefix=PREFIX["postgres"],
        )


class TestMariaDBOwnConnections(StoreContract):
    @pytest.fixture(autouse=True)
    def _server(self, mysql_url: str) -> None:
        self.url = mysql_url

    def make_store(self) -> SQLStore:
        url = self.url
        return SQLStore(
            f"mysql://?table_prefix={PREFIX['mysql']}",
            connect=lambda: pymysql_connect(url, client_flag=CLIENT.FOUND_ROWS),
        )


def test_own_connections_are_pooled_and_the_async_ones_used_on_the_loop(pg_url: str) -> None:
    made: list[Any] = []
    amade: list[Any] = []

    def connect() -> Any:
        made.append(psycopg.connect(pg_url))
        return made[-1]

    async def aconnect() -> Any:
        amade.append(await psycopg.AsyncConnection.connect(pg_url, autocommit=True))
        return amade[-1]

    with SQLStore(
        "postgresql://", connect=connect, async_connect=aconnect, table_prefix=PREFIX["postgres"]
    ) as store:
        assert store.supports_async
        openid = "o-own-" + secrets.token_hex(4)
        store.ensure_user(openid, unionid=None, profile={}, now=1.0)
        session, _ = make_session(openid)
        store.create_session(session)
        for _ in range(5):
            assert store.get_session(session.id) == session
        assert len(made) == 1 and made[0].autocommit

        async def main() -> None:
            found = await asyncio.gather(
                *(store.afind_login(session_id=session.id) for _ in range(3))
            )
            assert all(f is not None and f[0] == session for f in found)

        asyncio.run(main())
        assert 1 <= len(amade) <= 3


def test_without_async_connect_validation_runs_in_a_worker_thread(pg_url: str) -> None:
    with SQLStore(
        "postgresql://", connect=lambda: psycopg.connect(pg_url), table_prefix=PREFIX["postgres"]
    ) as store:
        assert not store.supports_async


@pytest.mark.parametrize(
    ("url", "kwargs", "message"),
    [
        ("postgresql://h/db", {"connect": object}, "also gives a host"),
        ("postgresql://?sslmode=require", {"connect": object}, "driver option.* sslmode"),
        ("postgresql://", {"async_connect": object}, "without connect="),
    ],
)
def test_own_connections_with_a_url_that_says_too_much(
    url: str, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        SQLStore(url, create_tables=False, **kwargs)


def test_a_connection_of_the_wrong_driver_is_refused_at_start(mysql_url: str) -> None:
    with pytest.raises(TypeError, match="not a psycopg Connection"):
        SQLStore("postgresql://", connect=lambda: pymysql_connect(mysql_url))


def test_a_pymysql_connection_without_found_rows_is_refused_at_start(mysql_url: str) -> None:
    with pytest.raises(ValueError, match="FOUND_ROWS"):
        SQLStore("mysql://", connect=lambda: pymysql_connect(mysql_url))


def test_an_async_connection_outside_autocommit_is_refused(pg_url: str) -> None:
    store = SQLStore(
        "postgresql://",
        connect=lambda: psycopg.connect(pg_url),
        async_connect=lambda: psycopg.AsyncConnection.connect(pg_url),
        table_prefix=PREFIX["postgres"],
    )
    with pytest.raises(ValueError, match="autocommit"):
        asyncio.run(store.afind_login(session_id="nope"))
    store.close()
