"""The Django middleware under the sync (WSGI) and async (ASGI) handler: the login path,
``request.wafer``/``request.wafer_user``, the challenge of a 401/403, ``WAFER_PROTECT``,
CSRF, and ``login_required`` on ``def`` and ``async def`` views."""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import async_to_sync, iscoroutinefunction
from django.test import AsyncClient, Client

from tests.django import urls
from wafer_py import WaferAuth
from wafer_py.config import DEMO_APPID
from wafer_py.fakewechat import FakeWeChat
from wafer_py.protocol import MAGIC_ID

pytestmark = pytest.mark.urls("tests.django.urls")


class Sync:
    """The Django test client through the sync handler (as under WSGI)."""

    def __init__(self, **options: Any) -> None:
        self.client = Client(**options)

    def get(self, path: str, headers: dict[str, str] | None = None) -> Any:
        return self.client.get(path, headers=headers or {})

    def post(self, path: str, body: bytes = b"", headers: dict[str, str] | None = None) -> Any:
        return self.client.post(path, body, content_type="application/json", headers=headers or {})


class Async(Sync):
    """The same requests through Django's ASGI handler (async middleware chain)."""

    def __init__(self, **options: Any) -> None:
        self.client = AsyncClient(**options)  # type: ignore[assignment]

    def get(self, path: str, headers: dict[str, str] | None = None) -> Any:
        async def get() -> Any:
            return await self.client.get(path, headers=headers or {})

        return async_to_sync(get)()

    def post(self, path: str, body: bytes = b"", headers: dict[str, str] | None = None) -> Any:
        async def post() -> Any:
            return await self.client.post(
                path, body, content_type="application/json", headers=headers or {}
            )

        return async_to_sync(post)()


@pytest.fixture(params=[Sync, Async], ids=["sync", "async"])
def client(request: pytest.FixtureRequest, wafer: WaferAuth) -> Sync:
    return request.param()  # type: ignore[no-any-return]


def login(client: Sync, fake: FakeWeChat, user: str = "alice") -> str:
    code = fake.login(DEMO_APPID, user)["code"]
    OPENIDS[user] = fake.login(DEMO_APPID, user, rotate=False)["openid"]
    response = client.get("/weapp/login", headers={"X-WX-Code": code})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body[MAGIC_ID] == 1 and body["code"] == 0
    assert body["session"]["skey"] == body["data"]["skey"]
    return str(body["data"]["skey"])


OPENIDS: dict[str, str] = {}


def assert_challenge(response: Any, reason: str) -> None:
    assert response.status_code == 401
    assert response["Content-Type"] == "application/json; charset=utf-8"
    body = response.json()
    assert body[MAGIC_ID] == 1
    assert body["error"] == "ERR_INVALID_SESSION"
    assert body["code"] == -1
    assert body["reason"] == reason


def test_login_then_a_session(client: Sync, fake: FakeWeChat) -> None:
    skey = login(client, fake)
    body = client.get("/open", headers={"X-WX-Skey": skey}).json()
    assert body == {
        "authenticated": True,
        "openid": OPENIDS["alice"],
        "state": True,
        "generation": "v2",
    }
    assert client.get("/guarded", headers={"X-WX-Skey": skey}).json()["authenticated"]
    assert client.get("/async/guarded", headers={"X-WX-Skey": skey}).json()["authenticated"]


def test_a_failed_login_is_the_protocols_answer(client: Sync) -> None:
    response = client.get("/weapp/login")
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "ERR_LOGIN_FAILED" and body["code"] == -1
    bad = client.get("/weapp/login", headers={"X-WX-Code": "not-a-code-wechat-gave"})
    assert bad.status_code in (400, 401, 403)
    assert bad.json()["error"] == "ERR_LOGIN_FAILED"


def test_anonymous_requests_pass_as_anonymous(client: Sync) -> None:
    body = client.get("/open").json()
    assert body == {"authenticated": False, "openid": None, "state": False, "generation": None}
    assert client.get("/async/open").json()["authenticated"] is False


