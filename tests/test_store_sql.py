"""The SQL store on the shared PostgreSQL and MariaDB servers, and on a private
PostgreSQL that a test stops and starts.

Every test here uses tables named with this run's own prefix, dropped at the end of the
module, so runs (and other suites) on the same servers do not see each other.
"""

from __future__ import annotations

import os
import secrets
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest

from tests.support.pg_instance import PostgresInstance, require_pg_instance
from tests.support.services import require
from tests.support.sql_loop import busy_pool_is_unavailable, validate_on_the_loop
from wafer_py.exceptions import StoreUnavailable
from wafer_py.protocol import error_response
from wafer_py.stores import open_store, sql_pool
from wafer_py.stores.sql import SQLStore, _poller
from wafer_py.testing import StoreContract, make_session, run_threads

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


class TestPostgresStore(StoreContract):
    @pytest.fixture(autouse=True)
    def _server(self, pg_url: str) -> None:
        self.url = pg_url

    def make_store(self) -> SQLStore:
        return SQLStore(self.url, table_prefix=PREFIX["postgres"])


class TestMariaDBStore(StoreContract):
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


def idle_connection(store: SQLStore) -> Any:
    """The pooled connection that the store's next call on this thread will use (the
    pool lends the last one given back), opened if there is none."""
    with store._cursor():
        pass
    return store._pool._idle[-1]


def count_statements(store: SQLStore) -> list[str]:
    """The statements the store runs on its (single, idle) connection from now on."""
    log: list[str] = []
    pooled = idle_connection(store)
    pooled.cursor = _CountingCursor(pooled.cursor, log)
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
            cursor = idle_connection(store).conn.cursor()
            cursor.execute("SHOW SESSION STATUS LIKE 'Questions'")
            before = int(cursor.fetchone()[1])
            store.find_login(session_id=session.id)
            cursor.execute("SHOW SESSION STATUS LIKE 'Questions'")
            assert int(cursor.fetchone()[1]) - before == 2  # find_login and this SHOW


# -- outages ------------------------------------------------------------------------
def _kill_connection(kind: str, url: str, store: SQLStore) -> Any:
    """End the connection the store's next call will use from the server side, wait
    until the server's goodbye has reached the store's socket; the pool's entry."""
    pooled = idle_connection(store)
    conn = pooled.conn
    if kind == "postgres":
        query(url, "SELECT pg_terminate_backend(%s)", (conn.info.backend_pid,))
    else:
        query(url, f"KILL {int(conn.thread_id())}")
    watch = _poller(store.dialect.fileno(conn))
    deadline = time.monotonic() + 5
    while not watch.poll(0):
        assert time.monotonic() < deadline, "the server did not close the connection"
        time.sleep(0.01)
    return pooled


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
            killed = _kill_connection(kind, url, store)
            if watched:
                call()
                assert killed not in store._pool._idle and store._pool.open == 1
                continue
            killed.poll = None
            with pytest.raises(StoreUnavailable) as caught:
                call()
            assert error_response(caught.value).status == 503 and caught.value.detail
            # Closed, not given back: its slot is free and the next call connects.
            assert store._pool._idle == [] and store._pool.open == 0
            call()
            assert store._pool.open == 1 and store._pool._idle[0] is not killed
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


# -- the connection pool -------------------------------------------------------------
def _sleep_sql(kind: str, seconds: float) -> str:
    return f"SELECT pg_sleep({seconds})" if kind == "postgres" else f"SELECT SLEEP({seconds})"


def _server_connections(kind: str, url: str, app: str, thread_ids: list[int]) -> int:
    """How many connections the server has from the store: by application_name on
    PostgreSQL, by connection id (those the store opened) on MySQL."""
    if kind == "postgres":
        sql = "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s"
        return int(query(url, sql, (app,))[0][0])
    if not thread_ids:
        return 0
    ids = ", ".join(str(int(i)) for i in thread_ids)
    return int(
        query(url, f"SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID IN ({ids})")[0][0]
    )


