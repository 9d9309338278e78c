"""Helpers for Flask views: the request's session and user, and the calls a mini-program
makes of its server (phone number, profile fill-in, avatars, log out).

``current_user`` is a :class:`~wafer_py.users.WaferUser` (or the falsy
:class:`~wafer_py.users.AnonymousUser`), the same object as Starlette's ``request.user``.
A helper given no ``auth`` uses the :class:`~wafer_py.flask.extension.Wafer` extension's;
it raises a :class:`~wafer_py.exceptions.WaferError` that :func:`error_response` answers.
"""

from __future__ import annotations

import functools
from typing import IO, cast

from flask import Response, request
from werkzeug.local import LocalProxy

from ..auth import Authenticated, WaferAuth
from ..avatars import AVATAR_PATH, AvatarStore, serve_headers
from ..body import MAX_AVATAR_BODY, MAX_JSON_BODY, CappedReader, check_length, read_limited
from ..exceptions import BadBody, BodyTooLarge, MissingCredentials, WaferError
from ..fillin import default_avatar_store, profile_from_body, save_avatar
from ..models import User
from ..protocol import RequestState
from ..protocol import error_response as _protocol_error
from ..users import ANONYMOUS_USER, AnonymousUser, WaferUser
from ..wechat.phone import PhoneNumber, phone_code_from_body
from ..wsgi import get_state
from .extension import app_auth, flask_response

__all__ = [
    "current_user",
    "current_identity",
    "get_current_user",
    "wafer_state",
    "fetch_phone_number",
    "set_profile",
    "upload_avatar",
    "avatar_response",
    "revoke_session",
    "error_response",
]


def wafer_state() -> RequestState:
    """The current request's :class:`~wafer_py.protocol.RequestState`."""
    return get_state(request.environ)


def _identity() -> Authenticated | None:
    return wafer_state().identity


def _wafer_user() -> WaferUser | AnonymousUser:
    identity = wafer_state().identity
    return ANONYMOUS_USER if identity is None else WaferUser(identity)


def get_current_user() -> User | None:
    """The current request's stored :class:`~wafer_py.models.User`, or ``None`` without a
    valid session (``current_user.user``, as a plain value)."""
    identity = wafer_state().identity
    return None if identity is None else identity.user


#: The current request's :class:`~wafer_py.users.WaferUser` (``is_authenticated``,
#: ``openid``, ``display_name``, ``user``, ``userinfo()``), the same shape as Starlette's
#: ``request.user``; the falsy :class:`~wafer_py.users.AnonymousUser` without a session.
current_user: WaferUser | AnonymousUser = cast("WaferUser", LocalProxy(_wafer_user))
#: The current request's :class:`~wafer_py.auth.Authenticated` (user and session). Without a
#: valid session it stands for ``None``: falsy, but being a proxy never ``is None``.
current_identity: Authenticated = cast("Authenticated", LocalProxy(_identity))


def error_response(exc: WaferError) -> Response:
    """The protocol's error answer for ``exc``, as a Flask response (4xx/5xx)."""
    return flask_response(_protocol_error(exc))


def fetch_phone_number(code: str | None = None, *, auth: WaferAuth | None = None) -> PhoneNumber:
    """Exchange a ``getPhoneNumber`` code for the current user's number; store it on the user.

    ``code`` defaults to the ``code`` of the request's JSON body (at most
    :data:`~wafer_py.body.MAX_JSON_BODY` bytes, read here: 413 beyond); ``auth`` to the app's
    :class:`Wafer` extension's. Raises a :class:`~wafer_py.exceptions.WaferError` (bad
    body, bad code, no session...): answer it with :func:`error_response`.
    """
    _check_code(code)
    identity = wafer_state().identity
    if identity is None:
        raise MissingCredentials()
    if code is None:
        code = phone_code_from_body(_read_body(MAX_JSON_BODY))
    return (auth or app_auth("fetch_phone_number")).fetch_phone_number(identity, code)


def _read_body(limit: int) -> bytes:
    """The request's body, at most ``limit`` bytes: ``BodyTooLarge`` (413) beyond, with no
    more than one piece of it read (:mod:`wafer_py.body`)."""
    check_length(request.headers.get("Content-Length"), limit)
    piece = min(limit + 1, 64 * 1024)
    body = read_limited(iter(functools.partial(request.stream.read, piece), b""), limit)
    if body:
        return body
    # The stream is consumed: empty, or the app read the body first (get_data caches it).
    return read_limited([request.get_data(cache=True)], limit)


