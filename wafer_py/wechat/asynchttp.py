"""A small HTTP/1.1 client on asyncio streams, for the one call a login makes to WeChat.

Why not a thread with ``requests``: a login waits tens of milliseconds on WeChat. In a
worker thread, every login in flight is a thread contending for the GIL with the event
loop, and the loop's lag grows with the number of logins. On the loop itself, a login
waiting on WeChat costs nothing, so one process keeps hundreds in flight.

Just what WeChat's API needs: ``GET`` with a query string, ``http`` and ``https``
(certificates checked), keep-alive connections reused per event loop, bodies with a
``Content-Length``, chunked or up to the end of the connection, one overall timeout per
call. No proxies: :func:`proxy_configured` tells the caller to use ``requests`` instead
when the environment names one.

A kept connection carries another request only if nothing is left on it: HTTP/1.1 has no
way to tell which request an answer is for, so a byte past the end of the last answer,
or one that arrived while the connection was idle (an answer nobody asked for: another
login's openid), would be read as the answer to the next login. Such a connection is
closed instead (:func:`_clean`). aiohttp (3.14) queues what arrives on an idle pooled
connection and hands it to the next request, which is why this client stays.
"""

from __future__ import annotations

import asyncio
import select
import ssl
import urllib.request
from collections.abc import Mapping
from urllib.parse import urlencode, urlsplit

from ..stores.loops import PerLoop

__all__ = ["AsyncHTTP", "HTTPError", "proxy_configured"]

#: Largest response body accepted (WeChat's answers are a few hundred bytes).
MAX_BODY = 1 << 20
#: Idle connections kept per host and event loop.
MAX_IDLE = 32
#: Connections open at once per host and event loop; more requests wait for one.
MAX_CONNECTIONS = 100

_Key = tuple[str, int, bool]
_Conn = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class HTTPError(Exception):
    """The server could not be reached or did not answer in HTTP; the text names no URL."""


def proxy_configured(url: str) -> bool:
    """Whether the environment routes ``url`` through a proxy (``HTTPS_PROXY``...)."""
    parts = urlsplit(url)
    proxies = urllib.request.getproxies()
    return parts.scheme in proxies and not urllib.request.proxy_bypass(parts.hostname or "")


class AsyncHTTP:
    """Keep-alive ``GET`` requests on the running event loop. Safe to share between loops
    (each loop has its own connections, closed when it shuts down); not thread-safe
    within one loop."""

    def __init__(self, *, timeout: float = 5.0) -> None:
        self.timeout = timeout
        self._tls: ssl.SSLContext | None = None
        self._pools: PerLoop[_Pool] = PerLoop(_Pool, _Pool.aclose)

    async def get(
        self, url: str, params: Mapping[str, str], *, timeout: float | None = None
    ) -> tuple[int, bytes]:
        """``GET url?params``; the status and the body. Raises :class:`HTTPError`.
        ``timeout`` bounds the whole call (``None``: the client's own)."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise HTTPError(f"not an http(s) URL: {parts.scheme}://")
        tls = parts.scheme == "https"
        key = (parts.hostname, parts.port or (443 if tls else 80), tls)
        target = (parts.path or "/") + "?" + urlencode(params)
        host = parts.hostname if parts.port is None else f"{parts.hostname}:{parts.port}"
        request = (
            f"GET {target} HTTP/1.1\r\nHost: {host}\r\nAccept: application/json\r\n"
            "User-Agent: wafer_py\r\nConnection: keep-alive\r\n\r\n"
        ).encode("latin-1")
        pool = await self._pools.get()
        slot = pool.slots.get(key)
        if slot is None:
            slot = pool.slots[key] = asyncio.Semaphore(MAX_CONNECTIONS)
        limit = self.timeout if timeout is None else timeout
        try:
            async with asyncio.timeout(limit), slot:
                return await self._exchange(pool, key, request)
        except TimeoutError:
            raise HTTPError(f"no answer within {limit:g} s") from None
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
            raise HTTPError(type(exc).__name__) from None

    async def _exchange(self, pool: _Pool, key: _Key, request: bytes) -> tuple[int, bytes]:
        while (kept := pool.take(key)) is not None:
            # A kept connection the server closed meanwhile fails before any answer
            # arrives: the request never reached it, so sending it again is safe.
            try:
                return await _send(pool, key, kept, request)
            except _Stale:
                kept[1].close()
        conn = await self._connect(key)
        try:
            return await _send(pool, key, conn, request)
        except _Stale:
            raise HTTPError("the server closed the connection without answering") from None

    async def _connect(self, key: _Key) -> _Conn:
        host, port, tls = key
        if tls and self._tls is None:
            self._tls = ssl.create_default_context()
        return await asyncio.open_connection(
            host, port, ssl=self._tls if tls else None, server_hostname=host if tls else None
        )

    async def aclose(self) -> None:
        """Close the idle connections of the running event loop."""
        (await self._pools.get()).close_idle()

    def close(self) -> None:
        """Close the idle connections of every event loop."""
        self._pools.close()


class _Pool:
    """One event loop's connections: the idle ones per server, and a cap per server
    on those open at once."""

    def __init__(self) -> None:
        self.idle: dict[_Key, list[_Conn]] = {}
        self.slots: dict[_Key, asyncio.Semaphore] = {}
        self.closed = False

    def take(self, key: _Key) -> _Conn | None:
        """An idle connection to ``key`` with nothing on it to read; the others closed."""
        idle = self.idle.get(key)
        while idle:
            reader, writer = idle.pop()
            if _clean(reader, writer):
                return reader, writer
            writer.close()
        return None

    def keep(self, key: _Key, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Keep a connection whose answer was read to its end, if nothing follows it."""
        idle = self.idle.setdefault(key, [])
        if not self.closed and len(idle) < MAX_IDLE and _clean(reader, writer):
            idle.append((reader, writer))
        else:
            writer.close()

    def close_idle(self) -> None:
        idle, self.idle = self.idle, {}
        for conns in idle.values():
            for _, writer in conns:
                writer.close()

    async def aclose(self) -> None:
        """Close the idle connections, and those in use once their answer is read."""
        self.closed = True
        self.close_idle()


