"""A kept-alive connection to WeChat must never hand one login's answer to another.

A real upstream on loopback answers each ``jscode2session`` with an openid made from the
code it was asked about, then misbehaves on the connection it keeps: it sends a second,
unsolicited answer (another user's openid) while the connection is idle, or garbage, or
closes it, or gets ``Content-Length`` wrong. Whatever it does, a login gets its own
openid or ``WeChatUnavailable``, never somebody else's; and a login made after the
misbehaviour is over gets its own answer (the dirty connection is dropped, not used).
Both login paths: on the event loop (``acode2session``) and in a thread (``requests``).

What no client can tell apart: an unsolicited answer that arrives while a request is in
flight on the connection (HTTP/1.1 answers carry no request id).
"""

from __future__ import annotations

import asyncio
import json
import queue
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from wafer_py.config import DEMO_APP_SECRET, DEMO_APPID
from wafer_py.exceptions import WeChatUnavailable
from wafer_py.wechat import WeChatClient

#: The openid the upstream slips in where nobody asked for it.
VICTIM = "openid-of-somebody-else"
#: Seconds for the client's bytes and the server's to cross loopback and be read.
SETTLE = 0.1

#: What the upstream does on a connection once it has answered its first request.
Misbehaviour = Callable[[asyncio.StreamWriter, bytes], Awaitable[None]]


def answer(openid: str) -> bytes:
    """An HTTP answer to ``jscode2session`` for ``openid``."""
    body = json.dumps({"openid": openid, "session_key": "c2Vzc2lvbmtleTAxMjM0NQ=="}).encode()
    return (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n" % len(body)
    ) + body


def openid_for(code: str) -> str:
    return f"openid-for-{code}"


async def read_code(reader: asyncio.StreamReader) -> str | None:
    """The ``js_code`` of the next request on the connection; ``None`` when it closed."""
    try:
        request_line = await reader.readline()
        while (await reader.readline()) not in (b"\r\n", b"\n", b""):
            pass
    except ConnectionError:
        return None
    if not request_line:
        return None
    target = request_line.split()[1].decode()
    return parse_qs(urlsplit(target).query)["js_code"][0]


class Upstream:
    """A WeChat on loopback that answers every request with the openid of its code,
    and misbehaves once: when it answers its first request."""

    def __init__(self, misbehave: Misbehaviour) -> None:
        self.misbehave = misbehave
        self.connections = 0
        #: Set when the misbehaviour has been sent (and the bytes have had time to arrive);
        #: a thread's event, for the upstream on a thread of its own too.
        self.misbehaved = threading.Event()
        self.url = ""
        #: The server's side of each connection, in the order they were opened.
        self.writers: list[asyncio.StreamWriter] = []
        self._handlers: list[asyncio.Task[Any]] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.writers.append(writer)
        task = asyncio.current_task()
        assert task is not None
        self._handlers.append(task)
        try:
            while (code := await read_code(reader)) is not None:
                reply = answer(openid_for(code))
                if not self.misbehaved.is_set():
                    await self.misbehave(writer, reply)
                    await asyncio.sleep(SETTLE)
                    self.misbehaved.set()
                    if writer.is_closing():
                        return
                else:
                    writer.write(reply)
                    await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def stop(self) -> None:
        """Hang up on every connection and wait for their handlers to end."""
        for writer in self.writers:
            writer.close()
        await asyncio.gather(*self._handlers, return_exceptions=True)


@asynccontextmanager
async def upstream(misbehave: Misbehaviour) -> AsyncIterator[Upstream]:
    up = Upstream(misbehave)
    server = await asyncio.start_server(up.handle, "127.0.0.1", 0)
    up.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    async with server:
        try:
            yield up
        finally:
            await up.stop()


async def misbehaved(up: Upstream) -> None:
    """Wait, on the event loop, until the upstream has misbehaved."""
    while not up.misbehaved.is_set():
        await asyncio.sleep(0.01)


@contextmanager
def upstream_in_a_thread(misbehave: Misbehaviour) -> Iterator[Upstream]:
    """The same upstream on an event loop of its own, for the synchronous client."""
    started: queue.Queue[Upstream] = queue.Queue()
    stop = threading.Event()

    async def serve() -> None:
        async with upstream(misbehave) as up:
            started.put(up)
            while not stop.is_set():
                await asyncio.sleep(0.01)

    thread = threading.Thread(target=asyncio.run, args=(serve(),), daemon=True)
    thread.start()
    try:
        yield started.get(timeout=10)
    finally:
        stop.set()
        thread.join(10)


async def unsolicited_answer(writer: asyncio.StreamWriter, reply: bytes) -> None:
    """Answer, then, with the connection idle, send another user's answer."""
    writer.write(reply)
    await writer.drain()
    await asyncio.sleep(SETTLE)
    writer.write(answer(VICTIM))
    await writer.drain()


async def garbage_when_idle(writer: asyncio.StreamWriter, reply: bytes) -> None:
    writer.write(reply)
    await writer.drain()
    await asyncio.sleep(SETTLE)
    writer.write(b"\x00\x17garbage that is not HTTP\r\n\r\n")
    await writer.drain()


