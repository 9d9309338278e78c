"""``protect=`` holds whatever the path looks like (issue #11, item 1).

Both examples protect ``/api/`` with ``protect=`` and serve ``/api/me`` without a decorator.
Over real HTTP, under the servers a deployment uses (the Flask example under gunicorn and
under Werkzeug's server, the Starlette example under uvicorn), spellings of that path that
a server or router turns back into ``/api/me`` (``//api/me``, ``/%2Fapi/me``, ``/x/../api/me``
...) never reach the view without a session. Requests go out through ``http.client``, which
sends the path exactly as written.

The login path is matched exactly: a spelling of it is an ordinary request for the app's
router, which logs nobody in and leaves the code unspent.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.support.app_process import SECRET, app_process
from tests.support.servers import serve_example, serve_wsgi
from wafer_py import WaferAuth, WaferConfig
from wafer_py.config import DEMO_APPID
from wafer_py.fakewechat import FakeWeChat
from wafer_py.protocol import (
    HEADER_CODE,
    MAGIC_ID,
    RequestState,
    WaferProtocol,
    WaferResponse,
    path_forms,
    path_matcher,
)

#: Spellings of /api/me that some server, proxy or router in front of a view turns into it.
VARIANTS = [
    "//api/me",
    "/%2Fapi/me",
    "/%2fapi/me",
    "///api/me",
    "/api//me",
    "/./api/me",
    "/api/./me",
    "/%2E/api/me",
    "/x/../api/me",
    "/x/%2e%2e/api/me",
    "/x/..//api/me",
    "/%61pi/me",
]
LOGIN_VARIANTS = [
    "//weapp/login",
    "/%2Fweapp/login",
    "/weapp//login",
    "/./weapp/login",
    "/x/../weapp/login",
]


def raw_get(base: str, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    """GET ``path`` as written (no client-side normalisation); ``(status, body)``."""
    url = urlsplit(base)
    connection = http.client.HTTPConnection(url.hostname or "", url.port, timeout=10)
    try:
        connection.request("GET", path, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def login(base: str, fake: FakeWeChat, user: str) -> str:
    code = fake.login(DEMO_APPID, user)["code"]
    status, body = raw_get(base, "/weapp/login", {"X-WX-Code": code})
    assert status == 200, body
    skey: str = json.loads(body)["data"]["skey"]
    return skey


def assert_challenged(status: int, body: bytes, path: str) -> None:
    assert status == 401, (path, status, body[:200])
    answer = json.loads(body)
    assert (answer[MAGIC_ID], answer["error"], answer["reason"], answer["code"]) == (
        1,
        "ERR_INVALID_SESSION",
        "missing_session",
        -1,
    ), path


# ----------------------------------------------------------------- the core, alone


def test_path_forms() -> None:
    assert path_forms("/api/me") == ("/api/me",)
    assert path_forms("/.well-known/x") == ("/.well-known/x",)
    assert path_forms("//api/me") == ("//api/me", "/api/me")
    assert "/api/me" in path_forms("/%2Fapi/me")
    assert "/api/me" in path_forms("/x/../api/me")
    assert "/api/me" in path_forms("/x/..//api/me")
    assert path_forms("/a/b/..")[-1] == "/a/"
    assert path_forms("/../..") == ("/../..", "/")
    # Werkzeug merges slashes without resolving dots: its form is kept too.
    assert "/api/../x" in path_forms("//api/../x")


SEGMENT = st.sampled_from(["api", "me", "x", "", ".", "..", "%2F", "%2e", "%2E%2e", "%61pi"])


@given(st.lists(SEGMENT, max_size=8))
def test_a_path_matches_when_a_rewriting_of_it_does(segments: list[str]) -> None:
    path = "/" + "/".join(segments)
    forms = path_forms(path)
    assert forms[0] == path
    match = path_matcher(["/api/"])
    assert match(path) == any(form.startswith("/api/") for form in forms)
    assert path_matcher(lambda p: p.startswith("/api/"))(path) == match(path)
    assert path_matcher(None)(path) is False


def test_login_path_is_matched_exactly(
    make_auth: Callable[..., WaferAuth], fake: FakeWeChat
) -> None:
    """A spelling of the login path is no login; under a protected prefix it is refused."""
    protocol = WaferProtocol(make_auth(), path_matcher(["/weapp/"]))
    code = fake.login(DEMO_APPID, "exact")["code"]
    for path in LOGIN_VARIANTS:
        outcome = protocol.handle(path, {HEADER_CODE: code})
        assert isinstance(outcome, WaferResponse) and outcome.status == 401, path
        assert outcome.body["reason"] == "missing_session"
    answer = protocol.handle("/weapp/login", {HEADER_CODE: code})  # the code is unspent
    assert isinstance(answer, WaferResponse)
    assert answer.status == 200, answer.body
    assert isinstance(protocol.handle("/weapp//", {}), WaferResponse)
    assert isinstance(protocol.handle("/public", {}), RequestState)


# -------------------------------------------------------------- over real HTTP

SERVERS = ["gunicorn", "werkzeug", "uvicorn"]


@pytest.fixture(params=SERVERS)
def served(
    request: pytest.FixtureRequest,
    fake_server: Any,
    tmp_path: Path,
    make_auth: Callable[..., WaferAuth],
) -> Iterator[tuple[str, str]]:
    """``(server, base URL)``: gunicorn and uvicorn in processes of their own, as deployed;
    Werkzeug's server in a thread."""
    server = str(request.param)
    if server == "werkzeug":
        with serve_example("flask", make_auth()) as url:
            yield server, url
        return
    framework = "flask" if server == "gunicorn" else "starlette"
    store_url = f"sqlite:///{tmp_path}/sessions.db"
    with app_process(
        framework, store_url=store_url, api_base=fake_server.url, log_dir=tmp_path
    ) as app:
        yield server, app.url