async def _send(pool: _Pool, key: _Key, conn: _Conn, request: bytes) -> tuple[int, bytes]:
    """One request and its answer on ``conn``; the connection then goes back to ``pool``
    if it can carry another request."""
    reader, writer = conn
    done = False
    try:
        try:
            writer.write(request)
            await writer.drain()
            status_line = await reader.readline()
        except (ConnectionError, OSError) as exc:
            raise _Stale() from exc
        if not status_line:
            raise _Stale()
        status, headers = await _read_head(status_line, reader)
        body, reusable = await _read_body(headers, reader)
        done = True
    finally:
        if not done:
            writer.close()
    if reusable:
        pool.keep(key, reader, writer)
    else:
        writer.close()
    return status, body


def _clean(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
    """Whether a kept connection has nothing left on it to read: no byte past the last
    answer, nothing that arrived while it was idle, no close from the server, in the
    reader's buffer or still in the socket (the event loop may not have read it yet)."""
    # StreamReader has no public count of the bytes it holds unread.
    if writer.is_closing() or reader.at_eof() or reader.exception() is not None:
        return False
    if reader._buffer:  # type: ignore[attr-defined]
        return False
    sock = writer.get_extra_info("socket")
    if sock is None or not hasattr(select, "poll"):
        return True
    poller = select.poll()
    poller.register(sock.fileno(), select.POLLIN)
    return not poller.poll(0)


class _Stale(Exception):
    """The connection failed before any byte of an answer."""


async def _read_head(
    status_line: bytes, reader: asyncio.StreamReader
) -> tuple[int, dict[str, str]]:
    fields = status_line.split(None, 2)
    if len(fields) < 2 or not fields[0].startswith(b"HTTP/1.") or not fields[1].isdigit():
        raise HTTPError("the answer is not HTTP/1.x")
    headers: dict[str, str] = {}
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b"\n"):
            break
        if not line:
            raise HTTPError("the connection closed inside the headers")
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    if fields[0] == b"HTTP/1.0" and headers.get("connection", "").lower() != "keep-alive":
        headers["connection"] = "close"
    return int(fields[1]), headers


async def _read_body(
    headers: Mapping[str, str], reader: asyncio.StreamReader
) -> tuple[bytes, bool]:
    """The body, and whether the connection can carry another request."""
    keep = headers.get("connection", "").lower() != "close"
    if "chunked" in headers.get("transfer-encoding", "").lower():
        parts: list[bytes] = []
        size = 0
        while True:
            line = await reader.readline()
            length = int(line.split(b";", 1)[0].strip() or b"x", 16)
            if length == 0:
                while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(parts), keep
            size += length
            if size > MAX_BODY:
                raise HTTPError("the answer is too large")
            parts.append(await reader.readexactly(length))
            await reader.readexactly(2)
    if "content-length" in headers:
        length = int(headers["content-length"])
        if not 0 <= length <= MAX_BODY:
            raise HTTPError("the answer is too large")
        return await reader.readexactly(length), keep
    chunks: list[bytes] = []
    size = 0
    while chunk := await reader.read(65536):
        size += len(chunk)
        if size > MAX_BODY:
            raise HTTPError("the answer is too large")
        chunks.append(chunk)
    return b"".join(chunks), False
