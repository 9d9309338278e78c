"""The rules of a profile the user fills in (``<input type="nickname">``, chooseAvatar).

Since 2022-11 WeChat gives a mini-program no real nickname or avatar at login; the user
types one and picks a picture, and the mini-program sends them to ``POST /weapp/profile``
(and the picture first to ``POST /weapp/avatar``). These functions check what came: a
nickname of 1-64 characters once trimmed, with no control characters; an avatar URL that
is https or one of this server's own avatars. A break is
:class:`~wafer_py.exceptions.InvalidProfile` (400), saying which rule.
"""

from __future__ import annotations

import json
import unicodedata
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from .avatars import AvatarStore, EntryAvatarStore, clean_image, is_avatar_key
from .exceptions import BadBody, InvalidProfile

if TYPE_CHECKING:
    from .auth import Authenticated, WaferAuth

__all__ = [
    "MAX_NICKNAME",
    "clean_nickname",
    "check_avatar_url",
    "profile_from_body",
    "default_avatar_store",
    "save_avatar",
]

MAX_NICKNAME = 64
MAX_AVATAR_URL = 1024
# Control characters, surrogates and line/paragraph separators: nothing a name shows.
_FORBIDDEN = {"Cc", "Cs", "Zl", "Zp"}


def clean_nickname(value: object) -> str:
    """``value`` trimmed, if it is a nickname of 1-:data:`MAX_NICKNAME` characters without
    control characters; else :class:`~wafer_py.exceptions.InvalidProfile`."""
    if not isinstance(value, str):
        raise InvalidProfile("nickName must be a string")
    name = value.strip()
    if not name:
        raise InvalidProfile("nickName is empty")
    if len(name) > MAX_NICKNAME:
        raise InvalidProfile(f"nickName is longer than {MAX_NICKNAME} characters")
    if any(unicodedata.category(c) in _FORBIDDEN for c in name):
        raise InvalidProfile("nickName contains control characters")
    return name


def check_avatar_url(value: object, *, own_prefix: str | None = None) -> str:
    """``value`` if it is an https URL, or ``own_prefix`` (this server's avatar URL base,
    such as ``http://127.0.0.1:8000/weapp/avatar/``) followed by an avatar key."""
    if not isinstance(value, str):
        raise InvalidProfile("avatarUrl must be a string")
    if len(value) > MAX_AVATAR_URL or any(c.isspace() or not c.isprintable() for c in value):
        raise InvalidProfile("avatarUrl is not a URL")
    if own_prefix and value.startswith(own_prefix) and is_avatar_key(value[len(own_prefix) :]):
        return value
    try:
        parts = urlsplit(value)
    except ValueError:
        raise InvalidProfile("avatarUrl is not a URL") from None
    if parts.scheme != "https" or not parts.hostname or parts.username or parts.password:
        raise InvalidProfile("avatarUrl must be an https URL or one of this server's avatars")
    return value


def profile_from_body(body: bytes) -> tuple[str, str | None]:
    """The ``nickName`` and optional ``avatarUrl`` of a ``/weapp/profile`` JSON body, not
    yet checked (:class:`~wafer_py.exceptions.BadBody` if it is no JSON object)."""
    try:
        data: Any = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise BadBody("the body is not JSON") from None
    if not isinstance(data, dict):
        raise BadBody("the body is not a JSON object")
    if "nickName" not in data:
        raise InvalidProfile("nickName is missing")
    url = data.get("avatarUrl")
    return data["nickName"], None if url is None else url


def default_avatar_store(auth: WaferAuth) -> AvatarStore:
    """The avatar store the helpers use when given none: ``auth``'s own session store's
    entries, so every server sharing the store serves every avatar."""
    return EntryAvatarStore(auth.store, clock=auth.clock)


def save_avatar(
    auth: WaferAuth,
    who: Authenticated,
    data: bytes,
    *,
    own_prefix: str,
    store: AvatarStore | None = None,
) -> str:
    """Clean an uploaded avatar (:func:`~wafer_py.avatars.clean_image`), store it, set it
    as the user's ``avatarUrl`` and return that URL (``own_prefix`` + its key).

    Blocking (Pillow, the store): the async adapters run it in a worker thread. Nothing
    is stored for an image that is refused.
    """
    image = clean_image(data)
    key = (store or default_avatar_store(auth)).put(image.data, image.content_type)
    url = own_prefix + key
    auth.set_profile(who, avatar_url=url, own_avatar_prefix=own_prefix)
    return url
