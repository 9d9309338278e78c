"""Bodies wafer_py reads itself are capped (issue #11, item 6).

``/weapp/phone`` reads ``{"code": ...}`` through ``fetch_phone_number``: a body over
:data:`~wafer_py.body.MAX_JSON_BODY` gets 413 in the protocol's error format, and is not
read whole on the way. Checked over real HTTP on both examples, as deployed (gunicorn,
uvicorn), by the peak resident memory (``VmHWM``) of the process serving the request:
64 MB sent, with a ``Content-Length`` or chunked, must grow it by less than 32 MB.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from tests.support.app_process import AppProcess, app_process
from tests.support.servers import serve_example
from wafer_py import WaferAuth
from wafer_py.body import MAX_JSON_BODY, aread_limited, check_length, read_limited
from wafer_py.config import DEMO_APPID
from wafer_py.exceptions import BodyTooLarge
from wafer_py.fakewechat import FakeWeChat
from wafer_py.protocol import MAGIC_ID, error_response

MB = 1024 * 1024
PIECE = b"x" * (64 * 1024)


def sixty_four_mb() -> Iterator[bytes]:
    for _ in range(64 * MB // len(PIECE)):
        yield PIECE


def chunked(pieces: Iterable[bytes]) -> Iterator[bytes]:
    for piece in pieces:
        yield b"%x\r\n" % len(piece) + piece + b"\r\n"
    yield b"0\r\n\r\n"


def raw_post(
    base: str, path: str, headers: dict[str, str], body: Iterable[bytes]
) -> tuple[int, bytes]:
    """POST ``body`` (sent by a thread while the answer is read: a server may answer
    before it has read it all); ``(status, answer body)``."""
    url = urlsplit(base)
    sock = socket.create_connection((url.hostname or "", url.port or 80), timeout=60)
    head = f"POST {path} HTTP/1.1\r\nHost: {url.netloc}\r\n" + "".join(
        f"{name}: {value}\r\n" for name, value in headers.items()
    )
    sock.sendall(head.encode("latin-1") + b"\r\n")

    def pump() -> None:
        try:
            for piece in body:
                sock.sendall(piece)
        except OSError:  # the server answered and closed: the rest is not wanted
            pass

    sender = threading.Thread(target=pump, daemon=True)
    sender.start()
    try:
        response = http.client.HTTPResponse(sock)
        response.begin()
        return response.status, response.read()
    finally:
        with contextlib.suppress(OSError):  # the server may have closed first
            sock.shutdown(socket.SHUT_RDWR)  # stops the sender
        sender.join(30)
        sock.close()


def assert_too_large(status: int, body: bytes) -> None:
    assert status == 413, (status, body[:300])
    answer = json.loads(body)
    assert (answer[MAGIC_ID], answer["reason"], answer["code"]) == (1, "body_too_large", 413)
    assert answer["error"] == "ERR_CHECK_LOGIN_FAILED"


def login(base: str, fake: FakeWeChat, user: str) -> str:
    code = fake.login(DEMO_APPID, user)["code"]
    answer = requests.get(f"{base}/weapp/login", headers={"X-WX-Code": code}, timeout=10)
    assert answer.status_code == 200, answer.text
    skey: str = answer.json()["data"]["skey"]
    return skey


# ------------------------------------------------------------------- the helpers


def test_check_length() -> None:
    check_length(None, 10)
    check_length("10", 10)
    check_length(" 0 ", 10)
    check_length("ten", 10)  # the server frames the body; not ours to judge
    for declared in ("11", "99999999999999999999999999999999", "9" * 5000):
        with pytest.raises(BodyTooLarge):
            check_length(declared, 10)


def test_read_limited_stops_at_the_first_byte_past_the_limit() -> None:
    assert read_limited([b"ab", b"", b"cd"], 4) == b"abcd"
    assert read_limited([], 4) == b""
    pulled: list[bytes] = []

    def endless() -> Iterator[bytes]:
        while True:
            pulled.append(b"abc")
            yield b"abc"

    with pytest.raises(BodyTooLarge) as caught:
        read_limited(endless(), 7)
    assert len(pulled) == 3 and error_response(caught.value).status == 413


def test_aread_limited() -> None:
    import asyncio

    async def pieces(*chunks: bytes) -> Any:
        for chunk in chunks:
            yield chunk

    assert asyncio.run(aread_limited(pieces(b"ab", b"cd"), 4)) == b"abcd"
    with pytest.raises(BodyTooLarge):
        asyncio.run(aread_limited(pieces(b"ab", b"cde"), 4))


# ------------------------------------------- both examples, in a thread (fast)


@pytest.fixture(params=["starlette", "flask"])
def served(
    request: pytest.FixtureRequest, make_auth: Callable[..., WaferAuth]
) -> Iterator[tuple[str, WaferAuth]]:
    auth = make_auth()
    with serve_example(str(request.param), auth) as url:
        yield url, auth


def test_phone_body_at_the_limit_is_read_and_past_it_refused(
    served: tuple[str, WaferAuth], fake: FakeWeChat
) -> None:
    base, auth = served
    skey = login(base, fake, "limit")
    openid = fake.login(DEMO_APPID, "limit", rotate=False)["openid"]
    headers = {"X-WX-Skey": skey, "Content-Type": "application/json"}

    def body(size: int) -> bytes:
        code = fake.phone_code(DEMO_APPID, "limit", phone_number="13800138000")["code"]
        data = json.dumps({"code": code}).encode()
        return data + b" " * (size - len(data))  # JSON allows trailing blanks

    refused = requests.post(
        f"{base}/weapp/phone", data=body(MAX_JSON_BODY + 1), headers=headers, timeout=10
    )
    assert_too_large(refused.status_code, refused.content)
    sized = [body(MAX_JSON_BODY + 1)[i : i + 1000] for i in range(0, MAX_JSON_BODY + 1, 1000)]
    status, answer = raw_post(
        base, "/weapp/phone", {**headers, "Transfer-Encoding": "chunked"}, chunked(sized)
    )
    assert_too_large(status, answer)
    stored = auth.store.get_user(openid)
    assert stored is not None and stored.phone is None  # nothing changed
    assert fake.calls["/wxa/business/getuserphonenumber"] == 0

    ok = requests.post(f"{base}/weapp/phone", data=body(MAX_JSON_BODY), headers=headers, timeout=10)
    assert ok.status_code == 200, ok.text
    pieces = [body(MAX_JSON_BODY)[i : i + 1000] for i in range(0, MAX_JSON_BODY, 1000)]
    status, answer = raw_post(
        base, "/weapp/phone", {**headers, "Transfer-Encoding": "chunked"}, chunked(pieces)
    )
    assert status == 200, answer
    stored = auth.store.get_user(openid)
    assert stored is not None and stored.phone == "+8613800138000"


# ---------------------------------------- as deployed: the server's peak memory


def serving_pid(app: AppProcess) -> int:
    """The process that serves requests: gunicorn's (only) worker, or uvicorn itself."""
    pid = app.process.pid
    children = [
        int(entry)
        for entry in os.listdir("/proc")
        if entry.isdigit() and _parent(int(entry)) == pid
    ]
    assert len(children) <= 1, children
    return children[0] if children else pid


