"""Helpers for Django views: the same names and signatures as :mod:`wafer_py.flask` and
:mod:`wafer_py.starlette`, with the request first (as in Starlette).

``fetch_phone_number`` and ``revoke_session`` block (call them from ``def`` views);
``afetch_phone_number`` and ``arevoke_session`` are the same for ``async def`` views
(Django's ``a`` prefix), whose blocking calls run in a worker thread.
"""

from __future__ import annotations

import functools

from django.http import HttpRequest, HttpResponse

from ..auth import Authenticated, WaferAuth
from ..body import MAX_JSON_BODY, check_length, read_limited
from ..exceptions import MissingCredentials, WaferError
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
