"""Shared fixtures: the fake WeChat and real HTTP servers on loopback."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from wafer_py import WaferAuth, WaferConfig
from wafer_py.fakewechat import FakeWeChat

IN_CI = os.environ.get("CI", "").lower() == "true"


def skip_or_fail(reason: str) -> None:
    """Skip with ``reason``; under ``CI=true`` a missing prerequisite is a failure."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: this must not be skipped)")
    pytest.skip(reason)


@pytest.fixture
def fake() -> Iterator[FakeWeChat]:
    fake = FakeWeChat()
    yield fake


@pytest.fixture
def fake_server(fake: FakeWeChat) -> Iterator[Any]:
    with fake.serve() as server:
        yield server


class Clock:
    """A clock tests move by hand."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def make_auth(fake_server: Any, tmp_path: Path) -> Iterator[Callable[..., WaferAuth]]:
    made: list[WaferAuth] = []

    def make(**options: Any) -> WaferAuth:
        options.setdefault("store_url", f"sqlite:///{tmp_path}/sessions-{len(made)}.db")
        options.setdefault("secret_keys", ("test-secret",))
        clock = options.pop("clock", None)
        config = WaferConfig(api_base=fake_server.url, **options)
        auth = WaferAuth(config, clock=clock) if clock else WaferAuth(config)
        made.append(auth)
        return auth

    yield make
    for auth in made:
        auth.close()


@contextmanager
def serve_asgi(app: Any) -> Iterator[str]:
    """Serve an ASGI app with uvicorn on a free loopback port; yield its base URL."""
    import uvicorn

    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        threading.Event().wait(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@contextmanager
def serve_wsgi(app: Any) -> Iterator[str]:
    """Serve a WSGI app with werkzeug's threaded server on a free loopback port."""
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(10)
        server.server_close()


def serve_example(framework: str, auth: WaferAuth) -> Any:
    """Serve ``examples/<framework>_app`` with ``auth``; a context manager for its URL."""
    if framework == "flask":
        from examples.flask_app.app import create_app as create_flask

        return serve_wsgi(create_flask(auth))
    from examples.starlette_app.app import create_app as create_starlette

    return serve_asgi(create_starlette(auth))
