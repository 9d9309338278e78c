"""Shared fixtures: the fake WeChat and real HTTP servers on loopback, and the Node world
of the end-to-end tests (its machinery is in ``tests/e2e_support.py``)."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.e2e_support import E2E_DIR, World
from wafer_py import WaferAuth, WaferConfig
from wafer_py.config import DEMO_APP_SECRET, DEMO_APPID
from wafer_py.fakewechat import FakeWeChat, FakeWeChatServer

IN_CI = os.environ.get("CI", "").lower() == "true"

#: A second app the fake knows besides the demo one where a module is marked
#: ``pytest.mark.fake_apps(TWO_APPS)``.
OTHER_APPID = "wx0123456789abcdef"
OTHER_SECRET = "othersecret00000000000000000000x"
TWO_APPS = {DEMO_APPID: DEMO_APP_SECRET, OTHER_APPID: OTHER_SECRET}
#: An OAuth callback with a query of its own.
CALLBACK = "https://example.com/wechat/oauth/callback?next=%2Fweb"
#: The request id the fake appends to every errmsg, like WeChat.
RID = re.compile(r" rid: [0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{8}$")
#: The secret key of the tests' auths (WaferConfig refuses keys under 32 characters).
TEST_SECRET = "test-secret-key-of-the-wafer-py-test-suite"
#: Variables that run an example app against the fake WeChat: its demo app, named
#: explicitly (a config falls back to it only with ``fake_wechat=True``, in code).
DEMO_ENV = {"WAFER_APPID": DEMO_APPID, "WAFER_APP_SECRET": DEMO_APP_SECRET}
#: The same as ``WaferConfig`` fields.
DEMO_APP = {"appid": DEMO_APPID, "app_secret": DEMO_APP_SECRET}
#: Seconds an HTTP request of a test may take.
TIMEOUT = 10
#: The example apps, by the framework they are written for.
FRAMEWORKS = ["starlette", "flask"]


def skip_or_fail(reason: str) -> None:
    """Skip with ``reason``; under ``CI=true`` a missing prerequisite is a failure."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: this must not be skipped)")
    pytest.skip(reason)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "fake_apps(apps): the apps (AppID -> AppSecret) the `fake` fixture knows, instead of "
        "the demo app alone; `pytestmark = pytest.mark.fake_apps(TWO_APPS)` for a module",
    )


@pytest.fixture
def fake(request: pytest.FixtureRequest) -> Iterator[FakeWeChat]:
    """A fake WeChat knowing the demo app, or the apps of the test's ``fake_apps`` mark."""
    marker = request.node.get_closest_marker("fake_apps")
    apps: Mapping[str, str] | None = marker.args[0] if marker else None
    fake = FakeWeChat(apps)
    yield fake


@pytest.fixture
def fake_server(fake: FakeWeChat) -> Iterator[Any]:
    with fake.serve() as server:
        yield server


@pytest.fixture
def server(fake_server: FakeWeChatServer) -> FakeWeChatServer:
    """``fake_server`` under the name the fake's own tests and the OAuth tests use."""
    return fake_server


def fake_get(server: FakeWeChatServer, path: str, **params: Any) -> requests.Response:
    """GET ``path`` of the fake with the ``params`` that are not ``None``; a redirect is
    answered, not followed."""
    query = {k: v for k, v in params.items() if v is not None}
    return requests.get(server.url + path, params=query, timeout=TIMEOUT, allow_redirects=False)


def exchange_code(
    server: FakeWeChatServer,
    code: str | None,
    appid: str | None = DEMO_APPID,
    secret: str | None = DEMO_APP_SECRET,
    grant_type: str | None = "authorization_code",
    *,
    path: str,
    code_name: str,
    **extra: str,
) -> requests.Response:
    """Exchange ``code`` (sent as ``code_name``) at the fake's ``path`` with an AppID and
    AppSecret, as a server does; a ``None`` leaves its parameter out. Modules bind ``path``
    and ``code_name`` with :func:`functools.partial`."""
    return fake_get(
        server,
        path,
        appid=appid,
        secret=secret,
        **{code_name: code},
        grant_type=grant_type,
        **extra,
    )


def consent_form(page: requests.Response) -> dict[str, str]:
    """The hidden fields of the fake's authorize (consent) page."""
    return {
        k: html.unescape(v) for k, v in re.findall(r'name="([^"]+)" value="([^"]*)"', page.text)
    }


def confirm_consent(
    origin: str, form: dict[str, str], decision: str, http: requests.Session | None = None
) -> requests.Response:
    """Press "allow" or "deny" (``decision``) on the consent page of the fake at ``origin``,
    with ``http``'s cookies when given; the redirect back is answered, not followed."""
    return (http or requests).post(
        f"{origin}/connect/oauth2/authorize/confirm",
        data={**form, "decision": decision},
        allow_redirects=False,
        timeout=TIMEOUT,
    )


def errcode_of(response: requests.Response) -> int:
    """The errcode of one of the fake's error answers (HTTP 200 and an errmsg with a rid)."""
    assert response.status_code == 200
    body = response.json()
    assert RID.search(body["errmsg"]), body
    return int(body["errcode"])


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
        options.setdefault("secret_keys", (TEST_SECRET,))
        clock = options.pop("clock", None)
        config = WaferConfig(api_base=fake_server.url, fake_wechat=True, **options)
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


# ------------------------------------------------------------------ end to end (Node)


@pytest.fixture(scope="session")
def node() -> str:
    """The node executable; the e2e tests run the client SDKs in it."""
    executable = shutil.which("node")
    if executable is None:
        skip_or_fail("node is not installed; the e2e tests run the client SDKs in Node")
    assert executable is not None
    return executable


def require_sdk(directory: str, version: str | None = None) -> None:
    """An SDK is installed under tests/e2e/node_modules/``directory`` (at ``version`` exactly,
    when given)."""
    manifest = E2E_DIR / "node_modules" / directory / "package.json"
    if not manifest.is_file():
        skip_or_fail(f"{directory} is not installed: run `npm ci --prefix tests/e2e`")
    if version is None:
        return
    installed = json.loads(manifest.read_text(encoding="utf-8")).get("version")
    if installed != version:
        skip_or_fail(
            f"node_modules/{directory} holds {installed}, not {version}: "
            "run `npm ci --prefix tests/e2e`"
        )


@pytest.fixture(params=FRAMEWORKS)
def framework(request: pytest.FixtureRequest) -> str:
    """Each example app in turn (``serve_example``)."""
    return str(request.param)


@pytest.fixture
def world(
    request: pytest.FixtureRequest,
    node: str,
    framework: str,
    sdk: str,
    sdk_installed: None,
    fake: FakeWeChat,
    fake_server: Any,
    make_auth: Callable[..., WaferAuth],
    tmp_path: Path,
) -> Iterator[World]:
    """One e2e test's :class:`World`: a fresh auth, the ``framework`` example serving it, the
    ``sdk`` in Node and a WeChat user named after the test. The module gives ``sdk`` and
    ``sdk_installed`` (which skips, or fails with ``CI=true``, through ``require_sdk``)."""
    auth = make_auth()
    user = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")
    with serve_example(framework, auth) as url:
        yield World(
            framework,
            sdk,
            node,
            fake,
            fake_server.url,
            auth,
            url,
            user,
            tmp_path / "wx-storage.json",
        )
