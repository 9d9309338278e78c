"""The SQL store on the shared PostgreSQL and MariaDB servers, and on a private
PostgreSQL that a test stops and starts.

Every test here uses tables named with this run's own prefix, dropped at the end of the
module, so runs (and other suites) on the same servers do not see each other.
"""

from __future__ import annotations

import secrets
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest

from tests.pg_instance import PostgresInstance, require_pg_instance
from tests.services import require
from wafer_py.exceptions import StoreUnavailable
from wafer_py.stores import open_store
from wafer_py.stores.sql import SQLStore, _poller
from wafer_py.testing import SessionStoreContract, make_session, run_threads

TABLES = ("users", "sessions", "entries", "locks")
SESSION_KEY = "c2Vzc2lvbmtleTEyMzQ1Ng=="  # what make_session seals
_made: dict[str, set[str]] = {"postgres": set(), "mysql": set()}


def new_prefix(kind: str) -> str:
    """A table prefix of this run, its tables dropped when the module ends."""
    prefix = f"wt{secrets.token_hex(4)}_"
    _made[kind].add(prefix)
    return prefix


PREFIX = {kind: new_prefix(kind) for kind in _made}


def raw_connect(url: str) -> Any:
    """A driver connection of the test's own, beside the store's."""
    if url.startswith("mysql"):
        import pymysql

        parts = urlsplit(url)
        return pymysql.connect(
            host=parts.hostname,
            port=parts.port or 3306,
            user=unquote(parts.username or "root"),
            password=unquote(parts.password or ""),
            database=parts.path.lstrip("/"),
            autocommit=True,
        )
    import psycopg

    return psycopg.connect(url, autocommit=True)


def query(url: str, sql: str, args: Any = None) -> list[tuple[Any, ...]]:
    conn = raw_connect(url)
    try:
        cur = conn.cursor()
        cur.execute(sql, args)
        return list(cur.fetchall()) if cur.description else []
    finally:
        conn.close()


def drop_tables(url: str, prefixes: set[str]) -> None:
    conn = raw_connect(url)
    try:
        for prefix in prefixes:
            for table in TABLES:
                conn.cursor().execute(f"DROP TABLE IF EXISTS {prefix}{table}")
    finally:
        conn.close()


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    url = require("postgres")
    yield url
    drop_tables(url, _made["postgres"])


@pytest.fixture(scope="module")
def mysql_url() -> Iterator[str]:
    url = require("mysql")
    yield url
    drop_tables(url, _made["mysql"])


@pytest.fixture(params=["postgres", "mysql"])
def server(request: pytest.FixtureRequest) -> tuple[str, str]:
    """``(kind, url)`` of each server in turn."""
    kind: str = request.param
    return kind, request.getfixturevalue("pg_url" if kind == "postgres" else "mysql_url")


class TestPostgresStore(SessionStoreContract):
    @pytest.fixture(autouse=True)
    def _server(self, pg_url: str) -> None:
        self.url = pg_url

    def make_store(self) -> SQLStore:
        return SQLStore(self.url, table_prefix=PREFIX["postgres"])


class TestMariaDBStore(SessionStoreContract):
    @pytest.fixture(autouse=True)
    def _server(self, mysql_url: str) -> None:
        self.url = mysql_url

    def make_store(self) -> SQLStore:
        return SQLStore(self.url, table_prefix=PREFIX["mysql"])


# -- what is stored -------------------------------------------------------------
def test_dump_has_no_secrets_in_the_clear(server: tuple[str, str]) -> None:
    kind, url = server
    with SQLStore(url, table_prefix=PREFIX[kind]) as store:
        openid = "o-dump-" + secrets.token_hex(8)
        store.ensure_user(openid, unionid="u", profile={"nickName": "A"}, now=1.0)
        session, skey = make_session(openid)
        store.create_session(session)
        store.set_entry("dump:" + openid, "v", expires_at=1e12)
        store.acquire_lock("dump:" + openid, "me", ttl=60.0, now=1.0)
    dump = "\n".join(repr(query(url, f"SELECT * FROM {PREFIX[kind]}{table}")) for table in TABLES)
    assert session.id in dump and openid in dump  # the dump does hold the rows
    assert skey not in dump
    assert SESSION_KEY not in dump


