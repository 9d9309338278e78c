"""Logins have a bound: a queue limit, a deadline that counts the wait, and no call to
WeChat for a client that already hung up (issue #11, item 3).

Over real HTTP: the example apps in their own processes (Starlette under uvicorn, Flask
under gunicorn), the fake WeChat slowed down or blackholed through its latency control.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.support.app_process import AppProcess, app_process
from wafer_py.exceptions import ERR_LOGIN_FAILED
from wafer_py.fakewechat import FakeWeChat, FakeWeChatServer
from wafer_py.protocol import MAGIC_ID

JSCODE2SESSION = "/sns/jscode2session"
#: A WeChat that never answers (the fake's answers wait this long, or until released).
BLACKHOLE = 3600.0


@contextmanager
def serving(
    framework: str, fake_server: FakeWeChatServer, tmp_path: Path, threads: int = 8, **env: str
) -> Iterator[AppProcess]:
    store_url = f"sqlite:///{tmp_path}/sessions-{framework}.db"
    with app_process(
        framework,
        store_url=store_url,
        api_base=fake_server.url,
        log_dir=tmp_path,
        threads=threads,
        **env,
    ) as app:
        yield app


@contextmanager
def blackholed(fake: FakeWeChat) -> Iterator[None]:
    """WeChat accepts the calls and never answers, until the block ends."""
    fake.latency = BLACKHOLE
    try:
        yield
    finally:
        fake.latency = 0.0  # releases the answers still waiting


def abandon_login(url: str, code: str) -> None:
    """A client that sends a login and hangs up without reading the answer."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        request = (
            f"GET /weapp/login HTTP/1.1\r\nHost: {host}\r\nX-WX-Code: {code}\r\n"
            "Connection: close\r\n\r\n"
        )
        sock.sendall(request.encode("ascii"))


def login(url: str, code: str, timeout: float = 30) -> tuple[requests.Response, float]:
    """One login; the answer and how long it took."""
    started = time.monotonic()
    answer = requests.get(f"{url}/weapp/login", headers={"X-WX-Code": code}, timeout=timeout)
    return answer, time.monotonic() - started


def logins_at_once(url: str, codes: list[str]) -> list[tuple[requests.Response, float]]:
    """Logins sent together, each from its own thread; answers in the order of ``codes``."""
    results: list[Any] = [None] * len(codes)

    def run(i: int) -> None:
        try:
            results[i] = login(url, codes[i])
        except requests.RequestException as exc:
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(codes))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for result in results:
        if isinstance(result, Exception):
            raise AssertionError(f"a login got no answer: {result!r}")
    return results


def settled_calls(fake: FakeWeChat, quiet: float = 1.0, limit: float = 30.0) -> int:
    """WeChat's count of jscode2session calls once it has not moved for ``quiet`` s."""
    deadline = time.monotonic() + limit
    last, since = fake.calls[JSCODE2SESSION], time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.1)
        now = fake.calls[JSCODE2SESSION]
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            break
    return last


def assert_busy(answer: requests.Response) -> None:
    """A 503 in the protocol's login error format, with a Retry-After header."""
    assert answer.status_code == 503, answer.text
    body = answer.json()
    assert body[MAGIC_ID] == 1 and body["error"] == ERR_LOGIN_FAILED
    assert body["reason"] in ("logins_busy", "login_queue_timeout")
    assert int(answer.headers["Retry-After"]) >= 1


# ------------------------------------------------- 600 abandoned, then a real one


@pytest.mark.parametrize("framework", ["starlette", "flask"])
def test_abandoned_logins_do_not_reach_wechat_and_a_real_login_gets_through(
    framework: str, fake: FakeWeChat, fake_server: FakeWeChatServer, tmp_path: Path
) -> None:
    """600 clients send a junk-code login and hang up, against a WeChat answering in
    100 ms: at most 100 of them reach WeChat, and a real login made right after
    succeeds within 2.5 s (retrying on 503, as a client told Retry-After would)."""
    fake.latency = 0.1
    with serving(framework, fake_server, tmp_path) as app:

        def flood(part: int) -> None:
            for i in range(60):
                abandon_login(app.url, f"junk{part}x{i}")

        senders = [threading.Thread(target=flood, args=(part,)) for part in range(10)]
        for t in senders:
            t.start()
        for t in senders:
            t.join()

        code = fake.login(user="real-after-the-flood")["code"]
        started = time.monotonic()
        while True:
            left = 2.5 - (time.monotonic() - started)
            assert left > 0, "the real login did not get through within 2.5 s"
            try:
                answer, _ = login(app.url, code, timeout=left)
            except requests.Timeout:
                raise AssertionError("the real login did not get through within 2.5 s") from None
            if answer.status_code != 503:
                break
            assert_busy(answer)
            time.sleep(0.1)
        assert answer.status_code == 200, answer.text
        assert answer.json()["code"] == 0
        assert settled_calls(fake) - 1 <= 100, app.log_text()[-2000:]


