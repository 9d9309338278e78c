"""Metrics (issue #16, item 4): ``/metrics`` scraped from a real app of each framework
after a login, a failed login, a validation and an invalid session; the login queue's
gauge; token refreshes; no secret in the exposition or the log lines; a missing
prometheus_client stopping the app at start. Deployment (the docs' snippets, gunicorn
workers): test_metrics_deploy.py.

The apps use ``metrics="prometheus"`` (prometheus_client's global registry, shared by
the run's tests), so each test looks at what moved between two scrapes.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.support.constants import DEMO_ENV, TEST_SECRET, TIMEOUT
from tests.support.metrics import Get, check_moved, exercise, key, scrape, wait_for_sample
from tests.support.servers import serve_asgi, serve_wsgi
from wafer_py import WaferAuth, WaferConfig
from wafer_py.config import DEMO_APP_SECRET, DEMO_APPID
from wafer_py.fakewechat import FakeWeChat, FakeWeChatServer
from wafer_py.protocol import WaferResponse

ROOT = Path(__file__).resolve().parent.parent
QUEUE = key("wafer_login_queue_length")


def _http_get(base: str) -> Get:
    def get(path: str, headers: dict[str, str]) -> tuple[int, str]:
        response = requests.get(base + path, headers=headers, timeout=TIMEOUT)
        return response.status_code, response.text

    return get


# ------------------------------------------------------------------ the apps


def starlette_app(auth: WaferAuth) -> Any:
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Mount, Route

    from wafer_py.asgi import WaferMiddleware
    from wafer_py.metrics import asgi_app

    async def me(request: Request) -> JSONResponse:
        user = request.user
        return JSONResponse({"who": user.openid if user.is_authenticated else None})

    return Starlette(
        routes=[Route("/me", me), Mount("/metrics", app=asgi_app())],
        middleware=[Middleware(WaferMiddleware, auth=auth)],
    )


def fastapi_app(auth: WaferAuth) -> Any:
    import fastapi

    from wafer_py.asgi import WaferMiddleware
    from wafer_py.metrics import asgi_app
    from wafer_py.models import User
    from wafer_py.starlette import get_current_user

    app = fastapi.FastAPI()
    app.add_middleware(WaferMiddleware, auth=auth)
    app.mount("/metrics", asgi_app())

    @app.get("/me")
    def me(user: User | None = fastapi.Depends(get_current_user)) -> dict[str, Any]:  # noqa: B008
        return {"who": user.openid if user is not None else None}

    return app


def plain_asgi_app(auth: WaferAuth) -> Any:
    import json

    from wafer_py.asgi import WaferMiddleware, get_state
    from wafer_py.metrics import asgi_app

    async def me(scope: dict[str, Any], receive: Any, send: Any) -> None:
        identity = get_state(scope).identity
        body = json.dumps({"who": identity.openid if identity else None}).encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})

    wafer, metrics = WaferMiddleware(me, auth=auth), asgi_app()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == "/metrics":
            await metrics(scope, receive, send)
        else:
            await wafer(scope, receive, send)

    return app


def plain_wsgi_app(auth: WaferAuth) -> Any:
    import json

    from wafer_py.metrics import wsgi_app
    from wafer_py.wsgi import WaferWSGIMiddleware, get_state

    def me(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        identity = get_state(environ).identity
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps({"who": identity.openid if identity else None}).encode()]

    wafer, metrics = WaferWSGIMiddleware(me, auth), wsgi_app()

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if environ["PATH_INFO"] == "/metrics":
            return metrics(environ, start_response)
        return wafer(environ, start_response)

    return app


@contextmanager
def serve_flask(fake_server: FakeWeChatServer, tmp_path: Path) -> Iterator[str]:
    """Flask configured by ``app.config`` alone (``WAFER_METRICS`` among the settings),
    ``/metrics`` dispatched by Werkzeug's ``DispatcherMiddleware``."""
    from flask import Flask, jsonify
    from werkzeug.middleware.dispatcher import DispatcherMiddleware

    from wafer_py.flask import Wafer, current_user
    from wafer_py.metrics import wsgi_app

    app = Flask(__name__)
    app.config.update(
        WAFER_APPID=DEMO_APPID,
        WAFER_APP_SECRET=DEMO_APP_SECRET,
        WAFER_WECHAT_API_BASE=fake_server.url,
        WAFER_STORE_URL=f"sqlite:///{tmp_path}/flask.db",
        WAFER_SECRET_KEY=TEST_SECRET,
        WAFER_METRICS="prometheus",
    )
    wafer = Wafer(app)

    @app.get("/me")
    def me() -> Any:
        return jsonify(who=current_user.openid if current_user.is_authenticated else None)

    app.wsgi_app = DispatcherMiddleware(  # type: ignore[method-assign]
        app.wsgi_app, {"/metrics": wsgi_app()}
    )
    assert wafer.auth is not None
    try:
        with serve_wsgi(app) as base:
            yield base
    finally:
        wafer.auth.close()


