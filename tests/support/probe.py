"""Waiting for a server to be ready: the one probe every test that starts a server uses.

A server that is starting may refuse the connection, reset it, accept it and answer late
(a ``ReadTimeout`` while its workers boot) or answer garbage: each of those is "not yet",
never a failure, until the overall deadline. A probe gives up early only when the process
it waits for has exited.
"""

from __future__ import annotations

import http.client
import subprocess
import time
from collections.abc import Callable
from typing import Any, TypeVar

import requests
import urllib3

T = TypeVar("T")


def _client_errors() -> tuple[type[BaseException], ...]:
    """The transport errors of the clients a check may use, those installed here: httpx's
    (an ASGI or HTTP client), redis-py's (a server still loading its data answers
    ``LOADING``: a ``BusyLoadingError``)."""
    errors: list[type[BaseException]] = []
    try:
        import httpx
    except ImportError:
        pass
    else:
        errors.append(httpx.TransportError)  # ConnectError, ReadTimeout, RemoteProtocolError
    try:
        import redis
    except ImportError:
        pass
    else:
        errors += [redis.exceptions.ConnectionError, redis.exceptions.TimeoutError]
    return tuple(errors)


#: What a server that is still starting may do to a probe.
TRANSIENT: tuple[type[BaseException], ...] = (
    requests.RequestException,  # ConnectionError, ReadTimeout, ChunkedEncodingError, ...
    urllib3.exceptions.HTTPError,  # what requests leaves unwrapped (ProtocolError on a read)
    http.client.HTTPException,  # a half-written answer (RemoteDisconnected, BadStatusLine)
    OSError,  # a raw socket's refusal, reset or timeout (ConnectionError, TimeoutError)
    *_client_errors(),
)
#: Seconds a server may take to be ready, by default.
READY_TIMEOUT = 30.0
#: Seconds between two probes.
INTERVAL = 0.02


class NotReady(RuntimeError):
    """A server was not ready by the deadline, or its process exited first."""


def wait_until(
    check: Callable[[], T | None],
    what: str,
    *,
    timeout: float = READY_TIMEOUT,
    exited: Callable[[], str | None] | None = None,
) -> T:
    """Call ``check`` until it returns something other than ``None``/``False`` and return
    that; a :data:`TRANSIENT` error counts as "not yet". Raise :class:`NotReady` naming
    ``what`` after ``timeout`` seconds, or at once when ``exited`` returns why the process
    being waited for is gone."""
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while True:
        if exited is not None:
            gone = exited()
            if gone is not None:
                raise NotReady(f"{what}: the process exited: {gone}")
        try:
            result = check()
        except TRANSIENT as exc:
            last = exc
        else:
            if result is not None and result is not False:
                return result
        if time.monotonic() >= deadline:
            raise NotReady(f"{what}: not ready after {timeout:g} s (last error: {last!r})")
        time.sleep(INTERVAL)


def wait_for_http(
    url: str,
    *,
    timeout: float = READY_TIMEOUT,
    exited: Callable[[], str | None] | None = None,
    status: int | None = 200,
    attempt_timeout: float = 2.0,
) -> requests.Response:
    """GET ``url`` until it answers ``status`` (any status when ``None``) and return the
    answer; one attempt may take ``attempt_timeout`` seconds (less near the deadline)."""
    deadline = time.monotonic() + timeout

    def answer() -> requests.Response | None:
        left = max(0.05, min(attempt_timeout, deadline - time.monotonic()))
        # No keep-alive connection left behind: a server's graceful stop would wait for it
        # (gunicorn's gthread worker waits out its keep-alive, 2 s).
        with requests.get(url, timeout=left, headers={"Connection": "close"}) as response:
            return response if status is None or response.status_code == status else None

    return wait_until(answer, f"GET {url}", timeout=timeout, exited=exited)


def exit_status(process: subprocess.Popen[Any]) -> str | None:
    """For ``exited=``: ``None`` while ``process`` runs, else its exit status."""
    code = process.poll()
    return None if code is None else f"exit status {code}"
