"""The readiness probe every server start waits on: each transient error is "not yet"."""

from __future__ import annotations

import http.client
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
import redis
import requests
import urllib3

from tests.support.probe import NotReady, exit_status, wait_for_http, wait_until


def test_every_transient_error_is_not_yet() -> None:
    errors: list[BaseException] = [
        requests.ConnectionError("refused"),
        requests.ReadTimeout("a worker still booting"),
        requests.exceptions.ChunkedEncodingError("an answer cut short"),
        urllib3.exceptions.ProtocolError("a raw read cut short"),
        urllib3.exceptions.IncompleteRead(3, 10),
        http.client.RemoteDisconnected("closed mid-answer"),
        http.client.BadStatusLine("garbage"),
        ConnectionResetError("reset"),
        ConnectionRefusedError("refused"),
        TimeoutError("a raw socket's timeout"),
        httpx.ConnectError("refused"),
        httpx.ReadTimeout("a worker still booting"),
        httpx.RemoteProtocolError("closed mid-answer"),
        redis.exceptions.BusyLoadingError("LOADING Redis is loading the dataset in memory"),
        redis.exceptions.ConnectionError("refused"),
        redis.exceptions.TimeoutError("timed out"),
    ]

    def check() -> str:
        if errors:
            raise errors.pop(0)
        return "ready"

    assert wait_until(check, "a server", timeout=10) == "ready"
    assert errors == []


def test_a_real_error_is_not_swallowed() -> None:
    def check() -> bool:
        raise KeyError("a bug in the check")

    with pytest.raises(KeyError):
        wait_until(check, "a server", timeout=10)


def test_the_deadline_holds() -> None:
    with pytest.raises(NotReady, match=r"a server: not ready after 0\.3 s"):
        wait_until(lambda: False, "a server", timeout=0.3)


def test_an_exited_process_ends_the_wait_at_once() -> None:
    process = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    process.wait(30)
    with pytest.raises(NotReady, match="exit status 3"):
        wait_until(lambda: False, "the app", timeout=60, exited=lambda: exit_status(process))


@contextmanager
def stumbling_server(answers: list[bytes | None]) -> Iterator[str]:
    """A loopback server that gives each connection the next of ``answers``: ``None``
    holds the connection silent for a second, ``b""`` closes it at once."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        for answer in answers:
            conn, _ = listener.accept()
            with conn:
                conn.recv(65536)
                if answer is None:
                    time.sleep(1.0)
                elif answer:
                    conn.sendall(answer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}/health"
    finally:
        listener.close()
        thread.join(10)


def _http(status: str, body: bytes = b"ok") -> bytes:
    head = f"HTTP/1.1 {status}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    return head.encode() + body


def test_http_probe_waits_through_silence_hangups_garbage_and_503() -> None:
    answers = [
        None,  # silent: a ReadTimeout
        b"",  # a hang-up
        b"not http at all\r\n\r\n",
        _http("503 Service Unavailable"),
        _http("200 OK"),
    ]
    with stumbling_server(answers) as url:
        response = wait_for_http(url, timeout=20, attempt_timeout=0.3)
    assert response.status_code == 200 and response.text == "ok"
