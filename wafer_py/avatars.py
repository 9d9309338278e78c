"""Avatars users upload from ``<button open-type="chooseAvatar">``: checked, cleaned, stored.

An upload is trusted for nothing: its type is judged by its bytes (the file signature, then
a full decode by Pillow), never by its name or declared content type; its pixel count is
capped before it is decoded (a decompression bomb is refused, not expanded); and it is
re-encoded, which drops every metadata block (EXIF with GPS, XMP, comments, ICC profiles).
What is stored and served is only the re-encoded image.

Storage is pluggable (:class:`AvatarStore`): :class:`FolderAvatarStore` for one machine,
:class:`EntryAvatarStore` in the session store itself for several servers (every server
can serve every avatar), or an object store of your own (COS, S3: see docs/fill-in.md).

Pillow is an extra (``images``): without it :func:`clean_image`
raises :class:`~wafer_py.exceptions.ImagesUnavailable` (501), naming the extra.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import secrets
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple, Protocol, runtime_checkable

from .exceptions import AvatarNotFound, ImagesUnavailable, UnsupportedImage
from .stores.entries import EntryStore, entry_store

__all__ = [
    "AVATAR_PATH",
    "MAX_AVATAR_PIXELS",
    "AVATAR_SIDE",
    "Image",
    "AvatarStore",
    "FolderAvatarStore",
    "EntryAvatarStore",
    "clean_image",
    "is_avatar_key",
    "serve_headers",
]

#: Where the adapters' examples serve avatars: ``GET /weapp/avatar/<key>``.
AVATAR_PATH = "/weapp/avatar/"
#: The most pixels an upload may declare; checked before decoding (Pillow's own bomb check
#: is at ``Image.MAX_IMAGE_PIXELS``, far higher). 4096 x 4096 covers every phone photo.
MAX_AVATAR_PIXELS = 4096 * 4096
#: Stored avatars are at most this many pixels on a side (an avatar is shown small).
AVATAR_SIDE = 640

_KEY = re.compile(r"[A-Za-z0-9_-]{22}")
#: File signatures of the formats taken; anything else is refused before Pillow sees it.
_SIGNATURES = {
    "PNG": (b"\x89PNG\r\n\x1a\n",),
    "JPEG": (b"\xff\xd8\xff",),
    "GIF": (b"GIF87a", b"GIF89a"),
}


class Image(NamedTuple):
    """A cleaned avatar: the re-encoded bytes and their content type."""

    data: bytes
    content_type: str


def _sniff(data: bytes) -> str | None:
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    for name, signatures in _SIGNATURES.items():
        if data.startswith(signatures):
            return name
    return None


def clean_image(data: bytes) -> Image:
    """``data`` checked (PNG/JPEG/WebP/GIF by content, at most :data:`MAX_AVATAR_PIXELS`),
    decoded, shrunk to :data:`AVATAR_SIDE` and re-encoded without any metadata.

    JPEG stays JPEG; the others become PNG (an animated GIF keeps its first frame). Raises
    :class:`~wafer_py.exceptions.UnsupportedImage` (415) for anything else.
    """
    try:
        from PIL import Image as PILImage
        from PIL import ImageOps, UnidentifiedImageError
    except ImportError:
        raise ImagesUnavailable() from None
    kind = _sniff(data)
    if kind is None:
        raise UnsupportedImage()
    try:
        with PILImage.open(io.BytesIO(data), formats=[kind]) as img:
            width, height = img.size
            if width < 1 or height < 1 or width * height > MAX_AVATAR_PIXELS:
                raise UnsupportedImage(f"the avatar has more than {MAX_AVATAR_PIXELS} pixels")
            img.load()
            # Turn the picture as its EXIF says before the EXIF goes.
            upright = ImageOps.exif_transpose(img)
            upright.thumbnail((AVATAR_SIDE, AVATAR_SIDE))
            # JPEG stays JPEG; the rest (transparency, palettes) become PNG.
            fmt, mode = ("JPEG", "RGB") if kind == "JPEG" else ("PNG", _png_mode(upright.mode))
            pixels = upright.convert(mode)
    except PILImage.DecompressionBombError:
        raise UnsupportedImage("the avatar has too many pixels") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError):
        raise UnsupportedImage("the avatar does not decode as an image") from None
    # A fresh image from the pixels alone: nothing of the original's info (exif,
    # icc_profile, comment, xmp, text chunks) can be written back.
    clean = PILImage.frombytes(mode, pixels.size, pixels.tobytes())
    out = io.BytesIO()
    if fmt == "JPEG":
        clean.save(out, format="JPEG", quality=88)
    else:
        clean.save(out, format="PNG", optimize=True)
    return Image(out.getvalue(), "image/jpeg" if fmt == "JPEG" else "image/png")


def _png_mode(mode: str) -> str:
    return "RGBA" if mode in ("RGBA", "LA", "P", "PA", "RGBa", "La") else "RGB"


def is_avatar_key(key: str) -> bool:
    """Whether ``key`` has the shape of a key this module makes (no path, no dots)."""
    return _KEY.fullmatch(key) is not None


def _new_key() -> str:
    return secrets.token_urlsafe(16)  # 22 characters of [A-Za-z0-9_-]


def serve_headers(content_type: str) -> list[tuple[str, str]]:
    """The headers of an avatar answer: its one strict type, no sniffing, long caching (a
    key is never reused for other bytes)."""
    return [
        ("Content-Type", content_type),
        ("X-Content-Type-Options", "nosniff"),
        ("Cache-Control", "public, max-age=31536000, immutable"),
        ("Content-Security-Policy", "default-src 'none'; sandbox"),
    ]


@runtime_checkable
class AvatarStore(Protocol):
    """Where avatars live: ``put`` returns a new key, ``get`` gives back what was put.

    Keys are made by the store (:func:`is_avatar_key` shape for the bundled ones) and
    served at :data:`AVATAR_PATH` + key. ``get`` raises
    :class:`~wafer_py.exceptions.AvatarNotFound` for a key it does not hold.
    """

    def put(self, data: bytes, content_type: str) -> str:
        """Store a cleaned image; return its key."""
        ...

    def get(self, key: str) -> tuple[bytes, str]:
        """The image and content type stored under ``key``."""
        ...


class FolderAvatarStore:
    """Avatars as files in one folder: for one machine (or a shared file system).

    Each avatar is written to a temporary file and renamed into place, so a reader never
    sees half of one.
    """

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)

    def __repr__(self) -> str:
        return f"FolderAvatarStore({str(self.folder)!r})"

    def put(self, data: bytes, content_type: str) -> str:
        key = _new_key()
        suffix = ".png" if content_type == "image/png" else ".jpg"
        fd, temp = tempfile.mkstemp(dir=self.folder, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(data)
            os.replace(temp, self.folder / (key + suffix))
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
        return key

    def get(self, key: str) -> tuple[bytes, str]:
        if is_avatar_key(key):
            for suffix, content_type in ((".png", "image/png"), (".jpg", "image/jpeg")):
                try:
                    return (self.folder / (key + suffix)).read_bytes(), content_type
                except FileNotFoundError:
                    continue
        raise AvatarNotFound()


class EntryAvatarStore:
    """Avatars in the session store's entries (:class:`~wafer_py.stores.EntryStore`): every
    server on a shared store (Redis, PostgreSQL, MySQL) serves every avatar.

    An entry holds the content type and the base64 image, under ``wafer:avatar:<key>``,
    for ``ttl`` seconds (ten years by default: purges of expired entries leave it).
    """

    PREFIX = "wafer:avatar:"

    def __init__(
        self,
        store: object,
        *,
        ttl: float = 10 * 365 * 86400,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.entries: EntryStore = entry_store(store)
        self.ttl = ttl
        self.clock = clock

    def __repr__(self) -> str:
        return f"EntryAvatarStore({type(self.entries).__name__})"

    def put(self, data: bytes, content_type: str) -> str:
        key = _new_key()
        value = json.dumps({"t": content_type, "b": base64.b64encode(data).decode("ascii")})
        self.entries.set_entry(self.PREFIX + key, value, expires_at=self.clock() + self.ttl)
        return key

    def get(self, key: str) -> tuple[bytes, str]:
        if not is_avatar_key(key):
            raise AvatarNotFound()
        value = self.entries.get_entry(self.PREFIX + key, now=self.clock())
        if value is None:
            raise AvatarNotFound()
        found: dict[str, Any] = json.loads(value)
        return base64.b64decode(found["b"]), str(found["t"])