# ------------------------------------------------------ a WeChat that never answers


@pytest.mark.parametrize("framework", ["starlette", "flask"])
def test_a_blackholed_wechat_answers_every_queued_login_within_its_timeout(
    framework: str, fake: FakeWeChat, fake_server: FakeWeChatServer, tmp_path: Path
) -> None:
    """20 logins at once, 4 slots, login_timeout 1.5 s, WeChat never answers: each login
    is answered (503) within its own timeout, not after its place in the queue times it
    (20 / 4 x 1.5 s). Asserted generously: every answer before twice the timeout."""
    timeout = 1.5
    env = {"WAFER_MAX_CONCURRENT_LOGINS": "4", "WAFER_LOGIN_TIMEOUT": str(timeout)}
    with serving(framework, fake_server, tmp_path, threads=32, **env) as app:
        codes = [fake.login(user=f"blackholed-{i}")["code"] for i in range(20)]
        with blackholed(fake):
            results = logins_at_once(app.url, codes)
    for answer, took in results:
        assert answer.status_code == 503, answer.text
        assert answer.json()["error"] == ERR_LOGIN_FAILED
        assert took < 2 * timeout, f"a login took {took:.1f} s"
    # The running ones gave up on WeChat; a queued one on its wait, or, handed a slot
    # before its deadline, on WeChat with the time it had left.
    reasons = {answer.json()["reason"] for answer, _ in results}
    assert "wechat_unavailable" in reasons
    assert reasons <= {"login_queue_timeout", "wechat_unavailable"}
    for answer, _ in results:
        if answer.json()["reason"] == "login_queue_timeout":
            assert_busy(answer)


# ------------------------------------------------------------------- a full queue


@pytest.mark.parametrize("framework", ["starlette", "flask"])
def test_a_full_login_queue_answers_503_with_retry_after_at_once(
    framework: str, fake: FakeWeChat, fake_server: FakeWeChatServer, tmp_path: Path
) -> None:
    """2 slots and 3 places in the queue, all taken by logins waiting on a WeChat that
    does not answer: the next login is refused at once (503, Retry-After), long before
    the 10 s the others may wait."""
    env = {
        "WAFER_MAX_CONCURRENT_LOGINS": "2",
        "WAFER_MAX_QUEUED_LOGINS": "3",
        "WAFER_LOGIN_TIMEOUT": "10",
    }
    with serving(framework, fake_server, tmp_path, threads=16, **env) as app:
        codes = [fake.login(user=f"waiting-{i}")["code"] for i in range(5)]
        with blackholed(fake):
            waiting: list[Any] = []
            holders = [
                threading.Thread(target=lambda c: waiting.append(login(app.url, c)), args=(c,))
                for c in codes
            ]
            for t in holders:
                t.start()
            deadline = time.monotonic() + 10
            while fake.calls[JSCODE2SESSION] < 2:  # both slots wait on WeChat
                assert time.monotonic() < deadline, "the logins did not reach WeChat"
                time.sleep(0.02)
            time.sleep(0.5)  # and the three others have reached the queue
            answer, took = login(app.url, fake.login(user="one-too-many")["code"], timeout=8)
            assert_busy(answer)
            assert answer.json()["reason"] == "logins_busy"
            assert took < 5, f"the refusal took {took:.1f} s"
            assert fake.calls[JSCODE2SESSION] == 2
        for t in holders:
            t.join()
    # Released, the five got their answers (WeChat answered once the block ended).
    assert len(waiting) == 5
