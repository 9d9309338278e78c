"""The adapters beyond the examples: FastAPI, plain WSGI/ASGI apps, several worker
processes, the 0.7.x client's legacy header."""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import requests

from tests.support.ci import skip_or_fail
from tests.support.constants import DEMO_ENV
from tests.support.probe import exit_status, wait_for_http
from tests.support.servers import serve_asgi, serve_wsgi
from wafer_py import WaferAuth
from wafer_py.asgi import WaferMiddleware
from wafer_py.config import DEMO_APPID
from wafer_py.crypto import encrypt_data
from wafer_py.fakewechat import FakeWeChat
from wafer_py.protocol import MAGIC_ID
from wafer_py.wsgi import WaferWSGIMiddleware, get_state


def _skey(base: str, fake: FakeWeChat, user: str) -> str:
    code = fake.login(DEMO_APPID, user)["code"]
    response = requests.get(f"{base}/weapp/login", headers={"X-WX-Code": code}, timeout=10)
    assert response.status_code == 200, response.text
    return str(response.json()["data"]["skey"])


def test_fastapi_dependency(make_auth: Callable[..., WaferAuth], fake: FakeWeChat) -> None:
    import fastapi  # the dev extra has it

    from wafer_py.asgi import WaferUser
    from wafer_py.starlette import require_user

    app = fastapi.FastAPI()
    app.add_middleware(WaferMiddleware, auth=make_auth())

    @app.get("/weapp/user")
    def weapp_user(user: WaferUser = fastapi.Depends(require_user)) -> dict[str, Any]:  # noqa: B008
        return {"code": 0, "data": {"userInfo": user.userinfo()}}

    @app.get("/public")
    def public() -> dict[str, Any]:
        return {"code": 0}

    with serve_asgi(app) as base:
        skey = _skey(base, fake, "fastapi")
        ok = requests.get(f"{base}/weapp/user", headers={"X-WX-Skey": skey}, timeout=10)
        assert ok.status_code == 200
        assert ok.json()["data"]["userInfo"]["nickName"]
        refused = requests.get(f"{base}/weapp/user", timeout=10)
        assert refused.status_code == 401
        assert refused.json()[MAGIC_ID] == 1
        assert refused.json()["error"] == "ERR_INVALID_SESSION"
        assert requests.get(f"{base}/public", timeout=10).json() == {"code": 0}


def test_plain_wsgi_app_with_protect_and_a_lazy_body(
    make_auth: Callable[..., WaferAuth], fake: FakeWeChat
) -> None:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterator[bytes]:
        state = get_state(environ)
        if environ["PATH_INFO"] == "/mine" and not state.is_authenticated:
            start_response("401 Unauthorized", [("Content-Type", "text/plain")])
            yield b"no"
            return
        start_response("200 OK", [("Content-Type", "text/plain")])
        who = state.identity.openid if state.identity else "anonymous"
        yield who.encode()

    wrapped = WaferWSGIMiddleware(app, make_auth(), protect=["/api/"])
    with serve_wsgi(wrapped) as base:
        skey = _skey(base, fake, "plain")
        # protect: refused by the middleware before the app runs
        refused = requests.get(f"{base}/api/things", timeout=10)
        assert refused.status_code == 401 and refused.json()["reason"] == "missing_session"
        assert requests.get(
            f"{base}/api/things", headers={"X-WX-Skey": skey}, timeout=10
        ).text.startswith("o")
        # a lazy (generator) app's own 401 becomes the protocol's answer
        lazy = requests.get(f"{base}/mine", timeout=10)
        assert lazy.status_code == 401 and lazy.json()["error"] == "ERR_INVALID_SESSION"
        assert requests.get(f"{base}/", timeout=10).text == "anonymous"


