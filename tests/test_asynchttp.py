"""The asyncio HTTP client a login uses for WeChat, against real servers on loopback:
the fake WeChat, and small raw servers that answer the ways HTTP allows (chunked, up to
the end of the connection, closing kept connections, never answering)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest

from tests.support.constants import DEMO_APP, DEMO_ENV
from wafer_py import WaferAuth, WaferConfig
from wafer_py.auth import Credentials
from wafer_py.config import DEMO_APP_SECRET, DEMO_APPID
from wafer_py.exceptions import CodeAlreadyUsed, InvalidCode, WeChatUnavailable
from wafer_py.fakewechat import FakeWeChat
from wafer_py.wechat import WeChatClient
from wafer_py.wechat.asynchttp import AsyncHTTP, HTTPError, proxy_configured

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def read_request(reader: asyncio.StreamReader) -> bytes:
    head = b""
    while not head.endswith(b"\r\n\r\n"):
        line = await reader.readline()
        if not line:
            break
        head += line
    return head


async def serve(handler: Handler) -> tuple[asyncio.Server, str]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}/sns/jscode2session"


def run(coro: Awaitable[Any]) -> Any:
    return asyncio.run(coro)  # type: ignore[arg-type]


def test_chunked_and_until_close_bodies() -> None:
    async def main() -> None:
        async def chunked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await read_request(reader)
            writer.write(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                b'5\r\n{"a":\r\n3;ext=1\r\n 1}\r\n0\r\nX-Trailer: y\r\n\r\n'
            )
            await writer.drain()
            writer.close()

        async def until_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await read_request(reader)
            writer.write(b'HTTP/1.0 200 OK\r\n\r\n{"b": 2}')
            await writer.drain()
            writer.close()

        http = AsyncHTTP(timeout=2)
        for handler, body in ((chunked, b'{"a": 1}'), (until_close, b'{"b": 2}')):
            server, url = await serve(handler)
            async with server:
                assert await http.get(url, {"q": "1"}) == (200, body)

    run(main())


def test_kept_connections_are_reused_and_a_stale_one_is_replaced() -> None:
    async def main() -> None:
        connections: list[int] = []

        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            connections.append(1)
            for _ in range(2):  # two requests per connection, then the server closes it
                if not await read_request(reader):
                    break
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
                await writer.drain()
            writer.close()

        server, url = await serve(handler)
        async with server:
            http = AsyncHTTP(timeout=2)
            answers = [await http.get(url, {"i": str(i)}) for i in range(5)]
        assert answers == [(200, b"{}")] * 5
        assert len(connections) == 3  # 2 + 2 + 1: reused, and replaced when closed

    run(main())


def test_silence_and_garbage_are_http_errors() -> None:
    async def main() -> None:
        async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await read_request(reader)
            await asyncio.sleep(5)

        async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await read_request(reader)
            writer.write(b"SSH-2.0-OpenSSH\r\n\r\n")
            await writer.drain()
            writer.close()

        async def hangs_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await read_request(reader)
            writer.close()

        http = AsyncHTTP(timeout=0.3)
        for handler, message in (
            (silent, "no answer within"),
            (garbage, "not HTTP"),
            (hangs_up, "closed the connection"),
        ):
            server, url = await serve(handler)
            async with server:
                with pytest.raises(HTTPError, match=message):
                    await http.get(url, {"secret": "s3cr3t"})
        with pytest.raises(HTTPError) as raised:
            await http.get("http://127.0.0.1:9/sns/x", {"secret": "s3cr3t"})  # refused
        assert "s3cr3t" not in str(raised.value)

    run(main())


def test_proxy_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("https_proxy", raising=False)
    monkeypatch.delenv("HTTPS_PROXY", raising=False)
    assert not proxy_configured("https://api.weixin.qq.com")
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    assert proxy_configured("https://api.weixin.qq.com")
    client = WeChatClient(DEMO_APPID, DEMO_APP_SECRET, api_base="https://api.weixin.qq.com")
    assert client.async_capable is False  # logins then use requests, which honours it


@pytest.fixture
def client(fake_server: Any) -> Iterator[WeChatClient]:
    client = WeChatClient(DEMO_APPID, DEMO_APP_SECRET, api_base=fake_server.url)
    yield client
    client.close()


def test_acode2session_answers_like_code2session(client: WeChatClient, fake: FakeWeChat) -> None:
    async def main() -> None:
        login = fake.login(DEMO_APPID, "alice")
        wx = await client.acode2session(login["code"])
        assert wx.openid == login["openid"]
        assert wx.session_key == fake.session_key_of(DEMO_APPID, login["openid"])
        with pytest.raises(CodeAlreadyUsed):
            await client.acode2session(login["code"])
        with pytest.raises(InvalidCode):
            await client.acode2session("not-a-code")

    run(main())


def test_acode2session_unreachable_is_wechat_unavailable() -> None:
    client = WeChatClient(DEMO_APPID, DEMO_APP_SECRET, api_base="http://127.0.0.1:9", timeout=1)
    with pytest.raises(WeChatUnavailable):
        run(client.acode2session("code"))


def test_acode2session_timeout_overrides_the_clients() -> None:
    """``acode2session(code, timeout=...)`` bounds that call (a login's remaining time),
    not the client's configured timeout; ``None`` is the configured one."""

    async def main() -> None:
        async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await read_request(reader)
            await asyncio.sleep(5)
            writer.close()

        server, url = await serve(silent)
        async with server:
            base = url.removesuffix("/sns/jscode2session")
            patient = WeChatClient(DEMO_APPID, DEMO_APP_SECRET, api_base=base, timeout=60)
            with pytest.raises(WeChatUnavailable):
                await asyncio.wait_for(patient.acode2session("code", timeout=0.2), 4)
            hasty = WeChatClient(DEMO_APPID, DEMO_APP_SECRET, api_base=base, timeout=0.2)
            with pytest.raises(WeChatUnavailable):
                await asyncio.wait_for(hasty.acode2session("code", timeout=None), 4)

    run(main())


def test_concurrent_async_logins_hold_no_thread(
    make_auth: Callable[..., WaferAuth], fake: FakeWeChat, fake_server: Any
) -> None:
    """50 logins wait on a slow WeChat at once, on the event loop alone: the memory
    store needs no thread, so no worker thread is started for them."""
    auth = make_auth(store_url="memory://")
    codes = [fake.login(DEMO_APPID, f"user{i}")["code"] for i in range(50)]
    fake.latency = 0.2
    try:

        async def main() -> list[Any]:
            results = await asyncio.gather(*(auth.alogin(code) for code in codes))
            # asyncio's worker threads are named asyncio_N (the fake WeChat, in this
            # process, has threads of its own).
            workers = [t.name for t in threading.enumerate() if t.name.startswith("asyncio")]
            assert workers == []
            return list(results)

        results = run(main())
    finally:
        fake.latency = 0.0
    assert len({r.user.openid for r in results}) == 50
    assert all(auth.validate(Credentials(r.skey)).openid == r.user.openid for r in results)


def test_async_logins_are_capped_per_loop(
    make_auth: Callable[..., WaferAuth], fake: FakeWeChat, fake_server: Any
) -> None:
    """``max_concurrent_logins``: 20 logins at once against a slow WeChat, at most 4 of
    them wait on WeChat at any moment, and every one of them completes."""
    auth = make_auth(store_url="memory://", max_concurrent_logins=4)
    codes = [fake.login(DEMO_APPID, f"capped{i}")["code"] for i in range(20)]
    wechat = auth.wechat
    assert isinstance(wechat, WeChatClient)
    real = wechat.acode2session
    in_flight = peak = 0

    async def counting(code: str) -> Any:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        try:
            return await real(code)
        finally:
            in_flight -= 1

    wechat.acode2session = counting  # type: ignore[method-assign]
    fake.latency = 0.05
    try:

        async def main() -> list[Any]:
            return list(await asyncio.gather(*(auth.alogin(code) for code in codes)))

        results = run(main())
        # A second event loop gets a semaphore of its own (one is bound to its loop).
        again = run(auth.alogin(fake.login(DEMO_APPID, "capped-again")["code"]))
    finally:
        fake.latency = 0.0
    assert peak == 4
    assert len({r.user.openid for r in results}) == 20
    assert again.user.openid != results[0].user.openid


def test_max_concurrent_logins_is_checked() -> None:
    assert WaferConfig(**DEMO_APP).max_concurrent_logins == 16
    config = WaferConfig.from_env({**DEMO_ENV, "WAFER_MAX_CONCURRENT_LOGINS": "64"})
    assert config.max_concurrent_logins == 64
    with pytest.raises(ValueError, match="WAFER_MAX_CONCURRENT_LOGINS"):
        WaferConfig.from_env({"WAFER_MAX_CONCURRENT_LOGINS": "many"})
    with pytest.raises(ValueError, match="at least 1"):
        WaferConfig(**DEMO_APP, max_concurrent_logins=0)
