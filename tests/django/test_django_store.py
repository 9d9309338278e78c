"""The ``django://`` store: the store contract on SQLite and on PostgreSQL, opened by
URL, its secrets sealed and hashed in the tables as in every store."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from django.db import connections

from tests.support import services
from wafer_py import WaferAuth, WaferConfig
from wafer_py.exceptions import StoreUnavailable
from wafer_py.stores import open_store
from wafer_py.stores.base import call_store
from wafer_py.stores.django import DjangoStore
from wafer_py.testing import StoreContract, make_session, run_threads
from wafer_py.wechat.client import Code2Session

SESSION_KEY = "c2Vzc2lvbmtleTEyMzQ1Ng=="
TABLES = ("wafer_dj_users", "wafer_dj_sessions", "wafer_dj_entries", "wafer_dj_locks")


@pytest.fixture(autouse=True)
def _close_thread_connections() -> Iterator[None]:
    yield
    connections.close_all()


class ConcurrentWrites:
    """Beyond the contract: read-modify-write calls under threads (SQLite gives a reader
    that then writes no wait for the lock: such a transaction must write first)."""

    def test_concurrent_profile_updates_lose_nothing(self, store: DjangoStore, openid: str) -> None:
        store.ensure_user(openid, unionid=None, profile={}, now=1.0)
        errors: list[BaseException] = []

        def update(i: int) -> None:
            try:
                store.update_profile(openid, {f"k{i}": i}, now=float(i))
            except BaseException as exc:
                errors.append(exc)
            finally:
                connections.close_all()

        run_threads(update, 8)
        assert not errors
        user = store.get_user(openid)
        assert user is not None and user.profile == {f"k{i}": i for i in range(8)}

    def test_purge_beside_writers(self, store: DjangoStore, openid: str) -> None:
        for _ in range(4):
            store.create_session(make_session(openid, now=0.0, ttl=1.0)[0])
        errors: list[BaseException] = []

        def work(i: int) -> None:
            try:
                if i % 2:
                    store.purge_expired(now=100.0)
                else:
                    store.set_entry(f"e{i}:{openid}", "v", expires_at=1e12)
            except BaseException as exc:
                errors.append(exc)
            finally:
                connections.close_all()

        run_threads(work, 8)
        assert not errors
        assert store.list_sessions(openid) == []


@pytest.mark.django_db(transaction=True)
class TestSQLite(StoreContract, ConcurrentWrites):
    def make_store(self) -> DjangoStore:
        return DjangoStore("default")


@pytest.mark.django_db(transaction=True, databases=["default", "pg"])
class TestPostgreSQL(StoreContract, ConcurrentWrites):
    @pytest.fixture(autouse=True)
    def _server(self, pg_alias: str) -> None:
        assert connections[pg_alias].vendor == "postgresql"

    def make_store(self) -> DjangoStore:
        return DjangoStore("pg")

    def test_a_broken_connection_is_replaced(self, store: DjangoStore, openid: str) -> None:
        """The server ends the thread's connection: one call fails (503), the next
        reconnects."""
        store.ensure_user(openid, unionid=None, profile={}, now=1.0)
        with connections["pg"].cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            (pid,) = cursor.fetchone()
        with psycopg.connect(services.url("postgres"), autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        with pytest.raises(StoreUnavailable):
            call_store(store.get_user, openid)
        user = call_store(store.get_user, openid)
        assert user is not None and user.openid == openid


@pytest.mark.django_db
def test_open_store_by_url() -> None:
    store = open_store("django://default")
    assert isinstance(store, DjangoStore) and store.alias == "default"
    assert open_store("django://").alias == "default"  # type: ignore[attr-defined]
    assert DjangoStore.shared is True
    with pytest.raises(ValueError, match=r"'elsewhere'.*settings\.DATABASES"):
        open_store("django://elsewhere")


def _dump(alias: str) -> str:
    with connections[alias].cursor() as cursor:
        rows: list[Any] = []
        for table in TABLES:
            cursor.execute(f"SELECT * FROM {table}")
            rows.extend(cursor.fetchall())
    return "\n".join(repr(row) for row in rows)


@pytest.mark.django_db(transaction=True, databases=["default", "pg"])
@pytest.mark.parametrize("alias", ["default", "pg"])
def test_dump_has_no_secrets_in_the_clear(alias: str, request: pytest.FixtureRequest) -> None:
    if alias == "pg":
        request.getfixturevalue("pg_alias")
    store = DjangoStore(alias)
    openid = "o-dump-django"
    store.ensure_user(openid, unionid="u", profile={"nickName": "A"}, now=1.0)
    session, skey = make_session(openid)
    store.create_session(session)
    store.set_entry("dump:" + openid, "v", expires_at=1e12)
    store.acquire_lock("dump:" + openid, "me", ttl=60.0, now=1.0)
    # A real login too: WaferAuth hashes the skey and seals the session_key.
    config = WaferConfig(appid="wxdump0000000000a", app_secret="x", secret_keys=("k" * 40,))
    result = WaferAuth(config, store=store).complete_login(
        Code2Session(openid + "-login", SESSION_KEY)
    )
    dump = _dump(alias)
    assert session.id in dump and result.session_id in dump and openid in dump
    assert skey not in dump and result.skey not in dump
    assert SESSION_KEY not in dump


@pytest.mark.django_db
def test_an_empty_unionid_is_filled_in_later() -> None:
    store = DjangoStore("default")
    store.ensure_user("o-empty-unionid", unionid="", profile={}, now=1.0)
    assert store.ensure_user("o-empty-unionid", unionid="u", profile={}, now=2.0).unionid == "u"
