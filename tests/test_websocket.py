"""WebSocket handshakes through WaferMiddleware: ``wx.connectSocket`` sends the Wafer
headers; a valid session sets ``websocket.user``, an invalid one is closed with 1008
before the app runs, none at all reaches the app as anonymous."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.authentication import requires
from starlette.middleware import Middleware
from starlette.routing import WebSocketRoute
from starlette.testclient import TestClient
from starlette.websockets import WebSocket, WebSocketDisconnect

from tests.support.ci import skip_or_fail
from wafer_py import WaferAuth
from wafer_py.asgi import WaferMiddleware
from wafer_py.config import DEMO_APPID
from wafer_py.fakewechat import FakeWeChat

POLICY_VIOLATION = 1008


@requires("authenticated")
async def mine(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_text(f"{websocket.user.display_name}:{websocket.user.openid}")
    await websocket.close()


async def anyone(websocket: WebSocket) -> None:
    await websocket.accept()
    user = websocket.user
    await websocket.send_text(user.openid if user.is_authenticated else "anonymous")
    await websocket.close()


def make_app(auth: WaferAuth) -> Starlette:
    return Starlette(
        routes=[
            WebSocketRoute("/ws/mine", mine),
            WebSocketRoute("/ws/anyone", anyone),
            WebSocketRoute("/api/ws", anyone),
        ],
        middleware=[Middleware(WaferMiddleware, auth=auth, protect=["/api/"])],
    )


def refusal(client: TestClient, path: str, headers: dict[str, str] | None = None) -> int:
    """The close code of a handshake that must not be accepted."""
    with (
        pytest.raises(WebSocketDisconnect) as closed,
        client.websocket_connect(path, headers=dict(headers or {})) as ws,
    ):
        ws.receive_text()
    return closed.value.code


def _login(client: TestClient, fake: FakeWeChat, user: str) -> str:
    code = fake.login(DEMO_APPID, user)["code"]
    answer = client.get("/weapp/login", headers={"X-WX-Code": code})
    assert answer.status_code == 200, answer.text
    return str(answer.json()["data"]["skey"])


@pytest.mark.parametrize("store", ["sqlite", "memory"])
def test_requires_authenticated_accepts_a_valid_session_and_refuses_an_invalid_one(
    make_auth: Callable[..., WaferAuth], fake: FakeWeChat, store: str
) -> None:
    auth = make_auth(**({"store_url": "memory://"} if store == "memory" else {}))
    with TestClient(make_app(auth)) as client:
        skey = _login(client, fake, "socket-user")
        with client.websocket_connect("/ws/mine", headers={"X-WX-Skey": skey}) as ws:
            name, openid = ws.receive_text().split(":")
        assert openid.startswith("o") and name
        altered = skey[:-1] + ("A" if skey[-1] != "A" else "B")
        for bad in ("not-a-known-skey", "bad skey!", altered):
            assert refusal(client, "/ws/anyone", {"X-WX-Skey": bad}) == POLICY_VIOLATION
        # an id without its skey is malformed too
        assert refusal(client, "/ws/anyone", {"X-WX-Id": "x"}) == POLICY_VIOLATION


def test_no_session_reaches_the_app_as_anonymous(
    make_auth: Callable[..., WaferAuth], fake: FakeWeChat
) -> None:
    with TestClient(make_app(make_auth())) as client:
        with client.websocket_connect("/ws/anyone") as ws:
            assert ws.receive_text() == "anonymous"
        # requires() decides for itself: it closes without accepting
        refusal(client, "/ws/mine")
        # a protect-ed path without a session is the middleware's refusal
        assert refusal(client, "/api/ws") == POLICY_VIOLATION
        skey = _login(client, fake, "protected-socket")
        with client.websocket_connect("/api/ws", headers={"X-WX-Skey": skey}) as ws:
            assert ws.receive_text().startswith("o")


def test_a_revoked_session_is_refused(
    make_auth: Callable[..., WaferAuth], fake: FakeWeChat
) -> None:
    auth = make_auth()
    with TestClient(make_app(auth)) as client:
        skey = _login(client, fake, "revoked-socket")
        who = auth.validate(auth_credentials(skey))
        assert auth.revoke(who.session.id)
        assert refusal(client, "/ws/mine", {"X-WX-Skey": skey}) == POLICY_VIOLATION


def auth_credentials(skey: str) -> Any:
    from wafer_py.auth import Credentials

    return Credentials(skey)


# ------------------------------------------------------------ over a real server


@contextmanager
def serve_ws(app: Any) -> Iterator[int]:
    """uvicorn with its wsproto WebSocket protocol on a free loopback port."""
    import uvicorn

    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, log_level="warning", lifespan="off", ws="wsproto"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        threading.Event().wait(0.01)
    try:
        yield server.servers[0].sockets[0].getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(10)


def ws_get(port: int, path: str, headers: dict[str, str]) -> tuple[str, list[str]]:
    """A WebSocket client (wsproto over a socket): ``("accepted", messages)`` or
    ``("rejected", [status])``."""
    from wsproto import ConnectionType, WSConnection
    from wsproto.events import (
        AcceptConnection,
        CloseConnection,
        RejectConnection,
        Request,
        TextMessage,
    )

    conn = WSConnection(ConnectionType.CLIENT)
    extra = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    messages: list[str] = []
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(conn.send(Request(host="127.0.0.1", target=path, extra_headers=extra)))
        accepted = False
        while True:
            data = sock.recv(65536)
            conn.receive_data(data or None)
            for event in conn.events():
                if isinstance(event, RejectConnection):
                    return "rejected", [str(event.status_code)]
                if isinstance(event, AcceptConnection):
                    accepted = True
                elif isinstance(event, TextMessage):
                    messages.append(event.data)
                elif isinstance(event, CloseConnection):
                    sock.sendall(conn.send(event.response()))
                    return ("accepted" if accepted else "closed"), messages
            if not data:
                return ("accepted" if accepted else "closed"), messages


def test_over_uvicorn(make_auth: Callable[..., WaferAuth], fake: FakeWeChat) -> None:
    try:
        import wsproto  # noqa: F401  (uvicorn's WebSocket protocol and our client)
    except ImportError:
        skip_or_fail("wsproto is not installed (pip install wsproto)")
    import requests

    auth = make_auth()
    with serve_ws(make_app(auth)) as port:
        code = fake.login(DEMO_APPID, "real-socket")["code"]
        answer = requests.get(
            f"http://127.0.0.1:{port}/weapp/login", headers={"X-WX-Code": code}, timeout=10
        )
        skey = answer.json()["data"]["skey"]
        outcome, messages = ws_get(port, "/ws/mine", {"X-WX-Skey": skey})
        assert outcome == "accepted" and messages[0].split(":")[1].startswith("o")
        # closed before the handshake completes: the server refuses the upgrade
        assert ws_get(port, "/ws/mine", {"X-WX-Skey": "not-a-known-skey"}) == ("rejected", ["403"])
        assert ws_get(port, "/ws/anyone", {}) == ("accepted", ["anonymous"])