def test_many_threads_share_a_few_connections(server: tuple[str, str]) -> None:
    """64 threads on a pool of 4: every call succeeds, and the server never sees more
    than 4 connections from the store."""
    kind, url = server
    app = f"wt_pool_{secrets.token_hex(4)}"
    store_url = f"{url}?application_name={app}" if kind == "postgres" else url
    store = SQLStore(store_url, table_prefix=PREFIX[kind], max_connections=4)
    opened: list[Any] = [pooled.conn for pooled in store._pool._idle]  # the tables'
    connect = store._pool._connect

    def counting() -> Any:
        pooled = connect()
        opened.append(pooled.conn)
        return pooled

    store._pool._connect = counting
    openid = "o-pool-" + secrets.token_hex(8)
    store.ensure_user(openid, unionid=None, profile={"n": 0}, now=1.0)
    session, _ = make_session(openid)
    store.create_session(session)
    errors: list[BaseException] = []
    seen: list[int] = []
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            ids = [] if kind == "postgres" else [c.thread_id() for c in list(opened)]
            seen.append(_server_connections(kind, url, app, ids))
            seen.append(store._pool.open)
            time.sleep(0.005)

    def work(i: int) -> None:
        try:
            for n in range(20):
                assert store.find_login(session_id=session.id) is not None
                key = f"pool:{openid}:{i}"
                store.set_entry(key, str(n), expires_at=1e12)
                assert store.get_entry(key, now=0.0) == str(n)
                if n % 5 == 0:
                    store.update_profile(openid, {f"t{i}": n}, now=2.0)  # a transaction
                    lock = f"pool:{openid}:{i % 4}"
                    if store.acquire_lock(lock, str(i), ttl=60.0, now=1.0):
                        store.release_lock(lock, str(i))
        except BaseException as exc:
            errors.append(exc)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        run_threads(work, 64)
    finally:
        done.set()
        watcher.join()
    assert errors == []
    assert len(opened) <= 4  # none lost, so none replaced
    assert seen and max(seen) <= 4
    ids = [] if kind == "postgres" else [c.thread_id() for c in opened]
    assert _server_connections(kind, url, app, ids) == len(opened) == store._pool.open
    user = store.get_user(openid)
    assert user is not None and len(user.profile) == 65  # n and t0..t63: none lost
    store.close()
    assert store._pool.open == 0
    deadline = time.monotonic() + 5
    while _server_connections(kind, url, app, ids):  # the server's count catches up
        assert time.monotonic() < deadline, "close() left connections open"
        time.sleep(0.02)


def test_an_exhausted_pool_is_unavailable(server: tuple[str, str]) -> None:
    kind, url = server
    with SQLStore(url, table_prefix=PREFIX[kind], max_connections=2, pool_timeout=0.05) as store:
        held = [store._cursor(), store._cursor()]  # both connections lent
        started = time.monotonic()
        with pytest.raises(StoreUnavailable) as caught:
            store.get_user("o-x")
        assert 0.05 <= time.monotonic() - started < 2
        assert error_response(caught.value).status == 503
        assert caught.value.detail and caught.value.detail.startswith("connection pool exhausted")
        for pooled in held:
            pooled.__exit__(None, None, None)
        assert store.get_user("o-x") is None
        assert store._pool.open == 2 and store._pool._waiters == deque()


@pytest.mark.parametrize("pool_timeout", [0.01, 10.0], ids=["short", "long"])
def test_threads_wait_their_turn_or_get_store_unavailable(
    server: tuple[str, str], pool_timeout: float
) -> None:
    """One connection, held by a slow query: with a short pool_timeout the other
    threads get StoreUnavailable and nothing else; with a long one they all get theirs."""
    kind, url = server
    with SQLStore(
        url, table_prefix=PREFIX[kind], max_connections=1, pool_timeout=pool_timeout
    ) as store:
        outcomes: list[object] = []

        def call(i: int) -> None:
            try:
                if i == 0:
                    with store._cursor() as cur:
                        cur.execute(_sleep_sql(kind, 0.3))
                        cur.fetchall()
                else:
                    time.sleep(0.05)  # while the slow query holds the connection
                    store.get_entry(f"wait:{i}", now=0.0)
                outcomes.append("ok")
            except BaseException as exc:
                outcomes.append(exc)

        run_threads(call, 16)
        failures = [o for o in outcomes if o != "ok"]
        assert all(isinstance(o, StoreUnavailable) for o in failures), failures
        assert bool(failures) == (pool_timeout < 0.3)
        assert len(outcomes) == 16
        assert store._pool.open == 1 and store._pool._waiters == deque()
        assert store.get_entry("wait:0", now=0.0) is None  # the pool still serves


