"""Serving an ASGI or WSGI app, or an example app, on a free loopback port."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tests.support.probe import wait_until
from wafer_py import WaferAuth


@contextmanager
def serve_asgi(app: Any) -> Iterator[str]:
    """Serve an ASGI app with uvicorn on a free loopback port; yield its base URL."""
    import uvicorn

    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
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
