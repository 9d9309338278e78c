"""Helpers for Django views: the same names and signatures as :mod:`wafer_py.flask` and
:mod:`wafer_py.starlette`, with the request first (as in Starlette).

``fetch_phone_number``, ``set_profile``, ``upload_avatar``, ``avatar_response`` and
``revoke_session`` block (call them from ``def`` views); ``afetch_phone_number``,
``aset_profile``, ``aupload_avatar``, ``aavatar_response`` and ``arevoke_session`` are the
same for ``async def`` views (Django's ``a`` prefix), whose blocking calls run in a worker
thread.
"""

from __future__ import annotations

import functools
from typing import Any, cast

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from ..auth import Authenticated, WaferAuth
from ..avatars import AVATAR_PATH, AvatarStore, serve_headers
from ..body import MAX_AVATAR_BODY, MAX_JSON_BODY, CappedReader, check_length, read_limited
from ..exceptions import BadBody, BodyTooLarge, MissingCredentials, WaferError
from ..fillin import default_avatar_store, profile_from_body, save_avatar
from ..models import User
from ..plans import offload
from ..protocol import ANONYMOUS, RequestState
from ..protocol import error_response as _protocol_error
from ..wechat.phone import PhoneNumber, phone_code_from_body
from .middleware import AUTH_ATTRIBUTE, wafer_response

__all__ = [
    "wafer_state",
    "get_current_user",
    "error_response",
    "fetch_phone_number",
    "afetch_phone_number",
    "set_profile",
    "aset_profile",
    "upload_avatar",
    "aupload_avatar",
    "avatar_response",
    "aavatar_response",
    "revoke_session",
    "arevoke_session",
]


def wafer_state(request: HttpRequest) -> RequestState:
    """The request's :class:`~wafer_py.protocol.RequestState` (anonymous outside the
    middleware)."""
    state = getattr(request, "wafer", None)
    return state if isinstance(state, RequestState) else ANONYMOUS


def get_current_user(request: HttpRequest) -> User | None:
    """The request's stored :class:`~wafer_py.models.User`, or ``None`` without a valid
    session (``request.wafer_user.user``, as a plain value)."""
    identity = wafer_state(request).identity
    return None if identity is None else identity.user


def error_response(exc: WaferError) -> HttpResponse:
    """The protocol's error answer for ``exc``, as a Django response (4xx/5xx)."""
    return wafer_response(_protocol_error(exc))


def _middleware_auth(request: HttpRequest, what: str) -> WaferAuth:
    auth = getattr(request, AUTH_ATTRIBUTE, None)
    if not isinstance(auth, WaferAuth):
        raise RuntimeError(f"{what} needs wafer_py.django.middleware.WaferMiddleware, or an auth")
    return auth


def _read_body(request: HttpRequest, limit: int) -> bytes:
    """The request's body, at most ``limit`` bytes: ``BodyTooLarge`` (413) beyond, with no
    more than one piece of it read (:mod:`wafer_py.body`). Works after ``request.body``
    too (Django then reads from its copy)."""
    check_length(request.headers.get("Content-Length"), limit)
    piece = min(limit + 1, 64 * 1024)
    return read_limited(iter(functools.partial(request.read, piece), b""), limit)


def _phone_code(request: HttpRequest, code: str | None) -> tuple[Authenticated, str]:
    """The code to exchange (the body's when not given); refuses a request without a
    session, and an ``auth`` given in the code's place."""
    if code is not None and not isinstance(code, str):
        raise TypeError("fetch_phone_number(request, code=None, *, auth=None): auth by keyword")
    identity = wafer_state(request).identity
    if identity is None:
        raise MissingCredentials()
    if code is None:
        code = phone_code_from_body(_read_body(request, MAX_JSON_BODY))
    return identity, code