APPS: dict[str, Callable[[WaferAuth], Any]] = {
    "starlette": starlette_app,
    "fastapi": fastapi_app,
    "plain-asgi": plain_asgi_app,
    "plain-wsgi": plain_wsgi_app,
}


def serve(
    framework: str,
    make_auth: Callable[..., WaferAuth],
    fake_server: FakeWeChatServer,
    tmp_path: Path,
    **options: Any,
) -> AbstractContextManager[str]:
    if framework == "flask":
        return serve_flask(fake_server, tmp_path)
    app = APPS[framework](make_auth(metrics="prometheus", **options))
    return serve_wsgi(app) if framework.endswith("wsgi") else serve_asgi(app)


# ------------------------------------------------------------------ the tests


@pytest.mark.parametrize("framework", ["starlette", "fastapi", "flask", "plain-asgi", "plain-wsgi"])
def test_counters_move_and_no_secret_is_exposed(
    framework: str,
    make_auth: Callable[..., WaferAuth],
    fake: FakeWeChat,
    fake_server: FakeWeChatServer,
    tmp_path: Path,
) -> None:
    with serve(framework, make_auth, fake_server, tmp_path) as base:
        _, before = scrape(f"{base}/metrics")
        used = exercise(_http_get(base), fake, DEMO_APPID, f"metrics-{framework}", "/me")
        text, after = scrape(f"{base}/metrics")
    check_moved(before, after)
    for secret in [*used, DEMO_APP_SECRET, TEST_SECRET]:
        assert secret not in text


@pytest.mark.parametrize("framework", ["plain-asgi", "plain-wsgi"])
def test_the_queue_gauge_counts_logins_waiting_for_a_slot(
    framework: str,
    make_auth: Callable[..., WaferAuth],
    fake: FakeWeChat,
    fake_server: FakeWeChatServer,
    tmp_path: Path,
) -> None:
    """One slot: a login held at WeChat takes it, a second waits; the gauge shows it,
    and goes back once WeChat answers both."""
    options = {"max_concurrent_logins": 1, "wechat_timeout": 60.0, "login_timeout": 60.0}
    with serve(framework, make_auth, fake_server, tmp_path, **options) as base:
        metrics = f"{base}/metrics"
        wait_for_sample(metrics, QUEUE, 0.0)
        codes = [fake.login(DEMO_APPID, f"queued-{framework}-{i}")["code"] for i in range(2)]
        statuses: list[int] = []

        def log_in(code: str) -> None:
            response = requests.get(f"{base}/weapp/login", headers={"X-WX-Code": code}, timeout=90)
            statuses.append(response.status_code)

        fake.latency = 3600.0  # WeChat holds its answers until released
        threads = [threading.Thread(target=log_in, args=(code,)) for code in codes]
        try:
            for thread in threads:  # one holds the slot while WeChat holds its answer
                thread.start()
            wait_for_sample(metrics, QUEUE, 1.0)
        finally:
            fake.latency = 0.0
            for thread in threads:
                thread.join(90)
        assert statuses == [200, 200]
        wait_for_sample(metrics, QUEUE, 0.0)


def test_token_refreshes_and_their_wechat_calls_are_counted(
    fake: FakeWeChat, fake_server: FakeWeChatServer
) -> None:
    from prometheus_client import CollectorRegistry, generate_latest

    from tests.support.metrics import parse
    from wafer_py.metrics import PrometheusObserver

    registry = CollectorRegistry()
    config = WaferConfig(
        api_base=fake_server.url,
        fake_wechat=True,
        store_url="memory://",
        secret_keys=(TEST_SECRET,),
    )
    auth = WaferAuth(config, observer=PrometheusObserver(registry))
    try:
        token = auth.tokens.get()
        assert auth.tokens.get() == token  # cached: no second fetch
        auth.tokens.refresh(force=True)
        text = generate_latest(registry).decode()
    finally:
        auth.close()
    samples = parse(text)
    assert samples[key("wafer_token_refreshes_total", outcome="refreshed")] == 1.0
    assert samples[key("wafer_token_refreshes_total", outcome="forced")] == 1.0
    stable = key("wafer_wechat_call_seconds_count", api="/cgi-bin/stable_token", outcome="ok")
    assert samples[stable] == 2.0
    assert token not in text and DEMO_APP_SECRET not in text