def test_plain_asgi_app_other_scopes_pass_through(make_auth: Callable[..., WaferAuth]) -> None:
    seen: list[str] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append(scope["type"])

    import asyncio

    middleware = WaferMiddleware(app, auth=make_auth())
    asyncio.run(middleware({"type": "lifespan"}, None, None))
    asyncio.run(middleware({"type": "websocket", "path": "/ws", "headers": []}, None, None))
    assert seen == ["lifespan", "websocket"]


def test_legacy_encrypt_data_header_without_iv(
    make_auth: Callable[..., WaferAuth], fake: FakeWeChat
) -> None:
    from examples.flask_app.app import create_app

    auth = make_auth()
    login = fake.login(DEMO_APPID, "legacy")
    key = fake.session_key_of(DEMO_APPID, login["openid"])
    data, _ = encrypt_data(
        key,
        {"openId": login["openid"], "nickName": "Old Client"},
        appid=DEMO_APPID,
        iv=base64.b64decode(key),
    )
    with serve_wsgi(create_app(auth)) as base:
        response = requests.get(
            f"{base}/weapp/login",
            timeout=10,
            headers={"X-WX-Code": login["code"], "X-WX-Encrypt-Data": data},
        )
    assert response.status_code == 200, response.text
    assert response.json()["data"]["userinfo"]["nickName"] == "Old Client"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_gunicorn_workers_share_sqlite_sessions(
    tmp_path: Path, fake_server: Any, fake: FakeWeChat
) -> None:
    """Several worker processes, no WAFER_SECRET_KEY: sessions still work in every one."""
    try:
        import gunicorn  # noqa: F401
    except ImportError:
        skip_or_fail("gunicorn is not installed (pip install -e '.[dev]')")
    port = _free_port()
    env = {
        **os.environ,
        "WAFER_WECHAT_API_BASE": fake_server.url,
        "WAFER_STORE_URL": f"sqlite:///{tmp_path}/workers.db",
        **DEMO_ENV,
    }
    env.pop("WAFER_SECRET_KEY", None)
    root = Path(__file__).resolve().parent.parent
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "-w",
            "3",
            "-b",
            f"127.0.0.1:{port}",
            "examples.flask_app.app:create_app()",
        ],
        cwd=root,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{base}/health", exited=lambda: exit_status(proc))
        skeys = [_skey(base, fake, f"worker-user-{i}") for i in range(6)]
        statuses = [
            requests.get(f"{base}/weapp/user", headers={"X-WX-Skey": skey}, timeout=10).status_code
            for skey in skeys
            for _ in range(5)
        ]
        assert statuses == [200] * 30
    finally:
        proc.terminate()
        proc.wait(15)


def test_asgi_logins_do_not_block_the_event_loop(
    make_auth: Callable[..., WaferAuth], fake: FakeWeChat
) -> None:
    """While logins wait on a slow WeChat, the same process still answers other requests."""
    import threading

    from examples.starlette_app.app import create_app

    fake.latency = 1.0
    finished: list[tuple[str, float]] = []
    lock = threading.Lock()

    def call(kind: str, url: str, headers: dict[str, str]) -> None:
        response = requests.get(url, headers=headers, timeout=30)
        assert response.status_code == 200, response.text
        with lock:
            finished.append((kind, time.monotonic()))

    with serve_asgi(create_app(make_auth())) as base:
        codes = [fake.login(DEMO_APPID, f"slow-{i}")["code"] for i in range(8)]
        logins = [
            threading.Thread(target=call, args=("login", f"{base}/weapp/login", {"X-WX-Code": c}))
            for c in codes
        ]
        for t in logins:
            t.start()
        deadline = time.monotonic() + 10
        while fake.calls["/sns/jscode2session"] < 8:  # all eight are now waiting on WeChat
            assert time.monotonic() < deadline, "the logins did not reach WeChat together"
            time.sleep(0.01)
        call("health", f"{base}/health", {})
        for t in logins:
            t.join()
    kinds = [kind for kind, _ in sorted(finished, key=lambda item: item[1])]
    assert kinds[0] == "health" and kinds.count("login") == 8
