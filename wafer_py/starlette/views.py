"""Helpers for Starlette (and FastAPI) endpoints: the request's session and user, and the
calls a mini-program makes of its server (phone number, profile fill-in, avatars, log out).

A helper given no ``auth`` uses the :class:`~wafer_py.asgi.WaferMiddleware`'s, which it
leaves in the scope; it raises a :class:`~wafer_py.exceptions.WaferError` that
:func:`error_response` answers. Its calls to WeChat and to a blocking store run in worker
threads, never on the loop.
"""

from __future__ import annotations

from starlette.requests import HTTPConnection, Request
from starlette.responses import Response

from ..asgi import AUTH_KEY, get_state
from ..auth import WaferAuth
from ..avatars import AVATAR_PATH, AvatarStore, serve_headers
from ..body import MAX_AVATAR_BODY, MAX_JSON_BODY, acapped, aread_limited, check_length
from ..exceptions import BadBody, ImagesUnavailable, MissingCredentials, WaferError
from ..extras import install_hint
from ..fillin import default_avatar_store, profile_from_body, save_avatar
from ..models import User
from ..plans import offload
from ..protocol import RequestState
from ..protocol import error_response as _protocol_error
from ..wechat.phone import PhoneNumber, phone_code_from_body

__all__ = [
    "wafer_state",
    "get_current_user",
    "fetch_phone_number",
    "set_profile",
    "upload_avatar",
    "avatar_response",
    "revoke_session",
    "error_response",
]


def wafer_state(conn: HTTPConnection) -> RequestState:
    """The request's :class:`~wafer_py.protocol.RequestState`."""
    return get_state(conn.scope)


def get_current_user(conn: HTTPConnection) -> User | None:
    """The request's stored :class:`~wafer_py.models.User`, or ``None`` without a valid
    session (``request.user.user``, as a plain value)."""
    identity = wafer_state(conn).identity
    return None if identity is None else identity.user


def error_response(exc: WaferError) -> Response:
    """The protocol's error answer for ``exc``, as a Starlette response (4xx/5xx)."""
    answer = _protocol_error(exc)
    return Response(answer.content, answer.status, headers=dict(answer.headers))


async def fetch_phone_number(
    request: Request, code: str | None = None, *, auth: WaferAuth | None = None
) -> PhoneNumber:
    """Exchange a ``getPhoneNumber`` code for the request's user; store it on the user.

    ``code`` defaults to the ``code`` of the request's JSON body (at most
    :data:`~wafer_py.body.MAX_JSON_BODY` bytes, read here: 413 beyond); ``auth`` to the one
    of the :class:`~wafer_py.asgi.WaferMiddleware` in front of the app. WeChat and the store
    are called in a worker thread. Raises a :class:`~wafer_py.exceptions.WaferError`
    (bad body, bad code, no session...): answer it with :func:`error_response`.
    """
    if code is not None and not isinstance(code, str):
        # the former order (request, auth, code): refuse it rather than send auth to WeChat
        raise TypeError("fetch_phone_number(request, code=None, *, auth=None): auth by keyword")
    identity = wafer_state(request).identity
    if identity is None:
        raise MissingCredentials()
    auth = auth or middleware_auth(request, "fetch_phone_number")
    if code is None:
        code = phone_code_from_body(await _read_body(request, MAX_JSON_BODY))
    return await offload(auth.fetch_phone_number, identity, code)


async def _read_body(request: Request, limit: int) -> bytes:
    """The request's body, at most ``limit`` bytes: ``BodyTooLarge`` (413) beyond, with no
    more than one piece of it read (:mod:`wafer_py.body`)."""
    check_length(request.headers.get("content-length"), limit)
    return await aread_limited(request.stream(), limit)


async def set_profile(request: Request, *, auth: WaferAuth | None = None) -> User:
    """Store the nickname (and avatar URL) the user filled in; return the updated user.

    Reads the request's JSON body ``{"nickName": ..., "avatarUrl"?: ...}`` (at most
    :data:`~wafer_py.body.MAX_JSON_BODY` bytes) and checks it (:mod:`wafer_py.fillin`);
    the store is called in a worker thread. Raises a
    :class:`~wafer_py.exceptions.WaferError`: answer it with :func:`error_response`.
    """
    identity = wafer_state(request).identity
    if identity is None:
        raise MissingCredentials()
    auth = auth or middleware_auth(request, "set_profile")
    nickname, avatar_url = profile_from_body(await _read_body(request, MAX_JSON_BODY))
    who = await offload(
        auth.set_profile,
        identity,
        nickname,
        avatar_url,
        own_avatar_prefix=_avatar_prefix(request),
    )
    return who.user


