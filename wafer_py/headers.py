"""The Wafer protocol's request headers: their names, their limits, and reading them.

Values are checked before use (length, alphabet): a header no legitimate client sends is
:class:`~wafer_py.exceptions.MalformedHeader` (or :class:`~wafer_py.exceptions.HeaderTooLarge`),
malformed session headers an :class:`~wafer_py.exceptions.InvalidSession`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Literal

from .auth import Credentials
from .exceptions import (
    HeaderTooLarge,
    InvalidSession,
    MalformedEncryptedData,
    MalformedHeader,
    MissingCode,
    WaferError,
)

__all__ = [
    "HEADER_CODE",
    "HEADER_ENCRYPTED_DATA",
    "HEADER_LEGACY_ENCRYPTED_DATA",
    "HEADER_IV",
    "HEADER_ID",
    "HEADER_SKEY",
    "WAFER_HEADERS",
    "read_credentials",
    "read_encrypted",
    "read_login",
    "client_generation",
    "has_encrypted_data",
]

# Lower-case, as ASGI gives them and as the WSGI adapter normalises them.
HEADER_CODE = "x-wx-code"
HEADER_ENCRYPTED_DATA = "x-wx-encrypted-data"
HEADER_LEGACY_ENCRYPTED_DATA = "x-wx-encrypt-data"  # qcloud-weapp-client-sdk 0.7.x
HEADER_IV = "x-wx-iv"
HEADER_ID = "x-wx-id"
HEADER_SKEY = "x-wx-skey"
WAFER_HEADERS = frozenset(
    {
        HEADER_CODE,
        HEADER_ENCRYPTED_DATA,
        HEADER_LEGACY_ENCRYPTED_DATA,
        HEADER_IV,
        HEADER_ID,
        HEADER_SKEY,
    }
)

# Limits well above anything WeChat or our own tokens produce.
_MAX_TOKEN = 256
_MAX_ENCRYPTED = 32 * 1024
_TOKEN = re.compile(r"[A-Za-z0-9._~+/=-]+")
_BASE64 = re.compile(r"[A-Za-z0-9+/= ]+")


def _header(
    headers: Mapping[str, str],
    name: str,
    limit: int = _MAX_TOKEN,
    pattern: re.Pattern[str] = _TOKEN,
    malformed: type[WaferError] = MalformedHeader,
) -> str | None:
    value = headers.get(name)
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    if len(value) > limit:
        raise HeaderTooLarge(f"the {name} header is too large")
    if not value.isascii() or not pattern.fullmatch(value):
        raise malformed(f"the {name} header is malformed")
    return value


def read_credentials(headers: Mapping[str, str]) -> Credentials | None:
    """Session credentials from lower-cased headers; ``None`` if there are none.

    Malformed credentials raise :class:`~wafer_py.exceptions.InvalidSession`: they can
    never be valid, and logging in again gives the client good ones.
    """
    try:
        skey = _header(headers, HEADER_SKEY)
        session_id = _header(headers, HEADER_ID)
    except MalformedHeader:
        raise InvalidSession("the session headers are malformed; log in again") from None
    if skey is None:
        if session_id is not None:
            raise InvalidSession("X-WX-Id came without X-WX-Skey; log in again")
        return None
    return Credentials(skey, session_id)


def read_encrypted(headers: Mapping[str, str]) -> tuple[str | None, str | None, bool]:
    """``(encrypted_data, iv, legacy)`` from the headers.

    ``legacy`` is the 0.7.x client's ``X-WX-Encrypt-Data`` without an IV (IV = key).
    ``X-WX-Encrypted-Data`` without ``X-WX-IV`` is malformed.
    """
    bad = MalformedEncryptedData
    data = _header(headers, HEADER_ENCRYPTED_DATA, _MAX_ENCRYPTED, _BASE64, bad)
    iv = _header(headers, HEADER_IV, _MAX_TOKEN, _BASE64, bad)
    if data is None:
        legacy = _header(headers, HEADER_LEGACY_ENCRYPTED_DATA, _MAX_ENCRYPTED, _BASE64, bad)
        if legacy is not None:
            return legacy, iv, iv is None
    elif iv is None:
        raise MalformedEncryptedData("X-WX-IV must come with X-WX-Encrypted-Data")
    return data, iv, False


def has_encrypted_data(headers: Mapping[str, str]) -> bool:
    """Whether the request sent any header of the seed flow (encrypted data or an IV)."""
    return (
        HEADER_ENCRYPTED_DATA in headers
        or HEADER_LEGACY_ENCRYPTED_DATA in headers
        or HEADER_IV in headers
    )


def read_login(headers: Mapping[str, str]) -> tuple[str, str | None, str | None, bool]:
    """The code and the encrypted profile (data, IV, legacy format) of a login request."""
    code = _header(headers, HEADER_CODE)
    if code is None:
        raise MissingCode()
    data, iv, legacy = read_encrypted(headers)
    return code, data, iv, legacy


def client_generation(headers: Mapping[str, str]) -> Literal["v1", "v2"]:
    """Which client generation sent these headers (v1 sends the session id)."""
    return "v1" if headers.get(HEADER_ID) else "v2"