def fetch_phone_number(
    request: HttpRequest, code: str | None = None, *, auth: WaferAuth | None = None
) -> PhoneNumber:
    """Exchange a ``getPhoneNumber`` code for the request's user; store it on the user.

    ``code`` defaults to the ``code`` of the request's JSON body (at most
    :data:`~wafer_py.body.MAX_JSON_BODY` bytes: 413 beyond); ``auth`` to the middleware's.
    Raises a :class:`~wafer_py.exceptions.WaferError` (bad body, bad code, no
    session...): answer it with :func:`error_response`.
    """
    identity, code = _phone_code(request, code)
    auth = auth or _middleware_auth(request, "fetch_phone_number")
    return auth.fetch_phone_number(identity, code)


async def afetch_phone_number(
    request: HttpRequest, code: str | None = None, *, auth: WaferAuth | None = None
) -> PhoneNumber:
    """:func:`fetch_phone_number` for ``async def`` views (WeChat and the store are called
    in a worker thread)."""
    # Django's ASGI handler has read the body already (into memory or a spool file).
    identity, code = _phone_code(request, code)
    auth = auth or _middleware_auth(request, "fetch_phone_number")
    return await offload(auth.fetch_phone_number, identity, code)


def set_profile(request: HttpRequest, *, auth: WaferAuth | None = None) -> User:
    """Store the nickname (and avatar URL) the user filled in; return the updated user.

    Reads the request's JSON body ``{"nickName": ..., "avatarUrl"?: ...}`` (at most
    :data:`~wafer_py.body.MAX_JSON_BODY` bytes) and checks it (:mod:`wafer_py.fillin`).
    Raises a :class:`~wafer_py.exceptions.WaferError` (``InvalidProfile``, no session...):
    answer it with :func:`error_response`.
    """
    identity = wafer_state(request).identity
    if identity is None:
        raise MissingCredentials()
    auth = auth or _middleware_auth(request, "set_profile")
    nickname, avatar_url = profile_from_body(_read_body(request, MAX_JSON_BODY))
    prefix = _avatar_prefix(request)
    return auth.set_profile(identity, nickname, avatar_url, own_avatar_prefix=prefix).user


async def aset_profile(request: HttpRequest, *, auth: WaferAuth | None = None) -> User:
    """:func:`set_profile` for ``async def`` views (the store is called in a worker thread)."""
    return await offload(set_profile, request, auth=auth)


def upload_avatar(
    request: HttpRequest, *, store: AvatarStore | None = None, auth: WaferAuth | None = None
) -> str:
    """Take the image of the request's ``multipart/form-data`` field ``avatar`` (what
    ``wx.uploadFile({name: "avatar"})`` sends), store it cleaned, make it the user's
    ``avatarUrl`` and return that URL.

    The body is parsed by Django's ``MultiPartParser`` as it is read from the request's
    stream, refused past :data:`~wafer_py.body.MAX_AVATAR_BODY` (413: by its
    Content-Length first, then while reading, whatever Django's upload settings say); an
    image that is no PNG/JPEG/WebP/GIF is refused (415); its metadata is dropped
    (:func:`~wafer_py.avatars.clean_image`). ``store`` defaults to the session store's
    entries (:class:`~wafer_py.avatars.EntryAvatarStore`).
    """
    identity = wafer_state(request).identity
    if identity is None:
        raise MissingCredentials()
    auth = auth or _middleware_auth(request, "upload_avatar")
    data = _uploaded_file(request, "avatar")
    return save_avatar(auth, identity, data, own_prefix=_avatar_prefix(request), store=store)


async def aupload_avatar(
    request: HttpRequest, *, store: AvatarStore | None = None, auth: WaferAuth | None = None
) -> str:
    """:func:`upload_avatar` for ``async def`` views (parsing, Pillow and the store run in
    a worker thread). Under ASGI, Django's handler has received the body before the view
    runs (spooled to a temporary file past ``FILE_UPLOAD_MAX_MEMORY_SIZE``); the cap
    still holds for what is parsed."""
    return await offload(upload_avatar, request, store=store, auth=auth)