def test_tables_are_created_once(server: tuple[str, str]) -> None:
    kind, url = server
    prefix = new_prefix(kind)
    first = SQLStore(url, table_prefix=prefix)
    second = SQLStore(url, table_prefix=prefix)
    session, _ = make_session("o-twice")
    first.create_session(session)
    assert second.get_session(session.id) == session
    first.close()
    second.close()
    if kind == "postgres":
        indexes = query(
            url, "SELECT indexname FROM pg_indexes WHERE tablename LIKE %s", (prefix + "%",)
        )
    else:
        indexes = query(
            url,
            "SELECT DISTINCT index_name FROM information_schema.statistics "
            "WHERE table_schema = DATABASE() AND table_name LIKE %s",
            (prefix + "%",),
        )
    names = sorted(row[0] for row in indexes)
    assert len(names) == len(set(names))
    for index in ("sessions_skey_hash", "sessions_openid", "sessions_expires"):
        assert prefix + index in names


def test_processes_starting_together_create_the_tables(server: tuple[str, str]) -> None:
    kind, url = server
    prefix = new_prefix(kind)
    errors: list[BaseException] = []

    def start(_: int) -> None:
        try:
            SQLStore(url, table_prefix=prefix).close()
        except BaseException as exc:
            errors.append(exc)

    run_threads(start, 8)
    assert errors == []


def test_ids_and_keys_are_case_sensitive(server: tuple[str, str]) -> None:
    """MySQL's default collation would make ``AB`` and ``ab`` the same key."""
    kind, url = server
    with SQLStore(url, table_prefix=PREFIX[kind]) as store:
        session, _ = make_session("o-case")
        store.create_session(session)
        assert store.get_session(session.id.upper()) is None
        key = "Case:" + secrets.token_hex(4)
        store.set_entry(key, "v", expires_at=1e12)
        assert store.get_entry(key.lower(), now=0.0) is None
        store.set_entry(key.lower(), "w", expires_at=1e12)
        assert store.get_entry(key, now=0.0) == "v"


def test_long_values_are_refused_not_cut(server: tuple[str, str]) -> None:
    kind, url = server
    with SQLStore(url, table_prefix=PREFIX[kind]) as store:
        store.set_entry("big:" + secrets.token_hex(4), "x" * 100_000, expires_at=1e12)
        if kind == "mysql":  # VARCHAR(255) in MySQL; unbounded TEXT in PostgreSQL
            with pytest.raises(StoreUnavailable):
                store.set_entry("k" * 300, "v", expires_at=1e12)
            assert store.get_entry("k" * 255, now=0.0) is None


# -- round trips ------------------------------------------------------------------
class _CountingCursor:
    def __init__(self, cursor: Any, log: list[str]) -> None:
        self._cursor, self._log = cursor, log

    def execute(self, sql: str, args: Any = None) -> Any:
        self._log.append(sql)
        return self._cursor.execute(sql, args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)


def count_statements(store: SQLStore) -> list[str]:
    """The statements the store runs on this thread from now on."""
    log: list[str] = []
    store._conn()
    store._local.cursor = _CountingCursor(store._local.cursor, log)
    return log


