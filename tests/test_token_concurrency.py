"""One access_token refresh at a time, across real processes, threads and CLI commands.

Against the fake WeChat over real HTTP and one shared store, counting the fake's
upstream token calls:

* 4 processes x 32 threads ask for a token at once on a cold cache: exactly one call.
  Then WeChat's tokens are expired mid-run: every thread's next call is refused (42001)
  by whichever token it holds, and exactly one more token call follows.
* 12 ``wafer-py token get`` commands started at once: exactly one call; another 12
  with the token expired and replaced in the middle: exactly one more.

The store is a parameter: SQLite, and the shared Redis, PostgreSQL and MariaDB servers.
"""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import token_worker
from tests.support import services
from tests.support.command import run_command
from wafer_py.config import DEMO_APP_SECRET, DEMO_APPID
from wafer_py.fakewechat import FakeWeChat
from wafer_py.stores import open_store
from wafer_py.wechat import WeChatClient
from wafer_py.wechat.api import WeChatAPI
from wafer_py.wechat.tokens import AccessTokenCache

STABLE = "/cgi-bin/stable_token"
PROCESSES, THREADS, COMMANDS = 4, 32, 12
# A WeChat round trip long enough that the callers really overlap the refresh (the
# commands take longer to start: without the lock, 1 s gives ~12 calls instead of 1).
# Twelve commands, not more: each is an interpreter start (~0.3 s of CPU), and on two
# cores more of them do not overlap any more than these.
LATENCY, COMMAND_LATENCY = 0.2, 1.0


