"""RedisStore on a master found through Redis Sentinel (``redis+sentinel://``).

On a private deployment of :mod:`tests.support.sentinel_cluster` (a master, a replica,
three sentinels): the store contract suite through the URL and through a client the caller
made with ``Sentinel.master_for``; what the URL accepts and refuses; a master that turns
read-only, a coordinated failover, and the issue's check: two app servers share the store,
the master is killed, the replica promoted, and no session is lost on the way.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.asyncio.sentinel
import redis.sentinel
import requests

from tests.support.app_process import AppProcess, app_processes
from tests.support.redis_instance import free_port
from tests.support.sentinel_cluster import SERVICE, SentinelCluster, tls_sentinel
from wafer_py.config import DEMO_APPID
from wafer_py.exceptions import StoreUnavailable
from wafer_py.fakewechat import FakeWeChat
from wafer_py.protocol import MAGIC_ID
from wafer_py.stores import SessionStore, open_store
from wafer_py.stores.redis import RedisStore
from wafer_py.stores.redis_clients import FollowingSentinelPool, parse_sentinel_url
from wafer_py.testing import StoreContract, make_session


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentinelCluster]:
    """A deployment that stays as it is for the module (no failover)."""
    with SentinelCluster(tmp_path_factory.mktemp("sentinel")) as deployment:
        yield deployment


@pytest.fixture
def own_cluster(tmp_path: Path) -> Iterator[SentinelCluster]:
    """A deployment for one test, which may fail it over."""
    with SentinelCluster(tmp_path / "sentinel") as deployment:
        yield deployment


@pytest.fixture
def pinned_cluster(tmp_path: Path) -> Iterator[SentinelCluster]:
    """A deployment whose first master stays a master after a failover."""
    with SentinelCluster(tmp_path / "sentinel", pinned_master=True) as deployment:
        yield deployment


class TestSentinelStore(StoreContract):
    @pytest.fixture(autouse=True)
    def _cluster(self, cluster: SentinelCluster) -> None:
        self.url = cluster.url("prefix=contract:")

    def make_store(self) -> SessionStore:
        return open_store(self.url)


class TestSentinelMasterClient(StoreContract):
    """Clients the caller made with ``master_for`` (sync, and async per event loop)."""

    @pytest.fixture(autouse=True)
    def _cluster(self, cluster: SentinelCluster) -> None:
        self.sentinels = [("127.0.0.1", s.port) for s in cluster.sentinels]

    def make_store(self) -> SessionStore:
        sentinels = self.sentinels
        sentinel = redis.sentinel.Sentinel(sentinels, socket_timeout=2)
        return RedisStore(
            sentinel.master_for(SERVICE, connection_pool_class=FollowingSentinelPool),
            prefix="byo:",
            async_client=lambda: redis.asyncio.sentinel.Sentinel(sentinels).master_for(SERVICE),
        )


# ------------------------------------------------------------------------ the URL
@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("redis+sentinel://:s3cret@/wafer", "no sentinel host"),
        ("redis+sentinel://:s3cret@h1:26379,,h2/wafer", "empty sentinel host"),
        ("redis+sentinel://:s3cret@h1:26379,h2:263x9/wafer", "bad sentinel port '263x9'"),
        ("redis+sentinel://:s3cret@h1:70000/wafer", "bad sentinel port '70000'"),
        ("redis+sentinel://:s3cret@h1:/wafer", "bad sentinel port ''"),
        ("redis+sentinel://:s3cret@h1:26379", "names no service"),
        ("redis+sentinel://:s3cret@h1:26379/", "names no service"),
        ("redis+sentinel://:s3cret@h1/wafer/zero", "not '/wafer/zero'"),
        ("redis+sentinel://:s3cret@h1/wafer/0/1", "not '/wafer/0/1'"),
        ("redis+sentinel://:s3cret@h1/wafer?socket_timeout=soon", "'socket_timeout'"),
        ("redis+sentinel://:s3cret@h1/wafer?cluster=true", "cannot ask for a Redis Cluster"),
    ],
)
def test_a_malformed_url_is_refused_naming_it_without_its_password(url: str, problem: str) -> None:
    with pytest.raises(ValueError, match="Redis") as caught:
        open_store(url)
    message = str(caught.value)
    assert problem in message, message
    assert "s3cret" not in message and "sentinel://:***@" in message, message


def test_what_the_url_gives_the_servers_and_the_sentinels() -> None:
    parsed = parse_sentinel_url(
        "redis+sentinel://app:p%40ss@a.example,b.example:26380,[::1]:5000/my%20master/3"
        "?sentinel_password=sp&sentinel_username=sentry&socket_timeout=0.5&max_connections=7"
    )
    assert parsed.sentinels == [("a.example", 26379), ("b.example", 26380), ("::1", 5000)]
    assert parsed.service == "my master"
    assert parsed.connection == {
        "username": "app",
        "password": "p@ss",
        "db": 3,
        "socket_timeout": 0.5,
        "max_connections": 7,
    }
    # The servers' password is not the sentinels': each is asked for its own.
    assert parsed.sentinel == {"password": "sp", "username": "sentry"}
    assert "p@ss" not in parsed.where and "sp" not in parsed.where.split("/")[-1]


def test_tls_reaches_the_sentinels_and_the_servers() -> None:
    url = "rediss+sentinel://h1,h2/wafer?ssl_cert_reqs=required&ssl_ca_certs=/etc/ca.pem"
    parsed = parse_sentinel_url(url)
    assert parsed.connection["ssl"] is True and parsed.sentinel["ssl"] is True
    assert parsed.sentinel["ssl_ca_certs"] == parsed.connection["ssl_ca_certs"] == "/etc/ca.pem"
    store = open_store(url)
    try:
        assert isinstance(store, RedisStore)
        client: Any = store._client
        pool = client.connection_pool
        assert pool.connection_class is redis.sentinel.SentinelManagedSSLConnection
    finally:
        store.close()


def test_a_store_over_tls_to_the_sentinel_and_the_master(tmp_path: Path) -> None:
    with tls_sentinel(tmp_path) as (port, ca):
        url = f"rediss+sentinel://127.0.0.1:{port}/{SERVICE}/0?prefix=tls:"
        store = open_store(f"{url}&ssl_ca_certs={ca}")
        session, _ = make_session("o-tls")
        try:
            store.create_session(session)
            assert store.get_session(session.id) == session
            found = asyncio.run(store.afind_login(session_id=session.id))
            assert found is not None and found[0] == session
        finally:
            store.close()
        # Certificates are checked: without the CA that signed them, no connection.
        untrusted = open_store(url)
        try:
            with pytest.raises(StoreUnavailable) as caught:
                untrusted.get_session(session.id)
            assert "certificate" in caught.value.detail.lower(), caught.value.detail
        finally:
            untrusted.close()


def test_the_repr_names_the_sentinels_not_the_password(cluster: SentinelCluster) -> None:
    url = cluster.url("prefix=repr:&sentinel_password=s3cret").replace("://", "://:s3cret@")
    store = open_store(url)
    try:
        assert "s3cret" not in repr(store)
        assert f"127.0.0.1:{cluster.sentinels[0].port}" in repr(store)
        assert f"/{SERVICE}/0" in repr(store)
    finally:
        store.close()
    byo = RedisStore(redis.sentinel.Sentinel([("127.0.0.1", 1)]).master_for(SERVICE))
    assert repr(byo) == f"RedisStore(\"sentinel master '{SERVICE}'\", prefix='wafer:')"


def test_no_sentinel_answering_is_an_outage() -> None:
    """Sentinels that all refuse: StoreUnavailable, sync and async."""
    store = open_store(f"redis+sentinel://127.0.0.1:{free_port()},127.0.0.1:{free_port()}/x")
    session, _ = make_session("o-outage")
    try:
        with pytest.raises(StoreUnavailable):
            store.create_session(session)
        with pytest.raises(StoreUnavailable):
            asyncio.run(store.afind_login(session_id=session.id))
    finally:
        store.close()


# ------------------------------------------------------------------------ read-only
def test_a_read_only_server_is_an_outage_not_an_error(cluster: SentinelCluster) -> None:
    """A server answering READONLY (a demoted master) gives StoreUnavailable, never a
    Redis error the app would answer with a 500: through Sentinel (redis-py drops the
    connection and asks again), and on a plain client. Reads still work."""
    writer = open_store(cluster.url("prefix=ro:"))
    session, _ = make_session("o-ro")
    writer.create_session(session)
    cluster.wait_replicated()
    with cluster.misled_sentinel("ro") as port:
        stores = [
            (open_store(f"redis+sentinel://127.0.0.1:{port}/ro/0?prefix=ro:"), "now a slave"),
            (RedisStore.from_url(cluster.replica.url, prefix="ro:"), "ReadOnlyError"),
        ]
        other, _ = make_session("o-ro")
        try:
            for store, detail in stores:
                with pytest.raises(StoreUnavailable) as sync_error:
                    store.create_session(other)
                with pytest.raises(StoreUnavailable) as async_error:
                    asyncio.run(store.atouch_session(session.id, last_seen=1.0, expires_at=2.0))
                for caught in (sync_error, async_error):
                    assert detail in caught.value.detail, caught.value.detail
                assert store.get_session(session.id) == session
        finally:
            for store, _ in stores:
                store.close()
            writer.close()


def _until(check: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_a_coordinated_failover_is_followed(pinned_cluster: SentinelCluster) -> None:
    """``SENTINEL FAILOVER``: the old master stays up and answers as a master (here for
    good: it cannot be demoted). The store asks the sentinels where the master is at
    least once a second, so its writes go to the new master rather than on to the old
    one, where they would be lost; meanwhile every failure is StoreUnavailable."""
    own_cluster = pinned_cluster
    store = open_store(own_cluster.url("prefix=co:"))
    before, _ = make_session("o-before")
    store.create_session(before)

    async def on_a_loop(session_id: str) -> Any:
        return await store.afind_login(session_id=session_id)

    loop = asyncio.new_event_loop()
    try:
        assert loop.run_until_complete(on_a_loop(before.id)) is not None  # pools now open
        own_cluster.wait_replicated()
        old = own_cluster.master_port()
        with own_cluster.sentinels[0].client() as sentinel:
            assert sentinel.execute_command("SENTINEL", "FAILOVER", SERVICE)
        unavailable = 0

        def written_on_the_new_master() -> bool:
            nonlocal unavailable
            moved = own_cluster.master_port() != old
            session, _ = make_session("o-during")
            try:
                # Until the switch a write may land on the old master and be lost with
                # it (Sentinel's trade-off, not the store's): only after it is it read.
                store.create_session(session)
                found = loop.run_until_complete(on_a_loop(session.id))
            except StoreUnavailable:
                unavailable += 1
                return False
            return moved and found is not None and found[0] == session

        _until(written_on_the_new_master, "a write and a read on the new master")
        new = own_cluster.wait_for_failover(old)
        assert new == own_cluster.replica.port
        on_new = RedisStore.from_url(f"redis://127.0.0.1:{new}/0", prefix="co:")
        try:

            def lands_on_the_new_master() -> bool:
                session, _ = make_session("o-after")
                store.create_session(session)
                return on_new.get_session(session.id) == session

            _until(lands_on_the_new_master, "writes on the new master")
            assert on_new.get_session(before.id) == before
            assert _role(old) == "master"  # still answering: not what moved the store
            assert store.get_session(before.id) == before
            found = loop.run_until_complete(on_a_loop(before.id))
            assert found is not None and found[0] == before
        finally:
            on_new.close()
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
        store.close()


def _role(port: int) -> str:
    with redis.Redis(port=port, decode_responses=True) as client:
        return str(client.info("replication")["role"])


# ------------------------------------------------------------------------ two apps
def login(app: AppProcess, fake: FakeWeChat, user: str) -> requests.Response:
    code = fake.login(DEMO_APPID, user)["code"]
    return requests.get(f"{app.url}/weapp/login", headers={"X-WX-Code": code}, timeout=10)


def validate(app: AppProcess, skey: str) -> requests.Response:
    return requests.get(f"{app.url}/weapp/user", headers={"X-WX-Skey": skey}, timeout=10)


def test_two_apps_keep_their_sessions_through_a_failover(
    own_cluster: SentinelCluster, fake_server: Any, fake: FakeWeChat, tmp_path: Path
) -> None:
    url = own_cluster.url("prefix=apps:")
    with app_processes(
        ["starlette", "flask"], store_url=url, api_base=fake_server.url, log_dir=tmp_path
    ) as (a, b):
        apps = (a, b)
        skeys = []
        for app, user in ((a, "alice"), (b, "bob")):
            response = login(app, fake, user)
            assert response.status_code == 200, response.text
            skeys.append(response.json()["data"]["skey"])
        assert all(validate(app, s).status_code == 200 for app in apps for s in skeys)
        own_cluster.wait_replicated()

        answers: list[tuple[str, int, dict[str, Any]]] = []
        n = 0

        def every_request() -> set[int]:
            """Each app validates both sessions and makes one login; the statuses."""
            nonlocal n
            statuses = set()
            for app in apps:
                for skey in skeys:
                    response = validate(app, skey)
                    answers.append(("validate", response.status_code, response.json()))
                    statuses.add(response.status_code)
                n += 1
                response = login(app, fake, f"during-{n}")
                answers.append(("login", response.status_code, response.json()))
            return statuses

        # The replica stopped (SIGSTOP) cannot be promoted yet: the requests in between
        # meet no master, whatever the speed of this machine.
        own_cluster.replica.freeze()
        old = own_cluster.kill_master()
        every_request()
        assert {status for _, status, _ in answers} == {503}, answers
        own_cluster.replica.thaw()
        _until(lambda: every_request() == {200}, "both apps to validate again", timeout=90)
        assert own_cluster.wait_for_failover(old) == own_cluster.replica.port

        statuses = Counter(status for _, status, _ in answers)
        assert set(statuses) <= {200, 503}, statuses
        for kind, status, body in answers:
            if status == 503:
                assert body[MAGIC_ID] == 1 and body["reason"] == "store_unavailable", body
                if kind == "validate":  # not the invalid-session answer (code -1)
                    assert body["error"] == "ERR_CHECK_LOGIN_FAILED" and body["code"] == 503
                else:  # a failed login, as the clients read it
                    assert body["error"] == "ERR_LOGIN_FAILED", body

        # New logins on either app validate on both, without a restart.
        for app, user in ((a, "carol"), (b, "dan")):
            response = login(app, fake, user)
            assert response.status_code == 200, response.text
            skey = response.json()["data"]["skey"]
            assert all(validate(other, skey).status_code == 200 for other in apps)
        for app in apps:
            assert app.process.poll() is None
            assert "Traceback" not in app.log_text(), app.log_text()[-3000:]