async def closes_when_idle(writer: asyncio.StreamWriter, reply: bytes) -> None:
    writer.write(reply)
    await writer.drain()
    await asyncio.sleep(SETTLE)
    writer.close()


async def content_length_too_short(writer: asyncio.StreamWriter, reply: bytes) -> None:
    """The body the upstream sends goes on past its ``Content-Length`` with another
    user's answer: all in one write, so it arrives with the answer itself."""
    writer.write(reply + answer(VICTIM))
    await writer.drain()


async def content_length_too_long(writer: asyncio.StreamWriter, reply: bytes) -> None:
    """The body says it is longer than it is; the bytes that fill it up are the start of
    another user's answer, whose rest then sits on the connection."""
    head, _, body = reply.partition(b"\r\n\r\n")
    length = b"Content-Length: %d" % len(body)
    head = head.replace(length, b"Content-Length: %d" % (len(body) + 20))
    writer.write(head + b"\r\n\r\n" + body + answer(VICTIM))
    await writer.drain()


MISBEHAVIOURS = {
    "unsolicited answer on the idle connection": unsolicited_answer,
    "garbage on the idle connection": garbage_when_idle,
    "idle connection closed": closes_when_idle,
    "Content-Length shorter than the body, another answer behind": content_length_too_short,
    "Content-Length longer than the body, another answer behind": content_length_too_long,
}


@pytest.fixture
def make_client() -> Iterator[Callable[[str], WeChatClient]]:
    clients: list[WeChatClient] = []

    def make(api_base: str) -> WeChatClient:
        client = WeChatClient(DEMO_APPID, DEMO_APP_SECRET, api_base=api_base, timeout=2)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


async def own_or_unavailable(client: WeChatClient, code: str) -> str | None:
    """The openid a login with ``code`` gets; ``None`` for ``WeChatUnavailable``. Any
    other user's openid fails the test."""
    try:
        wx = await client.acode2session(code)
    except WeChatUnavailable:
        return None
    assert wx.openid == openid_for(code), f"the login for {code!r} got {wx.openid!r}"
    return wx.openid


@pytest.mark.parametrize("misbehave", list(MISBEHAVIOURS.values()), ids=list(MISBEHAVIOURS))
def test_a_login_never_gets_another_logins_answer(
    misbehave: Misbehaviour, make_client: Callable[[str], WeChatClient]
) -> None:
    async def main() -> None:
        async with upstream(misbehave) as up:
            client = make_client(up.url)
            # The first login may fail (its own answer is broken), never get another's.
            await own_or_unavailable(client, "alice")
            await misbehaved(up)
            # What the upstream did is over: the next login gets its own answer.
            assert await own_or_unavailable(client, "bob") == openid_for("bob")
            assert await own_or_unavailable(client, "carol") == openid_for("carol")

    asyncio.run(main())


@pytest.mark.parametrize("misbehave", list(MISBEHAVIOURS.values()), ids=list(MISBEHAVIOURS))
def test_the_threaded_login_never_gets_another_logins_answer(
    misbehave: Misbehaviour, make_client: Callable[[str], WeChatClient]
) -> None:
    """The same upstream against ``code2session`` (``requests``: the path logins take in
    a worker thread, with a proxy configured or under WSGI)."""

    def own_or_unavailable_now(client: WeChatClient, code: str) -> str | None:
        try:
            wx = client.code2session(code)
        except WeChatUnavailable:
            return None
        assert wx.openid == openid_for(code), f"the login for {code!r} got {wx.openid!r}"
        return wx.openid

    with upstream_in_a_thread(misbehave) as up:
        client = make_client(up.url)
        own_or_unavailable_now(client, "alice")
        assert up.misbehaved.wait(10)
        assert own_or_unavailable_now(client, "bob") == openid_for("bob")
        assert own_or_unavailable_now(client, "carol") == openid_for("carol")


def test_logins_reuse_a_clean_connection(make_client: Callable[[str], WeChatClient]) -> None:
    """The check costs no connection: against an upstream that behaves, one connection
    carries every login made one after another."""

    async def behaves(writer: asyncio.StreamWriter, reply: bytes) -> None:
        writer.write(reply)
        await writer.drain()

    async def main() -> None:
        async with upstream(behaves) as up:
            client = make_client(up.url)
            for i in range(5):
                assert await own_or_unavailable(client, f"user{i}") == openid_for(f"user{i}")
        assert up.connections == 1

    asyncio.run(main())


def test_an_answer_that_just_arrived_is_not_taken_for_the_next_logins(
    make_client: Callable[[str], WeChatClient],
) -> None:
    """The unsolicited answer reaches the client's socket the instant before the next
    login, before the event loop has read it: the check looks at the socket too."""

    async def behaves(writer: asyncio.StreamWriter, reply: bytes) -> None:
        writer.write(reply)
        await writer.drain()

    async def main() -> None:
        async with upstream(behaves) as up:
            client = make_client(up.url)
            assert await own_or_unavailable(client, "alice") == openid_for("alice")
            await misbehaved(up)
            # Sent at once on loopback; no await between this and the next login.
            up.writers[0].write(answer(VICTIM))
            assert await own_or_unavailable(client, "bob") == openid_for("bob")
        assert up.connections == 2

    asyncio.run(main())