def _check_code(code: object) -> None:
    """Refuse a code that is no string (an ``auth`` given in its place): a clear TypeError,
    not a bad code sent to WeChat."""
    if code is not None and not isinstance(code, str):
        raise TypeError("fetch_phone_number(code=None, *, auth=None): give auth by keyword")


def set_profile(*, auth: WaferAuth | None = None) -> User:
    """Store the nickname (and avatar URL) the user filled in; return the updated user.

    Reads the request's JSON body ``{"nickName": ..., "avatarUrl"?: ...}`` (at most
    :data:`~wafer_py.body.MAX_JSON_BODY` bytes) and checks it (:mod:`wafer_py.fillin`).
    Raises a :class:`~wafer_py.exceptions.WaferError` (``InvalidProfile``, no session...):
    answer it with :func:`error_response`.
    """
    identity = wafer_state().identity
    if identity is None:
        raise MissingCredentials()
    nickname, avatar_url = profile_from_body(_read_body(MAX_JSON_BODY))
    auth = auth or app_auth("set_profile")
    who = auth.set_profile(identity, nickname, avatar_url, own_avatar_prefix=_avatar_prefix())
    return who.user


def upload_avatar(*, store: AvatarStore | None = None, auth: WaferAuth | None = None) -> str:
    """Take the image of the request's ``multipart/form-data`` field ``avatar`` (what
    ``wx.uploadFile({name: "avatar"})`` sends), store it cleaned, make it the user's
    ``avatarUrl`` and return that URL.

    The body is parsed as it streams and refused past
    :data:`~wafer_py.body.MAX_AVATAR_BODY` (413); an image that is no PNG/JPEG/WebP/GIF
    is refused (415); its metadata is dropped (:func:`~wafer_py.avatars.clean_image`).
    ``store`` defaults to the session store's entries
    (:class:`~wafer_py.avatars.EntryAvatarStore`).
    """
    identity = wafer_state().identity
    if identity is None:
        raise MissingCredentials()
    auth = auth or app_auth("upload_avatar")
    data = _uploaded_file("avatar")
    return save_avatar(auth, identity, data, own_prefix=_avatar_prefix(), store=store)


def avatar_response(
    key: str, *, store: AvatarStore | None = None, auth: WaferAuth | None = None
) -> Response:
    """The stored avatar ``key`` as a response (strict type, ``nosniff``, cached for a
    year); raises ``AvatarNotFound`` (404) for a key that is not there."""
    avatars = store or default_avatar_store(auth or app_auth("avatar_response"))
    data, content_type = avatars.get(key)
    response = Response(data, 200)
    response.headers.clear()
    for name, value in serve_headers(content_type):
        response.headers[name] = value
    return response


def _avatar_prefix() -> str:
    return request.host_url.rstrip("/") + request.script_root + AVATAR_PATH


def _uploaded_file(field: str) -> bytes:
    """The bytes of the multipart file ``field``, read through Werkzeug's streaming
    parser with the body capped at :data:`~wafer_py.body.MAX_AVATAR_BODY`."""
    from werkzeug.exceptions import RequestEntityTooLarge
    from werkzeug.formparser import FormDataParser

    check_length(request.headers.get("Content-Length"), MAX_AVATAR_BODY)
    if request.mimetype != "multipart/form-data":
        raise BadBody(f"expected multipart/form-data with the file in the field {field!r}")
    parser = FormDataParser(max_form_memory_size=MAX_JSON_BODY, max_form_parts=8, silent=False)
    try:
        _, _, files = parser.parse(
            cast("IO[bytes]", CappedReader(request.stream, MAX_AVATAR_BODY)),
            request.mimetype,
            request.content_length,
            request.mimetype_params,
        )
    except RequestEntityTooLarge:
        raise BodyTooLarge(f"the request body is larger than {MAX_AVATAR_BODY} bytes") from None
    except ValueError:
        raise BadBody("the multipart body is malformed") from None
    upload = files.get(field)
    if upload is None:
        raise BadBody(f"no file in the field {field!r}")
    try:
        return upload.stream.read(MAX_AVATAR_BODY + 1)
    finally:
        upload.close()


def revoke_session(*, auth: WaferAuth | None = None) -> bool:
    """Revoke the current request's session (log out); ``True`` if it existed.

    The client's next ``login: true`` request logs in again. Every app process sharing
    the store refuses the session from now on. Raises ``MissingCredentials`` without a
    valid session, ``StoreUnavailable`` if the store cannot be reached.
    """
    identity = wafer_state().identity
    if identity is None:
        raise MissingCredentials()
    return (auth or app_auth("revoke_session")).revoke(identity.session.id)