@pytest.mark.parametrize("path", ["/guarded", "/async/guarded"])
def test_login_required_answers_the_protocol_not_a_redirect(client: Sync, path: str) -> None:
    assert_challenge(client.get(path), "missing_session")
    assert_challenge(client.get(path, headers={"X-WX-Skey": "0" * 48}), "invalid_session")


def test_login_required_keeps_the_kind_of_view() -> None:
    assert iscoroutinefunction(urls.async_guarded)
    assert not iscoroutinefunction(urls.guarded)
    assert urls.guarded.__name__ == "guarded"


@pytest.mark.parametrize("path", ["/forbidden", "/unauthorized"])
def test_a_401_or_403_without_a_session_becomes_the_invalid_session_answer(
    client: Sync, fake: FakeWeChat, path: str
) -> None:
    assert_challenge(client.get(path), "missing_session")
    assert_challenge(client.get(path, headers={"X-WX-Skey": "0" * 48}), "invalid_session")
    skey = login(client, fake)
    kept = client.get(path, headers={"X-WX-Skey": skey})  # a session: the view's own answer
    assert kept.status_code in (401, 403) and kept.content == b"no"


@pytest.mark.parametrize(
    "path", ["/api/thing", "/%2Fapi/thing", "/.//api/thing", "/x/../api/thing"]
)
def test_protect_refuses_every_form_of_the_path(
    client: Sync, fake: FakeWeChat, settings: Any, path: str
) -> None:
    settings.WAFER_PROTECT = ["/api/"]
    client = type(client)()  # the chain reads its settings when built
    assert_challenge(client.get(path), "missing_session")
    skey = login(client, fake)
    assert client.get("/api/thing", headers={"X-WX-Skey": skey}).json()["authenticated"]


def test_a_session_needs_no_csrf_token_and_no_session_gets_the_challenge(
    wafer: WaferAuth, fake: FakeWeChat
) -> None:
    for client in (Sync(enforce_csrf_checks=True), Async(enforce_csrf_checks=True)):
        skey = login(client, fake)
        ok = client.post("/post", b'{"a": 1}', headers={"X-WX-Skey": skey})
        assert ok.status_code == 200 and ok.json() == {"posted": {"a": 1}}
        # no session: Django's CSRF 403, answered as the protocol's challenge
        assert_challenge(client.post("/post", b"{}"), "missing_session")


def test_bad_session_headers_never_reach_a_view_as_a_session(client: Sync) -> None:
    bad = (
        {"X-WX-Skey": "a b c"},
        {"X-WX-Id": "abc"},
        {"X-WX-Skey": "é" * 10},
        {"X-WX-Skey": "x" * 5000},
    )
    for headers in bad:
        assert client.get("/open", headers=headers).json()["authenticated"] is False
        assert_challenge(client.get("/guarded", headers=headers), "invalid_session")


@pytest.mark.parametrize("prefix", ["", "/async"])
def test_phone_and_logout_helpers(client: Sync, fake: FakeWeChat, prefix: str) -> None:
    skey = login(client, fake)
    headers = {"X-WX-Skey": skey}
    code = fake.phone_code(DEMO_APPID, "alice", phone_number="13800138000")["code"]
    body = client.post(f"{prefix}/phone", f'{{"code": "{code}"}}'.encode(), headers).json()
    assert body == {"phoneNumber": "13800138000"}
    too_big = client.post(f"{prefix}/phone", b'{"code": "' + b"x" * 70_000 + b'"}', headers)
    assert too_big.status_code == 413 and too_big.json()[MAGIC_ID] == 1
    assert client.post(f"{prefix}/logout", b"", headers).json() == {"revoked": True}
    assert_challenge(client.get("/guarded", headers=headers), "invalid_session")
    refused = client.post(f"{prefix}/logout", b"", headers)
    assert refused.json()["error"] == "ERR_INVALID_SESSION"
