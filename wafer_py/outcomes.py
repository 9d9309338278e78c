"""What the protocol makes of a request: an answer the middleware sends itself (a login,
an error, in the body both client generations read), or the state passed on to the app.
The status and type of each error are in :mod:`wafer_py.answers`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal, NamedTuple

from .answers import ERR_LOGIN_FAILED, answer_for
from .auth import Authenticated, LoginResult
from .exceptions import MissingCredentials, WaferError

__all__ = [
    "MAGIC_ID",
    "WaferResponse",
    "RequestState",
    "ANONYMOUS",
    "login_body",
    "error_response",
]

#: The key that marks every answer of the protocol (v1 clients look for it).
MAGIC_ID = "F2C224D4-2BCE-4C64-AF9F-A6D872000D1A"


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
