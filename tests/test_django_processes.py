"""The Django example as a deployment runs it: under uvicorn (ASGI) and under gunicorn
(WSGI), two real processes configured by ``WAFER_*`` variables only, sharing one store.

The client SDKs' e2e suites run against the same project in-process (``tests/support/
servers.py``: "django" on uvicorn, "django-wsgi" on werkzeug's server); this checks the
servers a deployment uses, and that both hand the middleware what it needs.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.support.app_process import AppProcess, app_processes
from wafer_py.config import DEMO_APPID
from wafer_py.fakewechat import FakeWeChat
from wafer_py.protocol import MAGIC_ID

TIMEOUT = 10


@pytest.fixture(scope="module")
def apps(
    fake_server_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[AppProcess, AppProcess]]:
    """Both servers, started once for the module and side by side (each start takes
    seconds)."""
    tmp_path = tmp_path_factory.mktemp("django-processes")
    with app_processes(
        ["django", "django-wsgi"],
        store_url=f"sqlite:///{tmp_path}/shared.db",
        api_base=fake_server_url,
        log_dir=tmp_path,
    ) as (asgi, wsgi):
        yield asgi, wsgi


def login(app: AppProcess, fake: FakeWeChat, user: str) -> dict[str, Any]:
    code = fake.login(DEMO_APPID, user)["code"]
    response = requests.get(f"{app.url}/weapp/login", headers={"X-WX-Code": code}, timeout=10)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert body[MAGIC_ID] == 1 and body["code"] == 0
    return body


def test_uvicorn_and_gunicorn_serve_the_protocol_from_one_store(
    apps: tuple[AppProcess, AppProcess], fake: FakeWeChat, fake_server: Any
) -> None:
    asgi, wsgi = apps
    for first, second in ((asgi, wsgi), (wsgi, asgi)):
        body = login(first, fake, "alice")
        skey, session_id = body["data"]["skey"], body["session"]["id"]
        for headers in ({"X-WX-Skey": skey}, {"X-WX-Id": session_id, "X-WX-Skey": skey}):
            user = requests.get(f"{second.url}/weapp/user", headers=headers, timeout=TIMEOUT)
            assert user.status_code == 200, user.text
            assert user.json()["data"]["userInfo"]["openId"] == body["data"]["userinfo"]["openId"]
        me = requests.get(f"{second.url}/api/me", headers={"X-WX-Skey": skey}, timeout=TIMEOUT)
        assert me.json()["data"]["openId"] == body["data"]["userinfo"]["openId"]
        code = fake.phone_code(DEMO_APPID, "alice", phone_number="13900139000")["code"]
        phone = requests.post(
            f"{second.url}/weapp/phone",
            json={"code": code},
            headers={"X-WX-Skey": skey},
            timeout=TIMEOUT,
        )
        assert phone.json() == {"code": 0, "data": {"phoneNumber": "13900139000"}}
        out = requests.post(
            f"{second.url}/weapp/logout", headers={"X-WX-Skey": skey}, timeout=TIMEOUT
        )
        assert out.json() == {"code": 0, "data": {"revoked": True}}
        refused = requests.get(
            f"{first.url}/weapp/user", headers={"X-WX-Skey": skey}, timeout=TIMEOUT
        )
        assert refused.status_code == 401
        assert refused.json()["error"] == "ERR_INVALID_SESSION"


def test_no_session_gets_the_challenge_on_both_servers(
    apps: tuple[AppProcess, AppProcess],
) -> None:
    for app in apps:
        for method, path in (
            ("GET", "/api/me"),
            ("GET", "//api/me"),
            ("GET", "/weapp/user"),
            ("POST", "/weapp/phone"),  # no CSRF token either: Django's 403, answered too
            ("POST", "/weapp/logout"),
        ):
            response = requests.request(method, app.url + path, timeout=TIMEOUT)
            assert response.status_code == 401, (app.url, path, response.text)
            assert response.json()["reason"] == "missing_session"
        assert "Traceback" not in app.log_text()
