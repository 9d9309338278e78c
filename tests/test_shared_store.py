"""Several app processes share one store: what one does, the others see at once.

Two real server processes on their own ports, a Starlette app under uvicorn and a Flask
app under gunicorn, configured only by ``WAFER_*`` variables and sharing one store
(SQLite file, Redis, Redis through twemproxy, PostgreSQL, MariaDB): a login on one
validates on the other, a logout on one is refused by the other on the very next request,
and so is a revoke of all the user's sessions by ``wafer-py sessions revoke`` from a third
process. The apps run with their default session cache: on Redis and PostgreSQL a process
that did not make the change hears of it through the store's invalidation channel, a few
milliseconds later (SECURITY.md, "The session cache"), so there "the very next request"
is a request within :data:`DELIVERY` seconds; SQLite's cache is exact at once, and the
others have none.

The store and both processes start once per store kind (a start takes seconds), so each
test logs in as WeChat users of its own (:func:`handle`): the fake derives an openid from
the user's handle, and a test's users are nobody else's.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from tests.support import services
from tests.support.app_process import ROOT, SECRET, AppProcess, app_processes
from tests.support.twemproxy import Twemproxy
from wafer_py.config import DEMO_APPID
from wafer_py.fakewechat import FakeWeChat


@pytest.fixture(scope="module", params=[*services.STORE_KINDS, "redis-proxy"])
def store_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A store of each kind in turn, in a namespace of its own, for the module's tests of
    that kind; "redis-proxy" is Redis through twemproxy in front of two private servers
    (``?cluster=proxy``)."""
    tmp_path = tmp_path_factory.mktemp(f"shared-{request.param}")
    if request.param == "redis-proxy":
        with Twemproxy(tmp_path / "twemproxy") as proxy:
            yield f"{proxy.url}?cluster=proxy"
        return
    with services.fresh_store_url(str(request.param), tmp_path) as url:
        yield url


@pytest.fixture(scope="module")
def apps(
    store_url: str, fake_server_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[AppProcess, AppProcess]]:
    """Both app processes on ``store_url``, started side by side, asking the run's fake
    WeChat server (which answers with the fake of the test that asks for ``fake_server``)."""
    log_dir = tmp_path_factory.mktemp("shared-apps")
    with app_processes(
        ["starlette", "flask"], store_url=store_url, api_base=fake_server_url, log_dir=log_dir
    ) as (a, b):
        yield a, b


@pytest.fixture
def handle(request: pytest.FixtureRequest, fake_server: Any) -> Callable[[str], str]:
    """``handle(name)``: the WeChat user ``name`` of this test alone (the apps share a
    store across the module's tests); the fake WeChat server answers with this test's fake."""

    def of_this_test(name: str) -> str:
        return f"{request.node.name}-{name}"

    return of_this_test


#: How long another process may take to hear of a revocation through the store's channel
#: (milliseconds when idle; generous for a loaded test machine).
DELIVERY = 3.0


def heard_by_channel(store_url: str) -> bool:
    """Whether the other process learns of a revocation through a channel (not at once)."""
    return store_url.startswith(("redis://", "postgresql://")) and "cluster=" not in store_url


def refused(app: AppProcess, skey: str, store_url: str) -> bool:
    """Whether ``app`` refuses ``skey``: at once, or within :data:`DELIVERY` seconds where
    the store's invalidation channel carries the news."""
    deadline = time.monotonic() + (DELIVERY if heard_by_channel(store_url) else 0.0)
    while True:
        status = user_status(app, skey)
        if status == 401 or time.monotonic() >= deadline:
            return status == 401
        time.sleep(0.005)


def login(app: AppProcess, fake: FakeWeChat, user: str) -> dict[str, Any]:
    code = fake.login(DEMO_APPID, user)["code"]
    response = requests.get(f"{app.url}/weapp/login", headers={"X-WX-Code": code}, timeout=10)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def user_status(app: AppProcess, skey: str) -> int:
    response = requests.get(f"{app.url}/weapp/user", headers={"X-WX-Skey": skey}, timeout=10)
    if response.status_code == 401:
        assert response.json()["error"] == "ERR_INVALID_SESSION"
    return response.status_code


def test_a_login_on_one_process_validates_on_the_other(
    apps: tuple[AppProcess, AppProcess], fake: FakeWeChat, handle: Callable[[str], str]
) -> None:
    a, b = apps
    for first, second in ((a, b), (b, a)):
        data = login(first, fake, handle("alice"))
        response = requests.get(
            f"{second.url}/weapp/user", headers={"X-WX-Skey": data["skey"]}, timeout=10
        )
        assert response.status_code == 200, response.text
        assert response.json()["data"]["userInfo"]["openId"] == data["userinfo"]["openId"]


def test_a_logout_on_one_process_is_refused_on_the_other_at_once(
    apps: tuple[AppProcess, AppProcess],
    fake: FakeWeChat,
    store_url: str,
    handle: Callable[[str], str],
) -> None:
    a, b = apps
    skey = login(a, fake, handle("bob"))["skey"]
    assert user_status(a, skey) == 200 and user_status(b, skey) == 200  # both have seen it
    response = requests.post(f"{b.url}/weapp/logout", headers={"X-WX-Skey": skey}, timeout=10)
    assert response.json() == {"code": 0, "data": {"revoked": True}}
    assert user_status(b, skey) == 401  # the process that revoked: at once
    assert refused(a, skey, store_url)


def test_revoking_a_user_from_the_command_line(
    apps: tuple[AppProcess, AppProcess],
    fake: FakeWeChat,
    store_url: str,
    handle: Callable[[str], str],
) -> None:
    a, b = apps
    sessions = [login(app, fake, handle("carol")) for app in (a, b, a)]
    openid = sessions[0]["userinfo"]["openId"]
    other = login(b, fake, handle("dan"))["skey"]
    assert all(user_status(app, s["skey"]) == 200 for s in sessions for app in apps)
    result = subprocess.run(
        [sys.executable, "-m", "wafer_py", "sessions", "revoke", "--openid", openid],
        env={**os.environ, "WAFER_STORE_URL": store_url, "WAFER_SECRET_KEY": SECRET},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"revoked 3 sessions of {openid}\n"
    assert all(refused(app, s["skey"], store_url) for s in sessions for app in apps)
    assert user_status(a, other) == 200 and user_status(b, other) == 200
