"""The MySQL store over TLS, against a private MariaDB that requires it.

The server (``tests/support/mariadb_instance.py``) has a certificate for ``localhost``
signed by a CA made for the test, and refuses unencrypted connections
(``require_secure_transport``). The shared MariaDB on port 3306 is left as it is.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.support.ci import skip_or_fail
from tests.support.mariadb_instance import PASSWORD, MariaDBInstance, require_mariadb_instance
from tests.support.tls_certs import CertificateAuthority, Issued
from wafer_py.exceptions import StoreUnavailable
from wafer_py.stores import sql_async_mysql
from wafer_py.stores.sql import SQLStore
from wafer_py.testing import StoreContract, make_session


@dataclass(frozen=True)
class TLSServer:
    db: MariaDBInstance
    server: Issued
    client: Issued
    other_ca: Path

    def url(self, **options: object) -> str:
        """The store URL with these query options (values quoted)."""
        query = "&".join(f"{k}={quote(str(v), safe='/')}" for k, v in options.items())
        return f"{self.db.url}?{query}" if query else self.db.url


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TLSServer]:
    require_mariadb_instance()
    base = tmp_path_factory.mktemp("mariadb-tls")
    ca = CertificateAuthority("wafer_py test CA")
    # Named for localhost only: 127.0.0.1 passes the CA check but not the identity check.
    server = ca.issue_server(base / "server", hosts=("localhost",))
    client = ca.issue_client(base / "client", "wafer-client")
    other_ca = CertificateAuthority("a CA the server never heard of").write(base / "other.pem")
    with MariaDBInstance(base, tls=server, require_tls=True) as db:
        db.admin(
            "CREATE USER 'x509'@'%' REQUIRE X509",
            "GRANT ALL ON test.* TO 'x509'@'%'",
        )
        yield TLSServer(db, server, client, other_ca)


def refusal(url: str) -> str:
    """The detail of the StoreUnavailable that opening a store on ``url`` raises."""
    with pytest.raises(StoreUnavailable) as caught:
        SQLStore(url)
    return caught.value.detail or ""


def cipher(store: SQLStore) -> str:
    """The TLS cipher of one of the store's connections ('' when not encrypted)."""
    with store._cursor() as cur:
        cur.execute("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
        return str(cur.fetchone()[1])


class TestMariaDBStoreOverTLS(StoreContract):
    @pytest.fixture(autouse=True)
    def _server(self, tls_server: TLSServer) -> None:
        self.tls = tls_server

    def make_store(self) -> SQLStore:
        store = SQLStore(self.tls.url(ssl_ca=self.tls.server.ca), table_prefix="tls_")
        assert cipher(store)  # really over TLS, or the suite proves nothing
        return store


def test_the_server_refuses_plain_connections(tls_server: TLSServer) -> None:
    """The server does require TLS: without it the store cannot connect (MariaDB says
    "Access denied" to the same account it lets in over TLS)."""
    assert "Access denied" in refusal(tls_server.url(ssl_disabled="true"))


def test_a_certificate_of_another_ca_is_refused(tls_server: TLSServer) -> None:
    detail = refusal(tls_server.url(ssl_ca=tls_server.other_ca))
    assert "certificate verify failed" in detail
    assert "not signed by the CA in ssl_ca" in detail  # the setting to look at
    assert PASSWORD not in detail


def test_unverified_tls_is_only_on_request(tls_server: TLSServer) -> None:
    """ssl_verify_cert=false: encrypted, certificate unchecked (the operator's choice)."""
    url = tls_server.url(ssl_ca=tls_server.other_ca, ssl_verify_cert="false")
    with SQLStore(url, table_prefix="tls_") as store:
        assert cipher(store)


def test_the_identity_check_compares_the_host(tls_server: TLSServer) -> None:
    ca = tls_server.server.ca
    # The certificate names localhost only.
    detail = refusal(tls_server.url(ssl_ca=ca, ssl_verify_identity="true"))
    assert "not valid for '127.0.0.1'" in detail
    assert "does not name the URL's host (ssl_verify_identity)" in detail
    by_name = tls_server.url(ssl_ca=ca, ssl_verify_identity="true").replace(
        "@127.0.0.1:", "@localhost:"
    )
    with SQLStore(by_name, table_prefix="tls_") as store:
        assert cipher(store)


def test_a_client_certificate(tls_server: TLSServer) -> None:
    """An account that requires a client certificate: ssl_cert and ssl_key present it."""
    port = tls_server.db.port
    base = f"mysql://x509@127.0.0.1:{port}/test?ssl_ca={tls_server.server.ca}"
    assert "Access denied" in refusal(base)
    client = tls_server.client
    url = f"{base}&ssl_cert={client.cert}&ssl_key={client.key}"
    with SQLStore(url, table_prefix="tls_") as store:
        assert cipher(store)
        assert store.get_user("nobody") is None


def test_driver_options_reach_the_connection(tls_server: TLSServer) -> None:
    url = tls_server.url(
        ssl_ca=tls_server.server.ca,
        charset="utf8mb4",
        init_command="SET SESSION wait_timeout = 1234",
        program_name="wafer-tls-test",
        read_timeout=7,
    )
    with SQLStore(url, table_prefix="tls_") as store:
        with store._cursor() as cur:
            cur.execute("SELECT @@session.wait_timeout, @@character_set_client")
            assert cur.fetchone() == (1234, "utf8mb4")
        pooled = store._pool.borrow()
        try:
            assert pooled.conn._read_timeout == 7.0
        finally:
            store._pool.give_back(pooled)


def test_the_cli_says_in_one_line_why_it_cannot_connect(tls_server: TLSServer) -> None:
    url = tls_server.url(ssl_ca=tls_server.other_ca)
    env = {k: v for k, v in os.environ.items() if not k.startswith("WAFER_")}
    result = subprocess.run(
        [sys.executable, "-m", "wafer_py", "sessions", "stats", "--store", url],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert result.returncode == 2, result
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith("wafer-py sessions: ")
    assert "certificate verify failed" in line
    assert "wafer:***@127.0.0.1" in line
    assert PASSWORD not in line and quote(PASSWORD, safe="") not in line


# -- the asyncio path (validation on the event loop) -------------------------------------
def test_validation_on_the_loop_is_over_tls_too(tls_server: TLSServer) -> None:
    url = tls_server.url(ssl_ca=tls_server.server.ca)
    with SQLStore(url, table_prefix="tls_") as store:
        if not store.supports_async:
            skip_or_fail(f"{sql_async_mysql.DRIVER} is not installed")
        session, _ = make_session("o-tls-async")
        store.create_session(session)

        async def main() -> str:
            found = await store.afind_login(session_id=session.id)
            assert found is not None and found[0] == session
            assert store._async_pools is not None
            pool = await store._async_pools.get()
            ((conn, _),) = pool._idle
            result = await conn.execute("SHOW SESSION STATUS LIKE 'Ssl_cipher'", {})
            return str((await result.fetchall())[0][1])

        assert asyncio.run(main())


def test_validation_on_the_loop_refuses_a_certificate_of_another_ca(
    tls_server: TLSServer,
) -> None:
    url = tls_server.url(ssl_ca=tls_server.other_ca)
    with SQLStore(url, create_tables=False) as store:
        if not store.supports_async:
            skip_or_fail(f"{sql_async_mysql.DRIVER} is not installed")
        with pytest.raises(StoreUnavailable) as caught:
            asyncio.run(store.afind_login(session_id="x"))
    detail = caught.value.detail or ""
    assert "certificate verify failed" in detail
    assert "not signed by the CA in ssl_ca" in detail
    assert PASSWORD not in detail
