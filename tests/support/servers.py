"""Real HTTP servers on loopback for the apps under test: uvicorn (ASGI), werkzeug (WSGI).

Starting and stopping a server costs a test more than its requests (uvicorn's shutdown
alone waits a tick of its loop), so :func:`serve_asgi` and :func:`serve_wsgi` mount the
test's app on a server of a pool that lives for the whole run: a switch in front of it
hands each request to the app mounted at that moment, and nothing once the ``with``
block ends. The requests still cross a real socket and the real server's HTTP parser.
:func:`start_asgi` and :func:`start_wsgi` start a server of the test's own, for a test
whose point is the server's options or its life. The fake WeChat's server is shared the
same way (:class:`FakeSwitch`): each test still has a fake of its own.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, ExitStack, contextmanager
from typing import Any

from tests.support.probe import wait_until
from wafer_py import WaferAuth
from wafer_py.fakewechat import FakeWeChat
from wafer_py.fakewechat.server import Request, Response


@contextmanager
def start_asgi(app: Any, **options: Any) -> Iterator[str]:
    """Serve an ASGI app with its own uvicorn (``options`` are ``uvicorn.Config``'s) on a
    free loopback port; yield its base URL."""
    import uvicorn

    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, log_level="warning", lifespan="off", **options
    )
    server = uvicorn.Server(config)
    make_loop = config.get_loop_factory() or asyncio.new_event_loop

    def loop_factory() -> asyncio.AbstractEventLoop:
        # Threads named apart from asyncio's ("asyncio_N"): tests count those of their own
        # loop, and a pooled server outlives the test that started it.
        loop = make_loop()
        loop.set_default_executor(ThreadPoolExecutor(thread_name_prefix="test-uvicorn"))
        return loop

    def run() -> None:
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            runner.run(server.serve())

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    wait_until(
        lambda: server.started,
        "uvicorn",
        exited=lambda: None if thread.is_alive() else "uvicorn stopped before it started",
    )
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@contextmanager
def start_wsgi(app: Any) -> Iterator[str]:
    """Serve a WSGI app with its own werkzeug threaded server on a free loopback port."""
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


class ASGISwitch:
    """An ASGI app that passes each connection to the app mounted now (503 when none)."""

    def __init__(self) -> None:
        self.app: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        app = self.app
        if app is not None:
            await app(scope, receive, send)
        elif scope["type"] == "http":
            await send({"type": "http.response.start", "status": 503, "headers": []})
            await send({"type": "http.response.body", "body": b"no app is mounted"})
        elif scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1013})


class WSGISwitch:
    """A WSGI app that passes each request to the app mounted now (503 when none)."""

    def __init__(self) -> None:
        self.app: Any = None

    def __call__(self, environ: Any, start_response: Any) -> Any:
        app = self.app
        if app is None:
            start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
            return [b"no app is mounted"]
        return app(environ, start_response)


class ServerPool:
    """Servers started once, each with a switch; :meth:`mount` lends a free one."""

    def __init__(
        self,
        make_switch: Callable[[], ASGISwitch | WSGISwitch],
        start: Callable[[Any], AbstractContextManager[str]],
    ) -> None:
        self._make_switch = make_switch
        self._start = start
        self._free: list[tuple[ASGISwitch | WSGISwitch, str]] = []
        self._lock = threading.Lock()
        self._servers = ExitStack()

    @contextmanager
    def mount(self, app: Any) -> Iterator[str]:
        """Serve ``app`` on a pooled server until the block ends; yield its base URL."""
        with self._lock:
            if self._free:
                switch, url = self._free.pop()
            else:
                switch = self._make_switch()
                url = self._servers.enter_context(self._start(switch))
        switch.app = app
        try:
            yield url
        finally:
            switch.app = None
            with self._lock:
                self._free.append((switch, url))

    def close(self) -> None:
        """Stop every server of the pool."""
        with self._lock:
            self._free.clear()
            self._servers.close()


class FakeSwitch:
    """The fake WeChat's handler for a server shared by the run: the fake of the test that
    runs now answers (503 between tests)."""

    def __init__(self) -> None:
        self.fake: FakeWeChat | None = None

    def __call__(self, request: Request) -> Response:
        fake = self.fake
        if fake is None:
            return Response.json({"errcode": -1, "errmsg": "no test is running"}, 503)
        return fake(request)


ASGI_SERVERS = ServerPool(ASGISwitch, start_asgi)
WSGI_SERVERS = ServerPool(WSGISwitch, start_wsgi)


def serve_asgi(app: Any) -> AbstractContextManager[str]:
    """Serve an ASGI app on a pooled uvicorn; a context manager for its base URL."""
    return ASGI_SERVERS.mount(app)


def serve_wsgi(app: Any) -> AbstractContextManager[str]:
    """Serve a WSGI app on a pooled werkzeug server; a context manager for its base URL."""
    return WSGI_SERVERS.mount(app)


def serve_example(framework: str, auth: WaferAuth) -> AbstractContextManager[str]:
    """Serve ``examples/<framework>_app`` with ``auth``; a context manager for its URL."""
    if framework == "flask":
        from examples.flask_app.app import create_app as create_flask

        return serve_wsgi(create_flask(auth))
    if framework == "django":
        from examples.django_app.asgi import create_app as create_django_asgi

        return serve_asgi(create_django_asgi(auth))
    if framework == "django-wsgi":
        from examples.django_app.wsgi import create_app as create_django_wsgi

        return serve_wsgi(create_django_wsgi(auth))
    from examples.starlette_app.app import create_app as create_starlette

    return serve_asgi(create_starlette(auth))