@pytest.fixture(params=services.STORE_KINDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty store of each kind in turn, in a namespace of its own, made as a server
    makes it (``wafer-py token`` uses the servers' store and creates none)."""
    with services.fresh_store_url(str(request.param), tmp_path) as url:
        open_store(url).close()
        yield url


@pytest.fixture
def slow_fake(fake: FakeWeChat, fake_server: Any) -> Iterator[FakeWeChat]:
    fake.latency = LATENCY
    yield fake
    fake.latency = 0.0


def test_processes_and_threads_share_one_refresh(
    store_url: str, slow_fake: FakeWeChat, fake_server: Any
) -> None:
    fake = slow_fake
    openid = fake.login(DEMO_APPID, "alice")["openid"]
    session_key = fake.session_key_of(DEMO_APPID, openid)
    ctx = multiprocessing.get_context("spawn")
    start, middle, resume = (ctx.Barrier(PROCESSES + 1) for _ in range(3))
    results: Any = ctx.Queue()
    processes = [
        ctx.Process(
            target=token_worker.run,
            daemon=True,
            args=(
                store_url,
                fake_server.url,
                openid,
                session_key,
                THREADS,
                start,
                middle,
                resume,
                results,
            ),
        )
        for _ in range(PROCESSES)
    ]
    for process in processes:
        process.start()
    try:
        start.wait(60)  # every process is ready: go
        middle.wait(60)  # every thread of phase 1 is done
        after_cold_start = fake.calls[STABLE]
        expired = fake.expire_tokens()
        checks_before = fake.calls["/wxa/checksession"]
        resume.wait(60)
        outcomes = [results.get(timeout=60) for _ in processes]
    finally:
        for process in processes:
            process.join(10)
            if process.is_alive():
                process.kill()
    first = [o for phase1, _ in outcomes for o in phase1]
    second = [o for _, phase2 in outcomes for o in phase2]
    assert [o for o in first + second if o[0] != "ok"] == []
    assert len(first) == len(second) == PROCESSES * THREADS

    assert after_cold_start == 1  # 128 callers, one upstream call
    assert expired == 1
    assert fake.calls[STABLE] == 2  # the forced expiry: exactly one more
    old_tokens = {token for _, token, _ in first}
    new_tokens = {token for _, token, _ in second}
    assert len(old_tokens) == len(new_tokens) == 1 and old_tokens != new_tokens
    assert all(valid for _, _, valid in first + second)
    # Each rejected call was retried once: at most one extra checksession per caller.
    rejected = fake.calls["/wxa/checksession"] - checks_before - PROCESSES * THREADS
    assert 1 <= rejected <= PROCESSES * THREADS


def _token_commands(store_url: str, api_base: str, count: int) -> list[subprocess.Popen[str]]:
    env = {
        **os.environ,
        "WAFER_STORE_URL": store_url,
        "WAFER_WECHAT_API_BASE": api_base,
        "WAFER_APPID": DEMO_APPID,
        "WAFER_APP_SECRET": DEMO_APP_SECRET,
    }
    return [
        subprocess.Popen(
            [sys.executable, "-m", "wafer_py", "token", "get", "--reveal"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(count)
    ]


def _finish(commands: list[subprocess.Popen[str]]) -> list[str]:
    tokens = []
    for command in commands:
        out, err = command.communicate(timeout=120)
        assert command.returncode == 0, err
        tokens.append(out.strip())
    return tokens


def test_token_get_commands_share_one_refresh(
    store_url: str, slow_fake: FakeWeChat, fake_server: Any
) -> None:
    fake = slow_fake
    fake.latency = COMMAND_LATENCY
    tokens = _finish(_token_commands(store_url, fake_server.url, COMMANDS))
    assert fake.calls[STABLE] == 1
    assert len(set(tokens)) == 1 and len(tokens[0]) > 100
    (old,) = set(tokens)

    # Mid-run, WeChat expires the token and a server process finds out (42001) and
    # refreshes through the same store, while 12 more commands run.
    openid = fake.login(DEMO_APPID, "alice")["openid"]
    session_key = fake.session_key_of(DEMO_APPID, openid)
    client = WeChatClient(DEMO_APPID, DEMO_APP_SECRET, api_base=fake_server.url)
    store = open_store(store_url)
    try:
        api = WeChatAPI(client, AccessTokenCache(store, client))
        commands = _token_commands(store_url, fake_server.url, COMMANDS)
        time.sleep(0.5)
        fake.expire_tokens()
        assert api.check_session_key(openid, session_key) is True
        new = api.access_token()
        tokens = _finish(commands)
    finally:
        client.close()
        store.close()
    assert new != old
    assert set(tokens) <= {old, new}
    assert fake.calls[STABLE] == 2
    assert _finish(_token_commands(store_url, fake_server.url, 1)) == [new]
    assert fake.calls[STABLE] == 2


def _token_command(env: dict[str, str], command: str) -> subprocess.CompletedProcess[str]:
    """``wafer-py token <command>`` with ``env`` (in this process: the commands started
    side by side above are the processes); what it printed."""
    return run_command("token", command, env=env)


def test_token_command_errors_are_one_line(
    store_url: str, fake_server: Any, fake: FakeWeChat
) -> None:
    env = {
        **os.environ,
        "WAFER_STORE_URL": store_url,
        "WAFER_WECHAT_API_BASE": fake_server.url,
        "WAFER_APPID": DEMO_APPID,
        "WAFER_APP_SECRET": "not-the-secret",
    }
    run = _token_command(env, "get")
    assert run.returncode == 2 and run.stdout == ""
    assert run.stderr == (
        f"wafer-py token: WeChat at {fake_server.url} refused WAFER_APP_SECRET for AppID "
        f"{DEMO_APPID} (errcode 40125): copy the AppSecret again from the mini-program's "
        "admin console (it changes when reset)\n"
    )
    fake.inject(STABLE, 45009)
    env["WAFER_APP_SECRET"] = DEMO_APP_SECRET
    run = _token_command(env, "refresh")
    assert run.returncode == 2 and len(run.stderr.splitlines()) == 1
    assert "daily quota" in run.stderr and "Traceback" not in run.stderr
    # Masked unless --reveal.
    run = _token_command(env, "get")
    token = fake.server_api.tokens.current(DEMO_APPID)
    assert run.returncode == 0 and token is not None
    assert token not in run.stdout and token[:6] in run.stdout
    assert f"access_token:{DEMO_APPID}" in run.stdout