def test_find_login_is_one_statement(server: tuple[str, str]) -> None:
    kind, url = server
    with SQLStore(url, table_prefix=PREFIX[kind]) as store:
        openid = "o-one-" + secrets.token_hex(8)
        user = store.ensure_user(openid, unionid=None, profile={}, now=1.0)
        session, _ = make_session(openid)
        store.create_session(session)
        log = count_statements(store)
        for _ in range(8):  # psycopg prepares a statement from its 5th run: still one
            log.clear()
            assert store.find_login(session_id=session.id) == (session, user)
            assert len(log) == 1
            log.clear()
            found = store.find_login(skey_hashes=["0" * 64, session.skey_hash])
            assert found == (session, user)
            assert len(log) == 1
            log.clear()
            store.touch_session(session.id, last_seen=2000.0, expires_at=9000.0)
            assert len(log) == 1
            session = store.get_session(session.id) or session
        if kind == "mysql":  # the server's own count agrees (Questions counts statements)
            cursor = store._conn()[0].cursor()
            cursor.execute("SHOW SESSION STATUS LIKE 'Questions'")
            before = int(cursor.fetchone()[1])
            store.find_login(session_id=session.id)
            cursor.execute("SHOW SESSION STATUS LIKE 'Questions'")
            assert int(cursor.fetchone()[1]) - before == 2  # find_login and this SHOW


# -- outages ------------------------------------------------------------------------
def _kill_connection(kind: str, url: str, store: SQLStore) -> None:
    """End the store's connection on this thread from the server side, and wait until
    the server's goodbye has reached the store's socket."""
    conn = store._conn()[0]
    if kind == "postgres":
        query(url, "SELECT pg_terminate_backend(%s)", (conn.info.backend_pid,))
    else:
        query(url, f"KILL {int(conn.thread_id())}")
    watch = _poller(store.dialect.fileno(conn))
    deadline = time.monotonic() + 5
    while not watch.poll(0):
        assert time.monotonic() < deadline, "the server did not close the connection"
        time.sleep(0.01)


@pytest.mark.parametrize("watched", [True, False], ids=["watched", "unwatched"])
def test_reconnects_after_a_lost_connection(server: tuple[str, str], watched: bool) -> None:
    """A connection the server closed while idle is replaced before use (``watched``);
    one lost under the store's feet (``unwatched``: the check skipped, as where there is
    no poll(2), or as when the loss comes during the query) fails one call with
    StoreUnavailable, and the next call connects again."""
    kind, url = server
    openid = "o-lost-" + secrets.token_hex(8)
    with SQLStore(url, table_prefix=PREFIX[kind]) as store:
        store.ensure_user(openid, unionid=None, profile={"nickName": "A"}, now=1.0)
        session, _ = make_session(openid)
        store.create_session(session)
        calls = [
            lambda: store.find_login(session_id=session.id),
            lambda: store.get_entry("lost:" + openid, now=0.0),
            lambda: store.acquire_lock("lost:" + openid, "me", ttl=60.0, now=1.0),
            lambda: store.update_profile(openid, {"city": "x"}, now=2.0),  # a transaction
            lambda: store.ensure_user(openid, unionid=None, profile={}, now=3.0),
            lambda: store.purge_expired(0.0, limit=10),
        ]
        for call in calls:
            _kill_connection(kind, url, store)
            if watched:
                call()
                continue
            store._local.poll = None
            with pytest.raises(StoreUnavailable) as caught:
                call()
            assert caught.value.status == 503 and caught.value.detail
            call()
        found = store.find_login(session_id=session.id)
        assert found is not None and found[1] is not None
        assert found[1].profile == {"nickName": "A", "city": "x"}


def test_an_unreachable_server_is_unavailable_at_once(server: tuple[str, str]) -> None:
    kind, _ = server
    import socket

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    scheme = "postgresql" if kind == "postgres" else "mysql"
    started = time.monotonic()
    with pytest.raises(StoreUnavailable) as caught:
        SQLStore(f"{scheme}://someone:pw-{port}@127.0.0.1:{port}/db")
    assert time.monotonic() - started < 3
    assert caught.value.detail and f"pw-{port}" not in caught.value.detail