def test_login_failures_are_logged_with_reason_and_path_and_no_secret(
    make_auth: Callable[..., WaferAuth], fake: FakeWeChat, caplog: pytest.LogCaptureFixture
) -> None:
    from wafer_py.protocol import WaferProtocol

    caplog.set_level(logging.DEBUG, logger="wafer_py")
    protocol = WaferProtocol(make_auth())
    bad_code = "a-code-wechat-never-gave"
    assert protocol.login({"x-wx-code": bad_code}).status == 400
    refused = [r for r in caplog.records if "login refused" in r.getMessage()]
    assert len(refused) == 1 and refused[0].levelno == logging.INFO
    assert refused[0].getMessage() == "wafer_py: login refused on /weapp/login: invalid_code"
    fake.inject("/sns/jscode2session", -1)  # WeChat busy: the login fails (503)
    code = fake.login(DEMO_APPID, "logged")["code"]
    assert protocol.login({"x-wx-code": code}).status == 503
    failed = [r for r in caplog.records if "login failed" in r.getMessage()]
    assert len(failed) == 1 and failed[0].levelno == logging.WARNING
    assert failed[0].getMessage() == "wafer_py: login failed on /weapp/login: wechat_busy"
    unknown = "an-skey-that-names-no-session"
    protocol.check("/api/things", {"x-wx-skey": unknown})
    assert "session refused on /api/things: invalid_session" in caplog.text
    for secret in (bad_code, code, unknown, DEMO_APP_SECRET, TEST_SECRET):
        assert secret not in caplog.text


def test_metrics_setting_is_read_from_the_environment_and_checked() -> None:
    config = WaferConfig.from_env({**DEMO_ENV, "WAFER_METRICS": "prometheus"})
    assert config.metrics == "prometheus"
    with pytest.raises(ValueError, match="WAFER_METRICS"):
        WaferConfig.from_env({**DEMO_ENV, "WAFER_METRICS": "statsd"})


def test_without_prometheus_client_the_app_stops_at_start(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "prometheus_client", None)  # import fails
    config = WaferConfig(
        api_base="http://127.0.0.1:9",
        fake_wechat=True,
        store_url=f"sqlite:///{tmp_path}/never.db",
        metrics="prometheus",
    )
    with pytest.raises(ImportError) as raised:
        WaferAuth(config)
    assert "WAFER_METRICS" in str(raised.value)
    assert "wafer-session[metrics]" in str(raised.value)
    assert not (tmp_path / "never.db").exists()  # stopped before the store was opened


def test_the_core_never_imports_prometheus_client() -> None:
    code = (
        "import sys, wafer_py, wafer_py.auth, wafer_py.protocol, wafer_py.asgi, wafer_py.wsgi\n"
        "from wafer_py import WaferAuth, WaferConfig\n"
        "WaferAuth(WaferConfig(api_base='http://127.0.0.1:9', fake_wechat=True,"
        " store_url='memory://'))\n"
        "assert 'prometheus_client' not in sys.modules\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert done.returncode == 0, done.stderr


def test_failed_logins_and_store_errors_are_counted(
    make_auth: Callable[..., WaferAuth], fake: FakeWeChat
) -> None:
    """A login WeChat answers busy (503) is ``failed``; a session check the store cannot
    answer (a Redis server that is not there) is an ``error``."""
    from prometheus_client import REGISTRY, generate_latest

    from tests.support.app_process import free_port
    from tests.support.metrics import moved, parse
    from wafer_py.protocol import WaferProtocol
    from wafer_py.stores.base import call_store

    before = parse(generate_latest(REGISTRY).decode())
    protocol = WaferProtocol(make_auth(metrics="prometheus"))
    fake.inject("/sns/jscode2session", -1)
    assert protocol.login({"x-wx-code": fake.login(DEMO_APPID, "busy")["code"]}).status == 503
    down = WaferAuth(
        WaferConfig(
            api_base="http://127.0.0.1:9",
            fake_wechat=True,
            store_url=f"redis://127.0.0.1:{free_port()}/0",
            secret_keys=(TEST_SECRET,),
            metrics="prometheus",
        )
    )
    try:
        answer = WaferProtocol(down).check("/api/x", {"x-wx-skey": "an-skey-of-nobody"})
        assert isinstance(answer, WaferResponse) and answer.status == 503
    finally:
        down.close()
        call_store(lambda: None)  # the outage is over (one line says so), for later tests
    changed = moved(before, parse(generate_latest(REGISTRY).decode()))
    assert changed[key("wafer_logins_total", outcome="failed", reason="wechat_busy")] == 1
    assert changed[key("wafer_login_seconds_count", outcome="failed")] == 1
    busy = key("wafer_wechat_call_seconds_count", api="/sns/jscode2session", outcome="error")
    assert changed[busy] == 1
    error = key("wafer_validations_total", outcome="error", reason="store_unavailable")
    assert changed[error] == 1
    assert changed[key("wafer_store_call_seconds_count", op="find_login")] >= 1
