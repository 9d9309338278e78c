"""Django REST framework: Wafer logins as DRF authentication, and the protocol's error
answers for DRF views, so they work with both client SDK generations (v1 reads the magic
id and ``ERR_INVALID_SESSION``, v2 a ``code`` of -1 to log in again).

::

    REST_FRAMEWORK = {
        "DEFAULT_AUTHENTICATION_CLASSES": ["wafer_py.django.drf.WaferAuthentication"],
        "EXCEPTION_HANDLER": "wafer_py.django.drf.wafer_exception_handler",
    }

``request.user`` is then the Django user of the WeChat account
(:func:`~wafer_py.django.backends.get_django_user`) and ``request.auth`` the
:class:`~wafer_py.auth.Authenticated` identity (user and session).
"""

from __future__ import annotations

import threading
from typing import Any, ClassVar

from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.request import Request
from rest_framework.response import Response

from ..auth import Authenticated, WaferAuth
from ..config import WaferConfig
from ..exceptions import MissingCredentials, WaferError
from ..protocol import RequestState, WaferProtocol, WaferResponse, error_response
from .backends import get_django_user, wafer_environ

__all__ = ["WaferAPIException", "WaferAuthentication", "wafer_exception_handler"]

#: Where the state of a request checked here (without the middleware) is kept.
_STATE = "_wafer_drf_state"


class WaferAPIException(exceptions.APIException):
    """The protocol's answer to a request whose session check failed (a store outage,
    a malformed header...), on its way to :func:`wafer_exception_handler`."""

    def __init__(self, answer: WaferResponse) -> None:
        self.answer = answer
        self.status_code = answer.status
        super().__init__(detail=str(answer.body.get("message") or "request refused"))


class WaferAuthentication(BaseAuthentication):
    """Authenticates a DRF request by its Wafer session.

    Uses ``request.wafer`` when the wafer_py middleware checked the request already;
    without it, checks the Wafer headers itself with :attr:`auth` (default: a
    :class:`~wafer_py.auth.WaferAuth` made once from the ``WAFER_*`` settings). A request
    without a valid session is anonymous here (``None``), so ``AllowAny`` views still
    answer it; a view that needs login then gets DRF's ``NotAuthenticated``, which
    :func:`wafer_exception_handler` answers with the protocol's invalid-session body
    (401: :meth:`authenticate_header` is set, so DRF does not turn it into a 403).
    """

    #: The WaferAuth that checks sessions when the middleware did not.
    auth: ClassVar[WaferAuth | None] = None
    _made: ClassVar[WaferAuth | None] = None
    _lock: ClassVar[threading.Lock] = threading.Lock()

    www_authenticate_realm = "wafer"

    def authenticate(self, request: Request) -> tuple[Any, Authenticated] | None:
        state = self.state(request)
        if state.identity is None:
            return None
        return get_django_user(state.identity, appid=self.appid()), state.identity

    def authenticate_header(self, request: Request) -> str:
        return f'Wafer realm="{self.www_authenticate_realm}"'

    def appid(self) -> str | None:
        """The AppID the Django user's account belongs to (``None``: ``WAFER_APPID``)."""
        auth = self.auth or self._made
        return auth.config.appid if auth is not None else None

    def wafer_auth(self) -> WaferAuth:
        """:attr:`auth`, else the one made from the ``WAFER_*`` settings."""
        if self.auth is not None:
            return self.auth
        with WaferAuthentication._lock:
            if WaferAuthentication._made is None:
                WaferAuthentication._made = WaferAuth(WaferConfig.from_env(wafer_environ()))
            return WaferAuthentication._made

    def state(self, request: Request) -> RequestState:
        """The Wafer state of ``request``: the middleware's, else checked here once."""
        django_request = request._request
        found = getattr(django_request, "wafer", None) or getattr(django_request, _STATE, None)
        if isinstance(found, RequestState):
            return found
        headers = {name.lower(): value for name, value in request.headers.items()}
        checked = WaferProtocol(self.wafer_auth()).check(request.path, headers)
        if isinstance(checked, WaferResponse):  # the store failed, ...
            raise WaferAPIException(checked)
        setattr(django_request, _STATE, checked)
        return checked


def _state_of(request: Any) -> RequestState | None:
    django_request = getattr(request, "_request", request)
    for name in ("wafer", _STATE):
        found = getattr(django_request, name, None)
        if isinstance(found, RequestState):
            return found
    return None


def _render(answer: WaferResponse) -> Response:
    response = Response(answer.body, status=answer.status)
    response["Cache-Control"] = "no-store"
    for name, value in answer.extra_headers:
        response[name] = value
    return response


def wafer_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's exception handler, answering in the Wafer protocol's format:

    * :class:`~wafer_py.exceptions.WaferError` (raised by a view or while checking the
      session): the protocol's answer for it;
    * ``NotAuthenticated`` / ``AuthenticationFailed``: the invalid-session answer, with
      the reason the request's session was refused (expired, unknown...) if it sent one;
    * anything else: DRF's own handler.
    """
    if isinstance(exc, WaferAPIException):
        return _render(exc.answer)
    if isinstance(exc, WaferError):
        return _render(error_response(exc))
    if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
        state = _state_of(context.get("request"))
        error = state.error if state is not None and state.error is not None else None
        response = _render(error_response(error or MissingCredentials()))
        response["WWW-Authenticate"] = 'Wafer realm="wafer"'
        return response
    # Imported here: rest_framework.views imports the authentication classes of the
    # settings (this module) while it loads.
    from rest_framework.views import exception_handler

    return exception_handler(exc, context)
