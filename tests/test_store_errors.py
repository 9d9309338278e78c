"""A broken store is a 503 in the protocol's format, never a 500 or a re-login."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from tests.conftest import serve_example
from wafer_py import WaferAuth
from wafer_py.config import DEMO_APPID
from wafer_py.fakewechat import FakeWeChat
from wafer_py.protocol import MAGIC_ID


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
