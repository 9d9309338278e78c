"""``wafer-py token``, run as a shell script runs it: a real process, the fake WeChat over
HTTP, a real store. ``--store`` and ``--json`` as in ``sessions``; exit 2 on a failure,
with the cause named (the store driver's error, WeChat's errcode and the setting to fix);
a store is never created; ``refresh --force`` says when WeChat kept the token."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.constants import DEMO_ENV
from wafer_py.fakewechat import FakeWeChatServer
from wafer_py.stores import SQLiteStore


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    """A store a server already made (the token cache lives in the servers' store)."""
    SQLiteStore(str(tmp_path / "servers.db")).close()
    return f"sqlite:///{tmp_path / 'servers.db'}"


def token(
    *args: str, api_base: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("WAFER_")}
    environ.update({**DEMO_ENV, "WAFER_WECHAT_API_BASE": api_base, **(env or {})})
    return subprocess.run(
        [sys.executable, "-m", "wafer_py", "token", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=environ,
    )


def failure(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert result.stdout == "" and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("wafer-py token: ")
    return lines[0]


def test_get_with_store_and_json(fake_server: FakeWeChatServer, store_url: str) -> None:
    done = token("get", "--json", "--store", store_url, api_base=fake_server.url)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["key"] == f"access_token:{DEMO_ENV['WAFER_APPID']}"
    assert answer["masked"] is True and "..." in answer["token"]
    assert 7000 < answer["expires_in"] <= 7200
    revealed = token("get", "--json", "--reveal", "--store", store_url, api_base=fake_server.url)
    full = json.loads(revealed.stdout)["token"]
    assert full.startswith(answer["token"][:6]) and full.endswith(answer["token"][-4:])


def test_a_second_forced_refresh_within_30_s_says_why_the_token_did_not_change(
    fake_server: FakeWeChatServer, store_url: str
) -> None:
    first = token("get", "--reveal", "--store", store_url, api_base=fake_server.url)
    forced = token("refresh", "--force", "--json", "--store", store_url, api_base=fake_server.url)
    assert forced.returncode == 0, forced.stderr
    assert json.loads(forced.stdout)["changed"] is True
    again = token("refresh", "--force", "--reveal", "--store", store_url, api_base=fake_server.url)
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() != first.stdout.strip()
    assert "the token did not change" in again.stderr
    assert "within 30 s" in again.stderr and "run it again in 30 s" in again.stderr
    quiet = token("refresh", "--force", "--json", "--store", store_url, api_base=fake_server.url)
    answer = json.loads(quiet.stdout)
    assert answer["changed"] is False and "30 s" in answer["reason"]


def test_a_wrong_secret_names_the_setting_and_the_errcode(
    fake_server: FakeWeChatServer, store_url: str
) -> None:
    wrong = {"WAFER_APP_SECRET": "not-the-secret-of-this-app-000000"}
    line = failure(token("get", "--store", store_url, api_base=fake_server.url, env=wrong))
    assert "refused WAFER_APP_SECRET" in line and "errcode 40125" in line
    assert "not-the-secret" not in line


def test_an_unreachable_wechat_names_the_network_error(store_url: str) -> None:
    line = failure(token("get", "--store", store_url, api_base="http://127.0.0.1:1"))
    assert "cannot reach WeChat at http://127.0.0.1:1 (ConnectionRefusedError" in line
    assert "WAFER_WECHAT_API_BASE" in line


def test_a_missing_store_is_named_and_not_created(
    fake_server: FakeWeChatServer, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'typo.db'}"
    line = failure(token("get", api_base=fake_server.url, env={"WAFER_STORE_URL": url}))
    assert f"no SQLite store at {tmp_path / 'typo.db'}" in line
    assert not (tmp_path / "typo.db").exists()


def test_a_store_driver_error_is_named(fake_server: FakeWeChatServer) -> None:
    """``token`` once printed only "the session store is unavailable"."""
    url = "redis://:hunter2@127.0.0.1:1/0"
    line = failure(token("get", "--store", url, api_base=fake_server.url))
    assert "redis://:***@127.0.0.1:1/0" in line and "hunter2" not in line
    assert "refused" in line.lower()
