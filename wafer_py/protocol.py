"""The Wafer wire protocol, free of I/O: headers in, decisions and response bodies out.

Both client generations are served by one set of answers (see ``wafer-protocol.md``):

* a login answer that carries the v1 ``session`` and the v2 ``data`` side by side;
* an invalid-session answer with the v1 magic key, ``ERR_INVALID_SESSION``, the v2
  ``code: -1`` and HTTP 401, so that both clients log in again and retry;
* a failed login with ``ERR_LOGIN_FAILED`` and ``code: -1``, as the original servers;
* other errors with the magic key, another ``error`` type, a ``reason``, and a ``code``
  equal to the HTTP status, never ``-1`` (which would send a v2 client into a pointless
  re-login). The status and type of each error are in :mod:`wafer_py.answers`.

:class:`WaferProtocol` runs one request through a :class:`~wafer_py.auth.WaferAuth`; the
WSGI and ASGI middlewares are thin shells around it.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal, NamedTuple
from urllib.parse import unquote

from .answers import ERR_LOGIN_FAILED, answer_for
from .auth import Authenticated, Credentials, LoginResult, WaferAuth
from .exceptions import (
    HeaderTooLarge,
    InvalidSession,
    MalformedEncryptedData,
    MalformedHeader,
    MissingCode,
    MissingCredentials,
    WaferError,
)
from .plans import Plan, arun, on_asyncio, run

__all__ = [
    "MAGIC_ID",
    "HEADER_CODE",
    "HEADER_ENCRYPTED_DATA",
    "HEADER_LEGACY_ENCRYPTED_DATA",
    "HEADER_IV",
    "HEADER_ID",
    "HEADER_SKEY",
    "WaferResponse",
    "RequestState",
    "WaferProtocol",
    "login_body",
    "error_response",
    "path_forms",
    "path_matcher",
]

MAGIC_ID = "F2C224D4-2BCE-4C64-AF9F-A6D872000D1A"

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


@dataclass(frozen=True)
class WaferResponse:
    """An answer the middleware sends itself (a login, or an error).

    ``extra_headers`` follow the standard ones (``Retry-After`` on a busy answer).
    """

    status: int
    body: dict[str, Any]
    extra_headers: tuple[tuple[str, str], ...] = ()

    @cached_property
    def content(self) -> bytes:
        return json.dumps(self.body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")

    @property
    def headers(self) -> list[tuple[str, str]]:
        return [
            ("content-type", "application/json; charset=utf-8"),
            ("cache-control", "no-store"),
            ("content-length", str(len(self.content))),
            *self.extra_headers,
        ]


class RequestState(NamedTuple):
    """What the middleware learned about a request it passes on to the app.

    ``identity`` is set when the session headers checked out. ``error`` says why a
    request that sent session headers is not authenticated (unknown, expired...).
    A named tuple, like :class:`~wafer_py.auth.Authenticated`: one is made per request.
    """

    identity: Authenticated | None = None
    error: WaferError | None = None
    generation: Literal["v1", "v2"] | None = None

    @property
    def is_authenticated(self) -> bool:
        return self.identity is not None

    def challenge(self) -> WaferResponse:
        """The answer for a route that needs login and did not get it."""
        return error_response(self.error or MissingCredentials())


ANONYMOUS = RequestState()


def login_body(result: LoginResult, now: float) -> dict[str, Any]:
    """The login answer both client generations accept.

    v1 stores ``session`` (kept to ``{id, skey}``, as it stores that object whole); v2
    requires ``code == 0`` and stores ``data`` (``skey`` and a truthy ``userinfo``).
    """
    userinfo = result.user.userinfo()
    return {
        MAGIC_ID: 1,
        "session": {"id": result.session.id, "skey": result.skey},
        "code": 0,
        "data": {"skey": result.skey, "userinfo": userinfo, "time": int(now)},
    }


def error_response(exc: WaferError, *, login: bool = False) -> WaferResponse:
    """The protocol's error answer for ``exc``, from :data:`~wafer_py.answers.ANSWERS`.

    During login every error is ``ERR_LOGIN_FAILED`` with ``code: -1``, as the original
    login failure. An error with a ``retry_after`` gets a ``Retry-After`` header.
    """
    status, error, relogin = answer_for(exc)
    body: dict[str, Any] = {
        MAGIC_ID: 1,
        "error": ERR_LOGIN_FAILED if login else error,
        "reason": exc.reason,
        "message": exc.message,
        "code": -1 if relogin or login else status,
    }
    if exc.retry_after is None:
        return WaferResponse(status, body)
    return WaferResponse(status, body, (("retry-after", str(exc.retry_after)),))


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


def _has_encrypted_data(headers: Mapping[str, str]) -> bool:
    """Whether the request sent any header of the seed flow (encrypted data or an IV)."""
    return (
        HEADER_ENCRYPTED_DATA in headers
        or HEADER_LEGACY_ENCRYPTED_DATA in headers
        or HEADER_IV in headers
    )


PathMatcher = Callable[[str], bool]

#: How the ASGI side runs a request (:meth:`WaferProtocol.route`).
Route = Literal["inline", "loop", "thread"]


def _login_headers(headers: Mapping[str, str]) -> tuple[str, str | None, str | None, bool]:
    """The code and the encrypted profile (data, IV, legacy format) of a login request."""
    code = _header(headers, HEADER_CODE)
    if code is None:
        raise MissingCode()
    data, iv, legacy = read_encrypted(headers)
    return code, data, iv, legacy


def _generation(headers: Mapping[str, str]) -> Literal["v1", "v2"]:
    """Which client generation sent these headers (v1 sends the session id)."""
    return "v1" if headers.get(HEADER_ID) else "v2"


_SLASHES = re.compile(r"/{2,}")


def _merge_slashes(path: str) -> str:
    return _SLASHES.sub("/", path)


def _remove_dot_segments(path: str) -> str:
    """``.`` and ``..`` segments resolved as RFC 3986 does (``/a/./b/../c`` -> ``/a/c``)."""
    out: list[str] = []
    head, *segments = path.split("/")
    for i, segment in enumerate(segments, 1):
        last = i == len(segments)
        if segment == "..":
            if out:
                out.pop()
        elif segment != ".":
            out.append(segment)
            continue
        if last:
            out.append("")  # "/a/b/.." is the directory "/a/"
    return head + "/" + "/".join(out) if segments else head


def _plain(path: str) -> bool:
    """Whether nothing in ``path`` can be rewritten (the usual case, tested first)."""
    return "//" not in path and "/." not in path and "%" not in path


def path_forms(path: str) -> tuple[str, ...]:
    """The path as sent, and as each layer in front of a view may have rewritten it.

    A router or proxy may decode percent-escapes (``%2F``) once more, merge repeated
    slashes (Werkzeug's router does) and resolve ``.``/``..`` segments, in that order, or
    any of these alone: this is every such form. A plain path (no ``//``, ``/.`` or
    ``%``) is its only form, at the cost of three substring tests.
    """
    if _plain(path):
        return (path,)
    forms = [path]
    if "%" in path:
        forms.append(unquote(path, errors="replace"))
    forms += [_merge_slashes(form) for form in forms]
    resolved = [_remove_dot_segments(form) for form in forms]
    forms += resolved + [_merge_slashes(form) for form in resolved]
    return tuple(dict.fromkeys(forms))


def path_matcher(protect: Iterable[str] | PathMatcher | None) -> PathMatcher:
    """A predicate from path prefixes (``"/api/"``) or a callable; ``None`` matches none.

    A path matches when any of its :func:`path_forms` does: ``//api/x``, ``/%2Fapi/x`` or
    ``/x/../api/x`` reach the view of ``/api/x`` behind some router or proxy, so they are
    protected like it. A callable is asked about each form.
    """
    if protect is None:
        return lambda path: False
    match: PathMatcher
    if callable(protect):
        match = protect
    else:
        prefixes = tuple(protect)

        def match(path: str) -> bool:
            return path.startswith(prefixes)

    def matcher(path: str) -> bool:
        if match(path):
            return True
        return not _plain(path) and any(match(form) for form in path_forms(path)[1:])

    return matcher


@dataclass
class WaferProtocol:
    """Runs one request through the Wafer protocol.

    :meth:`handle` answers the login path itself and returns a :class:`WaferResponse`;
    for any other request it validates the session headers, runs the seed flow (a
    validated request that also carries encrypted data updates the stored profile) and
    returns a :class:`RequestState` for the app, or a response for a request that must
    not reach the app (a failed seed flow, a ``protect``-ed path without login).
    """

    auth: WaferAuth
    protect: PathMatcher = field(default_factory=lambda: path_matcher(None))

    @property
    def login_path(self) -> str:
        return self.auth.config.login_path

    def route(self, path: str | None, headers: Mapping[str, str]) -> Route:
        """How an async server runs this request (``path=None``: not a login).

        ``"inline"``: nothing to wait on (no session to check, or a store that never
        blocks): call :meth:`check`. ``"loop"``: await :meth:`ahandle` (or, for the login
        path, :meth:`alogin`) on the asyncio loop: logins, and sessions in a store with an
        async driver. ``"thread"``: call :meth:`check` (or :meth:`login`) in a worker
        thread (a blocking store; under trio, everything that waits: the async drivers and
        the async login gate are asyncio's).
        """
        login = path == self.login_path
        if not login and HEADER_SKEY not in headers:
            return "inline"
        store = self.auth.store
        if (login or store.supports_async) and on_asyncio():
            return "loop"
        if not login and not store.blocking:
            return "inline"
        return "thread"

    def handle(
        self,
        path: str,
        headers: Mapping[str, str],
        *,
        connected: Callable[[], bool] | None = None,
    ) -> WaferResponse | RequestState:
        """``connected`` says whether the client is still there (a login whose client
        hung up does not call WeChat)."""
        if path == self.login_path:
            return self.login(headers, connected)
        return self.check(path, headers)

    def check(self, path: str, headers: Mapping[str, str]) -> WaferResponse | RequestState:
        """:meth:`handle` for a request that is not a login (blocking)."""
        if HEADER_SKEY not in headers and HEADER_ID not in headers:  # nothing to check
            return ANONYMOUS.challenge() if self.protect(path) else ANONYMOUS
        return run(self.request(path, headers))

    async def ahandle(self, path: str, headers: Mapping[str, str]) -> WaferResponse | RequestState:
        """:meth:`handle` for async callers, other than the login path (:meth:`alogin`)."""
        return await arun(self.request(path, headers))

    def request(self, path: str, headers: Mapping[str, str]) -> Plan[WaferResponse | RequestState]:
        """A request other than a login, as a plan (:mod:`wafer_py.plans`): check the
        session, run the seed flow, refuse a ``protect``-ed path without login."""
        try:
            try:
                credentials = read_credentials(headers)
                identity = None
                if credentials is not None:
                    identity = yield from self.auth.validation(credentials)
            except InvalidSession as exc:
                state = RequestState(error=exc, generation=_generation(headers))
            else:
                if identity is not None and _has_encrypted_data(headers):  # the seed flow
                    data, iv, legacy = read_encrypted(headers)
                    if data is not None and iv is not None and not legacy:
                        identity = yield from self.auth.profile_update(identity, data, iv)
                state = (
                    ANONYMOUS
                    if identity is None
                    else RequestState(identity=identity, generation=identity.generation)
                )
        except WaferError as exc:
            return error_response(exc)
        if not state.is_authenticated and self.protect(path):
            return state.challenge()
        return state

    def login(
        self, headers: Mapping[str, str], connected: Callable[[], bool] | None = None
    ) -> WaferResponse:
        """The login path's answer (blocking; :meth:`alogin` under asyncio)."""
        try:
            code, data, iv, legacy = _login_headers(headers)
            result = self.auth.login(code, data, iv, legacy=legacy, connected=connected)
        except WaferError as exc:
            return error_response(exc, login=True)
        return WaferResponse(200, login_body(result, self.auth.clock()))

    async def alogin(
        self, headers: Mapping[str, str], gone: asyncio.Future[None] | None = None
    ) -> WaferResponse:
        """The login path's answer, under asyncio: WeChat is awaited on the event loop
        (:meth:`WaferAuth.alogin <wafer_py.auth.WaferAuth.alogin>`). ``gone`` is done
        when the client hangs up."""
        try:
            code, data, iv, legacy = _login_headers(headers)
            result = await self.auth.alogin(code, data, iv, legacy=legacy, gone=gone)
        except WaferError as exc:
            return error_response(exc, login=True)
        return WaferResponse(200, login_body(result, self.auth.clock()))