def test_a_silent_server_times_out(server: tuple[str, str]) -> None:
    """A server that accepts connections and never answers (a hung host, a black hole)."""
    import socket

    kind, _ = server
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)  # the kernel accepts; nobody speaks
    port = listener.getsockname()[1]
    scheme = "postgresql" if kind == "postgres" else "mysql"
    started = time.monotonic()
    try:
        with pytest.raises(StoreUnavailable):
            SQLStore(f"{scheme}://someone@127.0.0.1:{port}/db", connect_timeout=1.0)
    finally:
        listener.close()
    assert time.monotonic() - started < 4  # libpq waits at least 2 s


def test_a_wrong_password_is_not_shown(mysql_url: str) -> None:
    url = mysql_url.replace("root@", "root:s3cret-pw@", 1)
    if "s3cret-pw" not in url:
        pytest.skip("the MySQL test URL has a password of its own")
    with pytest.raises(StoreUnavailable) as caught:
        SQLStore(url)
    assert caught.value.detail and "s3cret-pw" not in caught.value.detail


def test_connections_of_ended_threads_are_closed(pg_url: str) -> None:
    with SQLStore(pg_url, table_prefix=PREFIX["postgres"]) as store:
        for _ in range(5):
            thread = threading.Thread(target=store.get_user, args=("o-x",))
            thread.start()
            thread.join()
        store.get_user("o-x")
        assert len(store._conns) <= 2  # this thread's, and the last thread's until next time


# -- configuration ----------------------------------------------------------------
def test_open_store_and_repr(pg_url: str, mysql_url: str) -> None:
    prefix = PREFIX["postgres"]
    secret_url = pg_url.replace("postgres@", "postgres:s3cret-pw@", 1)  # trust auth
    store = open_store(f"{secret_url}?table_prefix={prefix}")
    assert isinstance(store, SQLStore) and store.table_prefix == prefix
    assert "s3cret-pw" not in repr(store)
    store.close()
    store = open_store(mysql_url.replace("mysql://", "mariadb://") + f"?table_prefix={prefix}")
    assert isinstance(store, SQLStore) and store.dialect.name == "MySQL"
    store.close()
    _made["mysql"].add(prefix)


@pytest.mark.parametrize(
    ("url", "kwargs", "message"),
    [
        ("postgresql://h/db", {"table_prefix": "Bad-"}, "table_prefix"),
        ("postgresql://h/db?table_prefix=a_", {"table_prefix": "b_"}, "twice"),
        ("mysql://h/db?sslmode=require", {}, "unknown MySQL store URL option"),
        ("oracle://h/db", {}, "not a PostgreSQL or MySQL URL"),
    ],
)
def test_bad_configuration(url: str, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SQLStore(url, **kwargs)


def test_a_missing_driver_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)
    with pytest.raises(ImportError, match=r"wafer-session\[sql\]"):
        SQLStore("postgresql://h/db")


# -- a private server, stopped and started --------------------------------------------
@pytest.fixture
def private_pg(tmp_path: Path) -> Iterator[PostgresInstance]:
    require_pg_instance()
    with PostgresInstance(tmp_path) as pg:
        yield pg


def test_store_recovers_when_its_server_comes_back(private_pg: PostgresInstance) -> None:
    store = SQLStore(private_pg.url)
    store.set_entry("kept", "v", expires_at=1e12)
    private_pg.stop()
    assert not private_pg.running
    for _ in range(2):  # the lost connection, then a refused reconnect: both fast
        started = time.monotonic()
        with pytest.raises(StoreUnavailable):
            store.get_entry("kept", now=0.0)
        assert time.monotonic() - started < 3
    private_pg.start()
    assert store.get_entry("kept", now=0.0) == "v"  # same port, data kept
    store.close()
    data = private_pg.root
    private_pg.close()
    assert not data.exists()


def test_tables_made_by_an_operator(server: tuple[str, str]) -> None:
    kind, url = server
    prefix = new_prefix(kind)
    with SQLStore(url, table_prefix=prefix, create_tables=False) as store:
        with pytest.raises(StoreUnavailable):  # no tables yet: an error, not a crash
            store.get_user("o1")
        SQLStore(url, table_prefix=prefix).close()  # the operator's turn
        assert store.get_user("o1") is None
