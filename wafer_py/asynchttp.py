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
"""

from __future__ import annotations

import asyncio
import ssl
import urllib.request
import weakref
from collections.abc import Mapping
from urllib.parse import urlencode, urlsplit

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
    (each loop has its own idle connections); not thread-safe within one loop."""

    def __init__(self, *, timeout: float = 5.0) -> None:
        self.timeout = timeout
        self._idle: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, dict[_Key, list[_Conn]]
        ] = weakref.WeakKeyDictionary()
        self._tls: ssl.SSLContext | None = None
        self._slots: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, dict[_Key, asyncio.Semaphore]
        ] = weakref.WeakKeyDictionary()

    async def get(self, url: str, params: Mapping[str, str]) -> tuple[int, bytes]:
        """``GET url?params``; the status and the body. Raises :class:`HTTPError`."""
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
        slots = self._slots.setdefault(asyncio.get_running_loop(), {})
        slot = slots.get(key)
        if slot is None:
            slot = slots[key] = asyncio.Semaphore(MAX_CONNECTIONS)
        try:
            async with asyncio.timeout(self.timeout), slot:
                return await self._exchange(key, request)
        except TimeoutError:
            raise HTTPError(f"no answer within {self.timeout} s") from None
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
            raise HTTPError(type(exc).__name__) from None

    async def _exchange(self, key: _Key, request: bytes) -> tuple[int, bytes]:
        idle = self._idle.setdefault(asyncio.get_running_loop(), {}).setdefault(key, [])
        while idle:
            # A kept connection the server closed meanwhile fails before any answer
            # arrives: the request never reached it, so sending it again is safe.
            reader, writer = idle.pop()
            try:
                return await self._send(key, reader, writer, request)
            except _Stale:
                writer.close()
        reader, writer = await self._connect(key)
        try:
            return await self._send(key, reader, writer, request)
        except _Stale:
            raise HTTPError("the server closed the connection without answering") from None

    async def _connect(self, key: _Key) -> _Conn:
        host, port, tls = key
        if tls and self._tls is None:
            self._tls = ssl.create_default_context()
        return await asyncio.open_connection(
            host, port, ssl=self._tls if tls else None, server_hostname=host if tls else None
        )

    async def _send(
        self, key: _Key, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
    ) -> tuple[int, bytes]:
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
        idle = self._idle.setdefault(asyncio.get_running_loop(), {}).setdefault(key, [])
        if reusable and len(idle) < MAX_IDLE:
            idle.append((reader, writer))
        else:
            writer.close()
        return status, body

    async def aclose(self) -> None:
        """Close the idle connections of the running event loop."""
        for conns in self._idle.pop(asyncio.get_running_loop(), {}).values():
            for _, writer in conns:
                writer.close()


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