def test_path_variants_never_reach_a_protected_view_without_a_session(
    served: tuple[str, str], fake: FakeWeChat
) -> None:
    server, base = served
    for path in ["/api/me", *VARIANTS]:
        status, body = raw_get(base, path)
        assert_challenged(status, body, f"{server} {path}")
        status, body = raw_get(base, path, {"X-WX-Skey": "0" * 48})  # an unknown session
        assert status == 401 and json.loads(body)["reason"] == "invalid_session", (server, path)
    # The plain path still serves a request with a session.
    skey = login(base, fake, "pathuser")
    status, body = raw_get(base, "/api/me", {"X-WX-Skey": skey})
    assert status == 200, body
    assert json.loads(body)["data"]["openId"] == fake.login(DEMO_APPID, "pathuser")["openid"]
    assert raw_get(base, "/health")[0] == 200


@pytest.mark.parametrize("server", ["gunicorn", "uvicorn"])
def test_login_path_variants_log_nobody_in(
    server: str, fake_server: Any, fake: FakeWeChat, tmp_path: Path
) -> None:
    """A spelling of the login path goes to the app's router (404 in the examples):
    nothing is stored, and the code still logs in at the real path afterwards."""
    store_url = f"sqlite:///{tmp_path}/sessions.db"
    framework = "flask" if server == "gunicorn" else "starlette"
    login_code = fake.login(DEMO_APPID, "variant")
    with app_process(
        framework, store_url=store_url, api_base=fake_server.url, log_dir=tmp_path
    ) as app:
        for path in LOGIN_VARIANTS:
            status, body = raw_get(app.url, path, {"X-WX-Code": login_code["code"]})
            assert status == 404, (path, status, body[:200])
            assert b"skey" not in body
        status, body = raw_get(app.url, "/weapp/login", {"X-WX-Code": login_code["code"]})
        assert status == 200, body
    auth = WaferAuth(
        WaferConfig(
            store_url=store_url, secret_keys=(SECRET,), api_base=fake_server.url, fake_wechat=True
        )
    )
    try:
        assert len(auth.store.list_sessions(login_code["openid"])) == 1
    finally:
        auth.close()


def test_flask_route_guard_decides_on_the_matched_rule(
    make_auth: Callable[..., WaferAuth],
) -> None:
    """Under Flask, ``protect=`` is also checked against the URL rule Werkzeug's router
    matched: served without the middleware in front, the guard alone refuses every
    spelling that reaches ``/api/me``."""
    from examples.flask_app.app import create_app

    app = create_app(make_auth())
    inner = app.wsgi_app.app  # type: ignore[attr-defined]  # the Flask app, middleware removed
    with serve_wsgi(inner) as base:
        for path in ["/api/me", "//api/me", "/%2Fapi/me", "///api/me"]:
            status, body = raw_get(base, path)
            assert_challenged(status, body, path)
        # Slashes merged inside the path: the router redirects to /api/me before any view.
        status, body = raw_get(base, "/api//me")
        assert status == 308 and b'href="http://127.0.0.1' in body and b'/api/me"' in body
        assert raw_get(base, "/health")[0] == 200
