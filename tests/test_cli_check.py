"""``wafer-py check``: the configuration in force with each value's source, secrets
masked; the store opened read-only; WeChat asked for a token (the fake, over HTTP).
Exit 0 when all is well, 1 with one line per problem, each naming the fix."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support import services
from tests.support.constants import DEMO_ENV, TEST_SECRET
from wafer_py.fakewechat import FakeWeChatServer
from wafer_py.stores import SQLiteStore
from wafer_py.stores.sql import SQLStore

WRONG_SECRET = "wrong-secret-of-the-demo-app-00000"


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    SQLiteStore(str(tmp_path / "servers.db")).close()  # the servers' store
    return f"sqlite:///{tmp_path / 'servers.db'}"


def check(
    *args: str, env: dict[str, str], cwd: Path | None = None
) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("WAFER_")}
    done = subprocess.run(
        [sys.executable, "-m", "wafer_py", "check", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**environ, **env},
        cwd=cwd,
    )
    assert "Traceback" not in done.stderr
    problems = done.stderr.strip().splitlines()
    assert all(line.startswith("wafer-py check: ") for line in problems), done.stderr
    return done, [line.removeprefix("wafer-py check: ") for line in problems]


def good_env(fake_server: FakeWeChatServer, store_url: str) -> dict[str, str]:
    return {
        **DEMO_ENV,
        "WAFER_WECHAT_API_BASE": fake_server.url,
        "WAFER_STORE_URL": store_url,
        "WAFER_SECRET_KEY": TEST_SECRET,
    }


def test_a_good_configuration_exits_0_and_says_where_each_value_came_from(
    fake_server: FakeWeChatServer, sqlite_url: str
) -> None:
    env = good_env(fake_server, sqlite_url)
    done, problems = check(env=env)
    assert done.returncode == 0 and problems == []
    assert "all good" in done.stdout
    assert "WeChat:  ok, an access_token was handed out" in done.stdout
    for secret in (DEMO_ENV["WAFER_APP_SECRET"], TEST_SECRET):
        assert secret not in done.stdout
    done, _ = check("--json", env=env)
    report: dict[str, Any] = json.loads(done.stdout)
    assert report["ok"] is True and report["problems"] == []
    config = report["config"]
    assert config["appid"] == {
        "variable": "WAFER_APPID",
        "value": DEMO_ENV["WAFER_APPID"],
        "source": "env",
    }
    assert config["app_secret"]["value"] == "set, 32 characters (masked)"
    assert config["secret_keys"]["value"] == "1 key (masked)"
    assert config["session_ttl"]["source"] == "default"
    assert report["store"] == {
        "url": sqlite_url,
        "ok": True,
        "kind": "SQLiteStore",
        "shared": False,
    }
    assert report["wechat"]["ok"] is True


def test_the_store_flag_wins_and_is_labelled(
    fake_server: FakeWeChatServer, sqlite_url: str, tmp_path: Path
) -> None:
    env = good_env(fake_server, f"sqlite:///{tmp_path / 'elsewhere.db'}")
    done, problems = check("--store", sqlite_url, "--json", "--no-wechat", env=env)
    assert done.returncode == 0, problems
    report = json.loads(done.stdout)
    assert report["config"]["store_url"] == {
        "variable": "WAFER_STORE_URL",
        "value": sqlite_url,
        "source": "flag",
    }
    assert report["wechat"] == {"skipped": "--no-wechat"}


def test_wrong_credentials_are_one_line_naming_the_setting(
    fake_server: FakeWeChatServer, sqlite_url: str
) -> None:
    env = {**good_env(fake_server, sqlite_url), "WAFER_APP_SECRET": WRONG_SECRET}
    done, problems = check(env=env)
    assert done.returncode == 1
    assert len(problems) == 1
    assert "refused WAFER_APP_SECRET" in problems[0] and "errcode 40125" in problems[0]
    assert WRONG_SECRET not in done.stdout + done.stderr
    env["WAFER_APPID"] = "wx0000000000000000"
    _, problems = check(env=env)
    assert problems == [
        f"WeChat at {fake_server.url} does not know WAFER_APPID wx0000000000000000 "
        "(errcode 40013): check the AppID (wx followed by 16 characters)"
    ]


def test_an_unreachable_wechat_is_named_and_can_be_skipped(sqlite_url: str) -> None:
    env = {**DEMO_ENV, "WAFER_WECHAT_API_BASE": "http://127.0.0.1:1", "WAFER_STORE_URL": sqlite_url}
    done, problems = check(env=env)
    assert done.returncode == 1 and len(problems) == 1
    assert problems[0].startswith("cannot reach WeChat at http://127.0.0.1:1 (")
    done, problems = check("--no-wechat", env=env)
    assert done.returncode == 0 and problems == []
    assert "WeChat:  skipped (--no-wechat)" in done.stdout


def test_a_missing_sqlite_store_is_named_and_not_created(tmp_path: Path) -> None:
    done, problems = check("--no-wechat", env=dict(DEMO_ENV), cwd=tmp_path)
    assert done.returncode == 1
    assert problems == [
        "no SQLite store at wafer_sessions.db: give the store your servers use with --store "
        "URL or WAFER_STORE_URL (a relative path is read from the current directory; a "
        "wafer_py server creates the file when it first starts)"
    ]
    assert list(tmp_path.iterdir()) == []  # no file, no key file


@pytest.mark.parametrize("kind", ["postgres", "mysql"])
def test_a_mistyped_table_prefix_is_named_and_nothing_is_created(kind: str) -> None:
    with services.fresh_store_url(kind) as url:
        env = {**DEMO_ENV, "WAFER_STORE_URL": url, "WAFER_SECRET_KEY": TEST_SECRET}
        done, problems = check("--no-wechat", env=env)
        assert done.returncode == 1 and len(problems) == 1
        assert "do not exist" in problems[0] and "check table_prefix in the URL" in problems[0]
        probe = SQLStore(url, create_tables=False)
        try:
            assert len(probe.missing_tables()) == 4
        finally:
            probe.close()


def test_a_store_that_does_not_answer_names_the_driver_error() -> None:
    env = {**DEMO_ENV, "WAFER_STORE_URL": "redis://:hunter2@127.0.0.1:1/0"}
    done, problems = check("--no-wechat", env={**env, "WAFER_SECRET_KEY": TEST_SECRET})
    assert done.returncode == 1 and len(problems) == 1
    assert "redis://:***@127.0.0.1:1/0" in problems[0] and "refused" in problems[0].lower()
    assert "hunter2" not in done.stdout + done.stderr


def test_a_shared_store_without_a_secret_key_is_a_problem() -> None:
    url = services.require("redis") + "?prefix=wafer-check-test:"
    done, problems = check("--no-wechat", env={**DEMO_ENV, "WAFER_STORE_URL": url})
    assert done.returncode == 1
    assert len(problems) == 1 and problems[0].startswith("WAFER_SECRET_KEY is not set")
    done, problems = check(
        "--no-wechat", env={**DEMO_ENV, "WAFER_STORE_URL": url, "WAFER_SECRET_KEY": TEST_SECRET}
    )
    assert done.returncode == 0, problems


def test_a_mistyped_variable_and_a_wrong_value_are_each_a_line(sqlite_url: str) -> None:
    env = {
        **DEMO_ENV,
        "WAFER_STORE": "redis://127.0.0.1:6379/0",
        "WAFER_STORE_URL": sqlite_url,
        "WAFER_SESSION_TTL": "a week",
    }
    done, problems = check("--no-wechat", env=env)
    assert done.returncode == 1
    assert problems == [
        "WAFER_STORE is not a wafer_py setting and is ignored; did you mean WAFER_STORE_URL?",
        "WAFER_SESSION_TTL must be a whole number of seconds",
    ]
    report = json.loads(check("--no-wechat", "--json", env=env)[0].stdout)
    assert report["config"]["session_ttl"] == {
        "variable": "WAFER_SESSION_TTL",
        "value": "a week",
        "source": "env",
    }