def avatar_response(
    request: HttpRequest,
    key: str,
    *,
    store: AvatarStore | None = None,
    auth: WaferAuth | None = None,
) -> HttpResponse:
    """The stored avatar ``key`` as a response (strict type, ``nosniff``, cached for a
    year); raises ``AvatarNotFound`` (404) for a key that is not there. Needs no session
    (``<image src>`` loads it without the session headers)."""
    avatars = store or default_avatar_store(auth or _middleware_auth(request, "avatar_response"))
    data, content_type = avatars.get(key)
    response = HttpResponse(data, status=200)
    for name, value in serve_headers(content_type):
        response[name] = value
    return response


async def aavatar_response(
    request: HttpRequest,
    key: str,
    *,
    store: AvatarStore | None = None,
    auth: WaferAuth | None = None,
) -> HttpResponse:
    """:func:`avatar_response` for ``async def`` views (the store is called in a worker
    thread)."""
    return await offload(avatar_response, request, key, store=store, auth=auth)


def _avatar_prefix(request: HttpRequest) -> str:
    script = request.META.get("SCRIPT_NAME", "")
    return f"{request.scheme}://{request.get_host()}{script}{AVATAR_PATH}"


def _uploaded_file(request: HttpRequest, field: str) -> bytes:
    """The bytes of the multipart file ``field``, read through Django's streaming parser
    from the request's stream, capped at :data:`~wafer_py.body.MAX_AVATAR_BODY`."""
    from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
    from django.core.files.uploadhandler import (
        MemoryFileUploadHandler,
        TemporaryFileUploadHandler,
    )
    from django.http.multipartparser import MultiPartParser, MultiPartParserError

    length = request.META.get("CONTENT_LENGTH") or None
    check_length(length, MAX_AVATAR_BODY)
    if request.content_type != "multipart/form-data":
        raise BadBody(f"expected multipart/form-data with the file in the field {field!r}")
    meta, stream = request.META, request
    if length is None:
        # No Content-Length (chunked): Django's parser reads nothing without one, so it is
        # given the cap as the length and the body the server de-chunked (WSGI), or the one
        # Django's ASGI handler received; the capped reader refuses it past the cap.
        meta = {**request.META, "CONTENT_LENGTH": str(MAX_AVATAR_BODY + 1)}
        if request.META.get("wsgi.input_terminated"):
            stream = request.META["wsgi.input"]
    handlers = [MemoryFileUploadHandler(request), TemporaryFileUploadHandler(request)]
    try:
        parser = MultiPartParser(
            meta,
            cast("Any", CappedReader(stream, MAX_AVATAR_BODY)),  # the parser only read()s
            handlers,
            request.encoding or settings.DEFAULT_CHARSET,
        )
        _, files = parser.parse()
    except RequestDataTooBig:
        raise BodyTooLarge(f"the request body is larger than {MAX_AVATAR_BODY} bytes") from None
    except (MultiPartParserError, SuspiciousOperation, ValueError):
        raise BadBody("the multipart body is malformed") from None
    try:
        upload = files.get(field)
        if upload is None:
            raise BadBody(f"no file in the field {field!r}")
        data: bytes = upload.read(MAX_AVATAR_BODY + 1)
        return data
    finally:
        for _, uploads in files.lists():
            for each in uploads:
                each.close()


def revoke_session(request: HttpRequest, *, auth: WaferAuth | None = None) -> bool:
    """Revoke the session the request came with (log out); ``True`` if it existed.

    The client's next ``login: true`` request logs in again; every process sharing the
    store refuses the session from now on. Raises ``MissingCredentials`` without a valid
    session, ``StoreUnavailable`` if the store cannot be reached.
    """
    identity = wafer_state(request).identity
    if identity is None:
        raise MissingCredentials()
    return (auth or _middleware_auth(request, "revoke_session")).revoke(identity.session.id)


async def arevoke_session(request: HttpRequest, *, auth: WaferAuth | None = None) -> bool:
    """:func:`revoke_session` for ``async def`` views."""
    identity = wafer_state(request).identity
    if identity is None:
        raise MissingCredentials()
    auth = auth or _middleware_auth(request, "revoke_session")
    return await auth.arevoke(identity.session.id)