def _parent(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])


def peak_rss(pid: int) -> int:
    """``VmHWM``: the most resident memory the process ever had, in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmHWM for {pid}")


@pytest.fixture(params=["starlette", "flask"])
def deployed(
    request: pytest.FixtureRequest, fake_server: Any, tmp_path: Path
) -> Iterator[AppProcess]:
    with app_process(
        str(request.param),
        store_url=f"sqlite:///{tmp_path}/sessions.db",
        api_base=fake_server.url,
        log_dir=tmp_path,
    ) as app:
        yield app


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_a_64_mb_phone_body_is_refused_without_being_read(
    deployed: AppProcess, fake: FakeWeChat, framing: str
) -> None:
    base = deployed.url
    skey = login(base, fake, "hog")
    headers = {"X-WX-Skey": skey, "Content-Type": "application/json"}
    # One good request first, so that the code paths are loaded before the baseline.
    code = fake.phone_code(DEMO_APPID, "hog", phone_number="13800138000")["code"]
    warm = requests.post(f"{base}/weapp/phone", json={"code": code}, headers=headers, timeout=10)
    assert warm.status_code == 200, warm.text
    pid = serving_pid(deployed)
    before = peak_rss(pid)

    if framing == "chunked":
        headers["Transfer-Encoding"] = "chunked"
        body: Iterable[bytes] = chunked(sixty_four_mb())
    else:
        headers["Content-Length"] = str(64 * MB)
        body = sixty_four_mb()
    status, answer = raw_post(base, "/weapp/phone", headers, body)
    assert_too_large(status, answer)
    time.sleep(0.5)  # whatever the server does with the rest of the body, let it happen

    grown = peak_rss(pid) - before
    print(f"{framing}: peak RSS {before / MB:.1f} MB, grown by {grown / MB:.1f} MB")
    assert grown < 32 * MB, f"peak RSS grew by {grown / MB:.1f} MB"
    # The server is still serving.
    assert requests.get(f"{base}/weapp/user", headers={"X-WX-Skey": skey}, timeout=10).ok


# ------------------------------------ a view that read the body before the helper


def _app_reading_first(framework: str, auth: WaferAuth) -> Any:
    """A phone route whose view reads the JSON body itself before ``fetch_phone_number``."""
    if framework == "flask":
        from flask import Flask, request

        from wafer_py.flask import Wafer, error_response, fetch_phone_number

        app = Flask(__name__)
        Wafer(app, auth)

        @app.post("/phone")
        def phone() -> Any:
            request.get_data(cache=True)  # the app had a look first
            try:
                return {"number": fetch_phone_number().phone_number}
            except BodyTooLarge as exc:
                return error_response(exc)

        return app

    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    from wafer_py.asgi import WaferMiddleware
    from wafer_py.starlette import error_response as aerror_response
    from wafer_py.starlette import fetch_phone_number as afetch

    async def aphone(request: Request) -> Response:
        await request.body()  # the app had a look first
        try:
            return JSONResponse({"number": (await afetch(request)).phone_number})
        except BodyTooLarge as exc:
            return aerror_response(exc)

    return Starlette(
        routes=[Route("/phone", aphone, methods=["POST"])],
        middleware=[Middleware(WaferMiddleware, auth=auth)],
    )


@pytest.mark.parametrize("framework", ["flask", "starlette"])
def test_a_body_the_view_read_first_is_still_found_and_capped(
    framework: str, make_auth: Callable[..., WaferAuth], fake: FakeWeChat
) -> None:
    from tests.support.servers import serve_asgi, serve_wsgi

    auth = make_auth()
    app = _app_reading_first(framework, auth)
    serve = serve_wsgi if framework == "flask" else serve_asgi
    with serve(app) as base:
        skey = login(base, fake, "reader")
        headers = {"X-WX-Skey": skey, "Content-Type": "application/json"}
        code = fake.phone_code(DEMO_APPID, "reader", phone_number="13800138000")["code"]
        ok = requests.post(f"{base}/phone", json={"code": code}, headers=headers, timeout=10)
        assert ok.status_code == 200 and ok.json() == {"number": "13800138000"}, ok.text
        big = json.dumps({"code": code}).encode() + b" " * MAX_JSON_BODY
        refused = requests.post(f"{base}/phone", data=big, headers=headers, timeout=10)
        assert_too_large(refused.status_code, refused.content)
