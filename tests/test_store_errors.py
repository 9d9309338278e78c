"""A broken store is a 503 in the protocol's format, never a 500 or a re-login."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from tests.support.servers import serve_example
from wafer_py import WaferAuth
from wafer_py.config import DEMO_APPID
from wafer_py.exceptions import StoreUnavailable
from wafer_py.fakewechat import FakeWeChat
from wafer_py.models import User
from wafer_py.protocol import MAGIC_ID
from wafer_py.stores import MemoryStore
from wafer_py.stores.base import OUTAGE, call_store


@pytest.mark.parametrize("framework", ["starlette", "flask"])
def test_unreadable_store_answers_503(
    framework: str, make_auth: Callable[..., WaferAuth], fake: FakeWeChat, tmp_path: Path
) -> None:
    path = tmp_path / "broken.db"
    auth = make_auth(store_url=f"sqlite:///{path}")
    with serve_example(framework, auth) as base:
        code = fake.login(DEMO_APPID, "unlucky")["code"]
        skey = requests.get(f"{base}/weapp/login", headers={"X-WX-Code": code}, timeout=10).json()[
            "data"
        ]["skey"]
        # The database file turns to garbage (a disk fault, a bad copy): a real SQLite error.
        auth.store.close()
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(f"{path}{suffix}"):
                os.remove(f"{path}{suffix}")
        path.write_bytes(os.urandom(8192))

        for response in (
            requests.get(f"{base}/weapp/user", headers={"X-WX-Skey": skey}, timeout=10),
            requests.get(
                f"{base}/weapp/login",
                headers={"X-WX-Code": fake.login(DEMO_APPID, "unlucky")["code"]},
                timeout=10,
            ),
        ):
            assert response.status_code == 503, response.text
            body = response.json()
            assert body[MAGIC_ID] == 1
            assert body["reason"] == "store_unavailable"
            assert "not a database" not in body["message"]  # no internals in the answer
        # Validation is not a login: no code -1, so a v2 client does not start logging in.
        assert (
            requests.get(f"{base}/weapp/user", headers={"X-WX-Skey": skey}, timeout=10).json()[
                "code"
            ]
            == 503
        )


@pytest.fixture(autouse=True)
def _no_outage_left_over() -> None:
    OUTAGE.down = False  # the outage state is per process; tests start without one


class FlakyStore(MemoryStore):
    """A memory store whose lookups fail while ``broken`` is set, as a driver would."""

    broken = False

    def get_user(self, openid: str) -> User | None:
        if self.broken:
            raise ConnectionError("connection refused (the server is down)")
        return super().get_user(openid)


def test_an_outage_logs_one_line_when_it_starts_and_one_when_it_ends(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = FlakyStore()
    store.ensure_user("o1", unionid=None, profile={}, now=1.0)
    caplog.set_level(logging.DEBUG, logger="wafer_py")
    assert call_store(store.get_user, "o1") is not None
    store.broken = True
    for _ in range(50):
        with pytest.raises(StoreUnavailable) as raised:
            call_store(store.get_user, "o1")
        assert "refused" not in raised.value.message  # the driver's words are for the log
    store.broken = False
    for _ in range(5):
        assert call_store(store.get_user, "o1") is not None
    loud = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [r.levelno for r in loud] == [logging.ERROR, logging.WARNING]
    assert "session store unavailable" in loud[0].getMessage()
    assert "connection refused" in loud[0].getMessage()
    assert "reachable again" in loud[1].getMessage()
    assert sum(r.levelno == logging.DEBUG for r in caplog.records) == 49


def test_a_call_begun_before_the_outage_does_not_end_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = FlakyStore()
    store.ensure_user("o1", unionid=None, profile={}, now=1.0)
    caplog.set_level(logging.WARNING, logger="wafer_py")

    def slow_success() -> User | None:
        # Another request notices the outage while this one is still in flight.
        store.broken = True
        with pytest.raises(StoreUnavailable):
            call_store(store.get_user, "o1")
        store.broken = False
        return MemoryStore.get_user(store, "o1")

    assert call_store(slow_success) is not None
    assert [r.levelno for r in caplog.records] == [logging.ERROR]
    assert call_store(store.get_user, "o1") is not None  # made during the outage: it ends
    assert [r.levelno for r in caplog.records] == [logging.ERROR, logging.WARNING]
