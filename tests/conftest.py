"""Shared fixtures and hooks: the fake WeChat, auths on fresh stores, and the Node world of
the end-to-end tests. Helpers and constants live in ``tests/support/``."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.support.ci import skip_or_fail
from tests.support.constants import FRAMEWORKS, TEST_SECRET
from tests.support.e2e import World
from tests.support.servers import ASGI_SERVERS, WSGI_SERVERS, FakeSwitch, serve_example
from wafer_py import WaferAuth, WaferConfig
from wafer_py.fakewechat import FakeWeChat, FakeWeChatServer


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "fake_apps(apps): the apps (AppID -> AppSecret) the `fake` fixture knows, instead of "
        "the demo app alone; `pytestmark = pytest.mark.fake_apps(TWO_APPS)` for a module",
    )
    config.addinivalue_line(
        "markers",
        "real_profiles: the `fake` fixture's wx.getUserInfo gives each user a real profile "
        "(the Wafer era) instead of today's anonymous one",
    )


@pytest.fixture
def fake(request: pytest.FixtureRequest) -> Iterator[FakeWeChat]:
    """A fake WeChat knowing the demo app, or the apps of the test's ``fake_apps`` mark;
    with the ``real_profiles`` mark, giving real profiles as WeChat did before 2021."""
    marker = request.node.get_closest_marker("fake_apps")
    apps: Mapping[str, str] | None = marker.args[0] if marker else None
    real = request.node.get_closest_marker("real_profiles") is not None
    fake = FakeWeChat(apps, real_profiles=real)
    yield fake


@pytest.fixture(scope="session", autouse=True)
def _server_pools() -> Iterator[None]:
    """Stop the servers ``serve_asgi``/``serve_wsgi`` lent to the run's tests at its end."""
    try:
        yield
    finally:
        ASGI_SERVERS.close()
        WSGI_SERVERS.close()


@pytest.fixture(scope="session")
def _servers() -> Iterator[tuple[FakeSwitch, FakeWeChatServer]]:
    """The run's fake WeChat server, switched to each test's fake."""
    switch = FakeSwitch()
    with FakeWeChatServer(switch) as server:
        yield switch, server


@pytest.fixture(scope="session")
def fake_server_url(_servers: tuple[FakeSwitch, FakeWeChatServer]) -> str:
    """The run's fake WeChat server's URL, for an app a module shares; the fake of a
    test answers only when the test asks for ``fake_server``."""
    return _servers[1].url


@pytest.fixture
def fake_server(
    fake: FakeWeChat, _servers: tuple[FakeSwitch, FakeWeChatServer]
) -> Iterator[FakeWeChatServer]:
    """The fake WeChat over real HTTP on loopback: the run's server, answering with this
    test's ``fake``."""
    switch, server = _servers
    switch.fake = fake
    try:
        yield server
    finally:
        switch.fake = None


@pytest.fixture
def server(fake_server: FakeWeChatServer) -> FakeWeChatServer:
    """``fake_server`` under the name the fake's own tests and the OAuth tests use."""
    return fake_server


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


# ------------------------------------------------------------------ end to end (Node)


@pytest.fixture(scope="session")
def node() -> str:
    """The node executable; the e2e tests run the client SDKs in it."""
    executable = shutil.which("node")
    if executable is None:
        skip_or_fail("node is not installed; the e2e tests run the client SDKs in Node")
    assert executable is not None
    return executable


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
