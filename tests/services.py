"""The database servers the store tests talk to, and how to find them.

The shared servers of this machine (loopback, default ports) unless the environment
names others:

* ``WAFER_TEST_REDIS_URL``: ``redis://127.0.0.1:6379/0``
* ``WAFER_TEST_POSTGRES_URL``: ``postgresql://postgres@127.0.0.1:5432/test``
* ``WAFER_TEST_MYSQL_URL``: ``mysql://root@127.0.0.1:3306/test``

A test that needs one calls :func:`require`: it skips with the reason when the server
does not answer, and fails under ``CI=true`` (a missing server is a failure there).
"""

from __future__ import annotations

import os
import socket
from functools import cache
from urllib.parse import urlsplit

from tests.conftest import skip_or_fail

DEFAULTS = {
    "redis": "redis://127.0.0.1:6379/0",
    "postgres": "postgresql://postgres@127.0.0.1:5432/test",
    "mysql": "mysql://root@127.0.0.1:3306/test",
}
DEFAULT_PORTS = {"redis": 6379, "postgres": 5432, "mysql": 3306}


def url(kind: str) -> str:
    """The URL of the ``kind`` server (``redis``, ``postgres`` or ``mysql``)."""
    return os.environ.get(f"WAFER_TEST_{kind.upper()}_URL", DEFAULTS[kind])


@cache
def _answers(kind: str) -> str | None:
    """``None`` if the server accepts a connection, else why not."""
    parts = urlsplit(url(kind))
    host, port = parts.hostname or "127.0.0.1", parts.port or DEFAULT_PORTS[kind]
    try:
        with socket.create_connection((host, port), timeout=2):
            return None
    except OSError as exc:
        return f"no {kind} server at {host}:{port} ({exc})"


def require(kind: str) -> str:
    """The server's URL; skip (or under CI=true fail) when it does not answer."""
    problem = _answers(kind)
    if problem is not None:
        variable = f"WAFER_TEST_{kind.upper()}_URL"
        skip_or_fail(f"{problem}; start it or set {variable}")
    return url(kind)
