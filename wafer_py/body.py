"""Request bodies wafer_py reads itself, read up to a limit and no further.

A helper endpoint such as ``/weapp/phone`` needs a few bytes of JSON; a client sending
megabytes is refused with 413 (:class:`~wafer_py.exceptions.BodyTooLarge`) before they are
held in memory. A declared ``Content-Length`` over the limit is refused without reading a
byte; a body of unknown length (chunked) is read in pieces and dropped once it passes the
limit. The adapters (:mod:`wafer_py.flask`, :mod:`wafer_py.starlette`) feed their
framework's stream to these functions, so both answer alike.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterable, Iterable
from typing import Protocol

from .exceptions import BodyTooLarge

__all__ = [
    "MAX_JSON_BODY",
    "MAX_AVATAR_BODY",
    "check_length",
    "read_limited",
    "aread_limited",
    "CappedReader",
    "acapped",
]

#: The largest JSON body wafer_py reads itself (``{"code": "<getPhoneNumber code>"}`` is
#: under 300 bytes). Each kind of body has its own limit: an upload would get another.
MAX_JSON_BODY = 4 * 1024
#: The largest avatar upload (the whole ``multipart/form-data`` body, file and framing).
MAX_AVATAR_BODY = 2 * 1024 * 1024


def check_length(content_length: str | None, limit: int) -> None:
    """Refuse a declared ``Content-Length`` over ``limit``, before reading anything.

    Anything but a plain number is left to the server, which frames the body (and has
    refused a malformed length already).
    """
    if content_length is None:
        return
    value = content_length.strip()
    # A length of 19+ digits is over any limit; no need to convert it.
    if value.isascii() and value.isdigit() and (len(value) > 18 or int(value) > limit):
        raise BodyTooLarge(f"the request body is larger than {limit} bytes")


def _add(chunks: list[bytes], size: int, chunk: bytes, limit: int) -> int:
    size += len(chunk)
    if size > limit:
        raise BodyTooLarge(f"the request body is larger than {limit} bytes")
    chunks.append(chunk)
    return size


def read_limited(chunks: Iterable[bytes], limit: int) -> bytes:
    """Join ``chunks`` (a body as it arrives), raising ``BodyTooLarge`` at the first byte
    past ``limit``: at most ``limit`` bytes and one chunk are ever held."""
    kept: list[bytes] = []
    size = 0
    for chunk in chunks:
        size = _add(kept, size, chunk, limit)
    return b"".join(kept)


async def aread_limited(chunks: AsyncIterable[bytes], limit: int) -> bytes:
    """:func:`read_limited` for a body that arrives asynchronously (an ASGI stream)."""
    kept: list[bytes] = []
    size = 0
    async for chunk in chunks:
        size = _add(kept, size, chunk, limit)
    return b"".join(kept)


class _Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


class CappedReader:
    """A file-like view of ``stream`` that raises ``BodyTooLarge`` once more than ``limit``
    bytes came through: for a streaming parser (Werkzeug's multipart parser) that reads a
    body piece by piece, so an upload is refused at the limit, not read whole first."""

    def __init__(self, stream: _Readable, limit: int) -> None:
        self._stream = stream
        self._limit = limit
        self._seen = 0

    def read(self, size: int = -1, /) -> bytes:
        # Never ask for more than one byte past the limit: that byte is enough to refuse.
        room = self._limit + 1 - self._seen
        chunk = self._stream.read(room if size < 0 else min(size, room))
        self._seen += len(chunk)
        if self._seen > self._limit:
            raise BodyTooLarge(f"the request body is larger than {self._limit} bytes")
        return chunk


async def acapped(chunks: AsyncIterable[bytes], limit: int) -> AsyncGenerator[bytes, None]:
    """Pass ``chunks`` on, raising ``BodyTooLarge`` at the first byte past ``limit``: an
    ASGI body fed to a streaming parser (Starlette's multipart parser) stays under it."""
    seen = 0
    async for chunk in chunks:
        seen += len(chunk)
        if seen > limit:
            raise BodyTooLarge(f"the request body is larger than {limit} bytes")
        yield chunk