def test_a_connection_lost_mid_query_is_not_given_back(server: tuple[str, str]) -> None:
    kind, url = server
    with SQLStore(url, table_prefix=PREFIX[kind], max_connections=2) as store:
        pooled = idle_connection(store)
        conn = pooled.conn
        server_id = conn.info.backend_pid if kind == "postgres" else conn.thread_id()
        failed: list[BaseException] = []

        def slow() -> None:
            try:
                with store._cursor() as cur:
                    cur.execute(_sleep_sql(kind, 5))
            except BaseException as exc:
                failed.append(exc)

        thread = threading.Thread(target=slow)
        thread.start()
        time.sleep(0.3)  # the query is running
        if kind == "postgres":
            query(url, "SELECT pg_terminate_backend(%s)", (server_id,))
        else:
            query(url, f"KILL {int(server_id)}")
        thread.join(10)
        assert len(failed) == 1 and isinstance(failed[0], StoreUnavailable)
        assert store._pool._idle == [] and store._pool.open == 0
        assert store.get_user("o-x") is None  # a new connection
        assert store._pool.open == 1 and store._pool._idle[0] is not pooled


def test_an_interrupted_call_drops_its_connection(server: tuple[str, str]) -> None:
    kind, url = server
    with SQLStore(url, table_prefix=PREFIX[kind]) as store:
        pooled = idle_connection(store)
        with pytest.raises(KeyboardInterrupt), store._cursor():
            raise KeyboardInterrupt
        assert store._pool.open == 0 and store._pool._idle == []
        with pytest.raises(ZeroDivisionError), store._cursor():
            _ = 1 / 0  # a bug of the caller's, not the connection's: it goes back
        assert store._pool._idle != [] and store._pool._idle[0] is not pooled
        assert store._pool.open == 1


class _HandedThenInterrupted:
    """A waiter's lock whose wait ends with KeyboardInterrupt just after the wait was
    answered (the worst moment: a connection was handed to the waiter)."""

    def __init__(self) -> None:
        self.real = threading.Lock()
        self.real.acquire()

    def acquire(self, timeout: float = -1) -> bool:
        assert self.real.acquire(timeout=timeout)
        raise KeyboardInterrupt

    def release(self) -> None:
        self.real.release()