async def upload_avatar(
    request: Request, *, store: AvatarStore | None = None, auth: WaferAuth | None = None
) -> str:
    """Take the image of the request's ``multipart/form-data`` field ``avatar`` (what
    ``wx.uploadFile({name: "avatar"})`` sends), store it cleaned, make it the user's
    ``avatarUrl`` and return that URL.

    The body is parsed as it streams (Starlette's parser, python-multipart) and refused
    past :data:`~wafer_py.body.MAX_AVATAR_BODY` (413); an image that is no
    PNG/JPEG/WebP/GIF is refused (415); Pillow and the store run in a worker thread.
    """
    identity = wafer_state(request).identity
    if identity is None:
        raise MissingCredentials()
    auth = auth or middleware_auth(request, "upload_avatar")
    data = await _uploaded_file(request, "avatar")
    return await offload(
        save_avatar, auth, identity, data, own_prefix=_avatar_prefix(request), store=store
    )


async def avatar_response(
    request: Request,
    key: str | None = None,
    *,
    store: AvatarStore | None = None,
    auth: WaferAuth | None = None,
) -> Response:
    """The stored avatar ``key`` (default: the route's ``{key}``) as a response (strict
    type, ``nosniff``, cached for a year); raises ``AvatarNotFound`` (404) for a key that
    is not there."""
    key = str(request.path_params.get("key", "")) if key is None else key
    avatars = store or default_avatar_store(auth or middleware_auth(request, "avatar_response"))
    data, content_type = await offload(avatars.get, key)
    response = Response(data, 200)
    response.raw_headers = [
        (name.lower().encode("latin-1"), value.encode("latin-1"))
        for name, value in [*serve_headers(content_type), ("Content-Length", str(len(data)))]
    ]
    return response


def _avatar_prefix(request: Request) -> str:
    return origin(request) + AVATAR_PATH


async def _uploaded_file(request: Request, field: str) -> bytes:
    """The bytes of the multipart file ``field``, read through Starlette's streaming
    parser with the body capped at :data:`~wafer_py.body.MAX_AVATAR_BODY`."""
    check_length(request.headers.get("content-length"), MAX_AVATAR_BODY)
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "multipart/form-data":
        raise BadBody(f"expected multipart/form-data with the file in the field {field!r}")
    try:
        import python_multipart  # noqa: F401  (Starlette's multipart parser needs it)
    except ImportError:
        raise ImagesUnavailable(
            "avatar uploads on Starlette need python-multipart: " + install_hint("images")
        ) from None
    from starlette.datastructures import UploadFile
    from starlette.formparsers import MultiPartException, MultiPartParser

    parser = MultiPartParser(
        request.headers,
        acapped(request.stream(), MAX_AVATAR_BODY),
        max_files=1,
        max_fields=4,
        max_part_size=MAX_JSON_BODY,
    )
    try:
        form = await parser.parse()
    except MultiPartException:
        raise BadBody("the multipart body is malformed") from None
    try:
        upload = form.get(field)
        if not isinstance(upload, UploadFile):
            raise BadBody(f"no file in the field {field!r}")
        return await upload.read(MAX_AVATAR_BODY + 1)
    finally:
        await form.close()


async def revoke_session(request: Request, *, auth: WaferAuth | None = None) -> bool:
    """Revoke the session the request came with (log out); ``True`` if it existed.

    The client's next ``login: true`` request logs in again. Every app process sharing
    the store refuses the session from now on. Raises ``MissingCredentials`` without a
    valid session, ``StoreUnavailable`` if the store cannot be reached.
    """
    identity = wafer_state(request).identity
    if identity is None:
        raise MissingCredentials()
    auth = auth or middleware_auth(request, "revoke_session")
    return await auth.arevoke(identity.session.id)


def middleware_auth(conn: HTTPConnection, what: str) -> WaferAuth:
    """The auth the :class:`~wafer_py.asgi.WaferMiddleware` in front left in the scope (for
    ``what``, a helper given none); a ``RuntimeError`` without one."""
    auth = conn.scope.get(AUTH_KEY)
    if not isinstance(auth, WaferAuth):
        raise RuntimeError(f"{what} needs WaferMiddleware in front, or an auth")
    return auth


def origin(request: Request) -> str:
    """The app's origin and mount point as the browser sees them (``https://host/root``)."""
    return f"{request.url.scheme}://{request.url.netloc}{request.scope.get('root_path', '')}"