def test_an_interrupted_wait_passes_its_connection_on(
    server: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    kind, url = server

    class Waiter(sql_pool._Waiter):
        def __init__(self) -> None:
            super().__init__()
            self.lock = _HandedThenInterrupted()  # type: ignore[assignment]

    with SQLStore(url, table_prefix=PREFIX[kind], max_connections=1) as store:
        lent = store._cursor()
        monkeypatch.setattr(sql_pool, "_Waiter", Waiter)
        caught: list[BaseException] = []

        def wait() -> None:
            try:
                store.get_user("o-x")
            except BaseException as exc:
                caught.append(exc)

        thread = threading.Thread(target=wait)
        thread.start()
        deadline = time.monotonic() + 5
        while not store._pool._waiters:
            assert time.monotonic() < deadline
            time.sleep(0.005)
        lent.__exit__(None, None, None)  # handed to the waiter, which is interrupted
        thread.join(5)
        assert len(caught) == 1 and isinstance(caught[0], KeyboardInterrupt)
        monkeypatch.undo()
        assert store._pool._idle == [lent] and store._pool.open == 1
        assert store.get_user("o-x") is None


def test_threads_that_end_leave_no_connections(pg_url: str) -> None:
    with SQLStore(pg_url, table_prefix=PREFIX["postgres"]) as store:
        for _ in range(5):
            thread = threading.Thread(target=store.get_user, args=("o-x",))
            thread.start()
            thread.join()
        store.get_user("o-x")
        assert store._pool.open == 1  # one connection, lent to each in turn


def test_a_forked_child_opens_its_own_connections(server: tuple[str, str]) -> None:
    kind, url = server
    with SQLStore(url, table_prefix=PREFIX[kind]) as store:
        store.set_entry("fork", "parent", expires_at=1e12)
        parents = idle_connection(store)
        pid = os.fork()
        if pid == 0:  # the child: exit at once, whatever happens
            code = 1
            try:
                ok = store.get_entry("fork", now=0.0) == "parent"
                mine = store._pool._idle[-1]
                code = 0 if ok and mine is not parents and store._pool.pid == os.getpid() else 2
                store.close()
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        # The parent's connection still works: the child neither used nor closed it.
        assert idle_connection(store) is parents
        assert store.get_entry("fork", now=0.0) == "parent"
        assert store._pool.open == 1


def test_close_closes_idle_connections_now_and_lent_ones_on_return(
    server: tuple[str, str],
) -> None:
    kind, url = server
    store = SQLStore(url, table_prefix=PREFIX[kind])
    lent = store._cursor()
    idle = idle_connection(store)
    assert store._pool.open == 2
    store.close()
    assert store._pool.open == 1 and store._pool._idle == []
    assert idle.conn.closed if kind == "postgres" else not idle.conn.open
    lent.__exit__(None, None, None)
    assert store._pool.open == 0 and store._pool._idle == []
    assert store.get_user("o-x") is None  # usable again: a new connection
    store.close()


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


def test_pool_options(server: tuple[str, str]) -> None:
    kind, url = server
    options = f"table_prefix={PREFIX[kind]}&max_connections=3&pool_timeout=0.5"
    store = open_store(f"{url}?{options}")
    assert isinstance(store, SQLStore)
    assert (store.max_connections, store.pool_timeout) == (3, 0.5)
    assert "max_connections=3" in repr(store)
    assert store.get_user("o-x") is None  # the store's options are not the driver's
    store.close()
    with SQLStore(url, table_prefix=PREFIX[kind], max_connections=2) as store:
        assert (store.max_connections, store.pool_timeout) == (2, 5.0)
    with SQLStore(f"{url}?max_connections=4", max_connections=4, create_tables=False) as store:
        assert store.max_connections == 4 and store.pool_timeout == 5.0
    with SQLStore(url, create_tables=False) as store:
        assert (store.max_connections, store.pool_timeout) == (10, 5.0)


@pytest.mark.parametrize(
    ("url", "kwargs", "message"),
    [
        ("postgresql://h/db", {"table_prefix": "Bad-"}, "table_prefix"),
        ("postgresql://h/db?table_prefix=a_", {"table_prefix": "b_"}, "twice"),
        ("mysql://h/db?sslmode=require", {}, "unknown MySQL store URL option"),
        ("postgresql://h/db?max_connections=0", {}, "at least 1"),
        ("postgresql://h/db?max_connections=ten", {}, "not a valid value"),
        ("postgresql://h/db?max_connections=5", {"max_connections": 6}, "twice"),
        ("mysql://h/db?pool_timeout=-1", {}, "pool_timeout"),
        ("mysql://h/db", {"max_connections": 0}, "at least 1"),
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


# -- PostgreSQL on the event loop (validation under asyncio) ----------------------
def test_async_validation_runs_on_the_loop_within_the_pool_size(pg_url: str) -> None:
    """30 lookups and touches at once on the loop: no worker thread, no connection of the
    threaded pool, never more than max_connections async connections, right answers."""
    with SQLStore(pg_url, table_prefix=PREFIX["postgres"], max_connections=3) as store:
        assert store.supports_async
        sessions = []
        for i in range(30):
            openid = f"o-aio-{i}-" + secrets.token_hex(4)
            store.ensure_user(openid, unionid=None, profile={}, now=1.0)
            session, _ = make_session(openid)
            store.create_session(session)
            sessions.append(session)
        opened, found = validate_on_the_loop(store, sessions)
        assert opened == 3
        assert [f[0].id for f in found] == [s.id for s in sessions] * 2
        # The threaded pool again, to read what the touches wrote.
        again = store.find_login(session_id=sessions[-1].id)
        assert again is not None and again[0].last_seen == 7.0


def test_async_pool_replaces_connections_the_server_closed(pg_url: str) -> None:
    """An idle async connection whose backend was terminated is replaced before use: the
    next lookup succeeds instead of answering 503."""
    import asyncio

    with SQLStore(pg_url, table_prefix=PREFIX["postgres"]) as store:
        openid = "o-aio-lost-" + secrets.token_hex(4)
        store.ensure_user(openid, unionid=None, profile={}, now=1.0)
        session, _ = make_session(openid)
        store.create_session(session)

        async def main() -> None:
            assert await store.afind_login(session_id=session.id) is not None
            assert store._async_pools is not None
            pool = await store._async_pools.get()
            ((conn, _),) = pool._idle
            query(pg_url, "SELECT pg_terminate_backend(%s)", (conn.info.backend_pid,))
            for _ in range(100):  # the server's goodbye reaches the socket
                if conn.pgconn.socket and pool._idle[0][1].poll(0):
                    break
                await asyncio.sleep(0.01)
            assert await store.afind_login(session_id=session.id) is not None
            assert len(pool._idle) == 1 and pool._idle[0][0] is not conn

        asyncio.run(main())


def test_async_pool_busy_for_pool_timeout_is_unavailable(pg_url: str) -> None:
    """With every async connection busy, a lookup waits pool_timeout, then answers
    StoreUnavailable; the connections come back and serve the next call."""
    with SQLStore(
        pg_url, table_prefix=PREFIX["postgres"], max_connections=1, pool_timeout=0.2
    ) as store:
        busy_pool_is_unavailable(store, "SELECT pg_sleep(1)", tries=200)


def test_async_path_after_the_server_stops_and_comes_back(private_pg: PostgresInstance) -> None:
    """Async lookups against a stopped server: StoreUnavailable, quickly, and the
    password never in the detail; once it is back, the same loop's pool recovers."""
    import asyncio

    store = SQLStore(private_pg.url)
    openid = "o-aio-outage"
    store.ensure_user(openid, unionid=None, profile={}, now=1.0)
    session, _ = make_session(openid)
    store.create_session(session)

    async def main() -> None:
        assert await store.afind_login(session_id=session.id) is not None
        private_pg.stop()
        for _ in range(2):  # the lost connection, then a refused connect
            started = time.monotonic()
            with pytest.raises(StoreUnavailable):
                await store.afind_login(session_id=session.id)
            assert time.monotonic() - started < 3
        private_pg.start()
        found = await store.afind_login(session_id=session.id)
        assert found is not None and found[0].id == session.id

    try:
        asyncio.run(main())
    finally:
        store.close()


def test_an_older_users_table_gains_the_unionid_index(server: tuple[str, str]) -> None:
    """Tables made before the unionid index: opening the store adds it (once), and the
    users already there are found by unionid."""
    kind, url = server
    prefix = new_prefix(kind)
    text, real = ("TEXT", "DOUBLE PRECISION") if kind == "postgres" else ("VARCHAR(128)", "DOUBLE")
    query(
        url,
        f"CREATE TABLE {prefix}users (openid {text} NOT NULL PRIMARY KEY, unionid {text} NULL, "
        f"profile TEXT NOT NULL, created_at {real} NOT NULL, updated_at {real} NOT NULL, "
        "phone VARCHAR(64) NULL)",
    )
    query(
        url,
        f"INSERT INTO {prefix}users (openid, unionid, profile, created_at, updated_at) "
        "VALUES (%s, %s, %s, %s, %s)",
        ("o-old", "u-old", '{"nickName": "Old"}', 1.0, 1.0),
    )
    for _ in range(2):  # a second start finds the index there
        with SQLStore(url, table_prefix=prefix) as store:
            (user,) = store.find_users_by_unionid("u-old")
            assert (user.openid, user.nickname) == ("o-old", "Old")
    if kind == "postgres":
        indexes = query(
            url, "SELECT indexname FROM pg_indexes WHERE tablename = %s", (prefix + "users",)
        )
    else:
        indexes = query(
            url,
            "SELECT DISTINCT index_name FROM information_schema.statistics "
            "WHERE table_schema = DATABASE() AND table_name = %s",
            (prefix + "users",),
        )
    assert prefix + "users_unionid" in {row[0] for row in indexes}
