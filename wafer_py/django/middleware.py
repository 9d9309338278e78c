"""``WaferMiddleware``: the Wafer protocol in a Django project, under WSGI and ASGI alike.

Put it after ``AuthenticationMiddleware``::

    MIDDLEWARE = [
        ...,
        "django.contrib.auth.middleware.AuthenticationMiddleware",
        "wafer_py.django.middleware.WaferMiddleware",
    ]

It answers the login path (``WAFER_LOGIN_PATH``) with the protocol's JSON, checks the Wafer
headers of every other request, and leaves on the request:

* ``request.wafer``: the :class:`~wafer_py.protocol.RequestState`;
* ``request.wafer_user``: the neutral :class:`~wafer_py.users.WaferUser` (or the falsy
  :class:`~wafer_py.users.AnonymousUser`), the same object as Flask's ``current_user``;
* ``request.user``: for a request with a valid session, the Django user linked to the
  WeChat account, looked up (and made on a first login) only when a view touches it.

A request without a valid session to a ``WAFER_PROTECT``-ed path, or one its view answers
401 or 403, gets the protocol's invalid-session answer, so the client SDK logs in again.
A request with a valid session is exempt from CSRF checks: its credential is a header a
cross-site page cannot send, as DRF does for its non-cookie authentications.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.utils.functional import SimpleLazyObject

from ..auth import Authenticated, WaferAuth
from ..plans import offload
from ..protocol import RequestState, WaferProtocol, WaferResponse
from ..users import ANONYMOUS_USER, AnonymousUser, WaferUser
from ..web.login import WebLogin
from ..wsgi import client_check, wafer_headers
from .conf import wafer_auth, wafer_protect

if TYPE_CHECKING:
    from django.contrib.auth.base_user import AbstractBaseUser

__all__ = ["WaferMiddleware", "WaferHttpRequest", "wafer_response", "AUTH_ATTRIBUTE"]

#: The request attribute where the middleware leaves its auth, for the helpers.
AUTH_ATTRIBUTE = "_wafer_auth"
#: The request attribute holding the middleware's web login maker (wafer_py.django.web).
WEB_ATTRIBUTE = "_wafer_web"
#: Statuses from a view that become the invalid-session answer without a valid session.
CHALLENGE_STATUSES = frozenset({401, 403})

GetResponse = Callable[[HttpRequest], HttpResponseBase]
AGetResponse = Callable[[HttpRequest], Awaitable[HttpResponseBase]]


class WaferHttpRequest(HttpRequest):
    """For type checkers: a request that went through :class:`WaferMiddleware`
    (annotate a view's ``request`` with it to read ``request.wafer_user``)."""

    wafer: RequestState
    wafer_user: WaferUser | AnonymousUser


def wafer_response(answer: WaferResponse) -> HttpResponse:
    """A protocol answer as a Django response."""
    response = HttpResponse(answer.content, status=answer.status)
    for name, value in answer.headers:
        response[name] = value
    return response


def _django_user(identity: Authenticated, appid: str) -> AbstractBaseUser:
    """The Django user linked to the WeChat account ``appid`` + the identity's openid (made
    on a first login); ``appid`` is the middleware's ``WaferAuth``'s, which logged it in.

    :mod:`wafer_py.django.backends` imports the models: it is imported on first use only,
    so a request that never touches ``request.user`` costs nothing more.
    """
    backends = importlib.import_module(".backends", __package__)
    get_django_user: Callable[..., AbstractBaseUser] = backends.get_django_user
    return get_django_user(identity, appid=appid)


_AUTHENTICATION = "django.contrib.auth.middleware.AuthenticationMiddleware"


def _check_order(middleware: list[str]) -> None:
    """Refuse ``AuthenticationMiddleware`` after this one: it would set ``request.user``
    again, to the Django session's user, and the WeChat login would not show there."""
    ours = [i for i, name in enumerate(middleware) if name.startswith("wafer_py.django.")]
    if ours and _AUTHENTICATION in middleware and middleware.index(_AUTHENTICATION) > ours[0]:
        raise ImproperlyConfigured(
            "MIDDLEWARE: put wafer_py.django.middleware.WaferMiddleware after "
            "django.contrib.auth.middleware.AuthenticationMiddleware"
        )


class WaferMiddleware:
    """Django middleware, sync and async capable (Django picks the mode of the chain).

    Configured by the ``WAFER_*`` settings (:mod:`wafer_py.django.conf`), read once when
    Django builds its middleware chain; a misconfiguration stops the project there.
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: GetResponse | AGetResponse) -> None:
        _check_order(settings.MIDDLEWARE)
        self.get_response = get_response
        self.auth: WaferAuth = wafer_auth()
        self.protocol = WaferProtocol(self.auth, wafer_protect())
        self.web_options: dict[str, Any] = dict(getattr(settings, "WAFER_WEB", None) or {})
        self._web_login: WebLogin | None = None
        if self.web_options:  # a wrong option stops the project here, not at a first page
            self.web_login()
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self.is_async:
            return self.__acall__(request)
        path = request.path_info or "/"
        headers = wafer_headers(request.META)
        connected = client_check(request.META) if path == self.protocol.login_path else None
        outcome = self.protocol.handle(path, headers, connected=connected)
        if isinstance(outcome, WaferResponse):
            return wafer_response(outcome)
        self._annotate(request, outcome)
        get_response: GetResponse = self.get_response  # type: ignore[assignment]
        return self._challenge(outcome, get_response(request))

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        path = request.path_info or "/"
        headers = wafer_headers(request.META)
        if path == self.protocol.login_path:
            if self.protocol.route(path, headers) == "loop":
                return wafer_response(await self.protocol.alogin(headers))
            return wafer_response(await offload(self.protocol.login, headers))
        route = self.protocol.route(path, headers)
        if route == "inline":
            outcome = self.protocol.check(path, headers)
        elif route == "loop":
            outcome = await self.protocol.ahandle(path, headers)
        else:
            outcome = await offload(self.protocol.check, path, headers)
        if isinstance(outcome, WaferResponse):
            return wafer_response(outcome)
        self._annotate(request, outcome)
        get_response: AGetResponse = self.get_response  # type: ignore[assignment]
        return self._challenge(outcome, await get_response(request))

    def web_login(self) -> WebLogin:
        """The web login (:mod:`wafer_py.django.web`) on this middleware's auth, made once."""
        if self._web_login is None:
            try:
                self._web_login = WebLogin.from_auth(self.auth, **self.web_options)
            except (TypeError, ValueError) as exc:
                raise ImproperlyConfigured(f"WAFER_WEB: {exc}") from None
        return self._web_login

    def _annotate(self, request: HttpRequest, state: RequestState) -> None:
        """Leave what the middleware learned on the request (the one place that does)."""
        request.wafer = state  # type: ignore[attr-defined]
        setattr(request, AUTH_ATTRIBUTE, self.auth)
        setattr(request, WEB_ATTRIBUTE, self.web_login)
        identity = state.identity
        if identity is None:
            request.wafer_user = ANONYMOUS_USER  # type: ignore[attr-defined]
            return
        request.wafer_user = WaferUser(identity)  # type: ignore[attr-defined]
        linked = functools.cache(functools.partial(_django_user, identity, self.auth.config.appid))
        request.user = SimpleLazyObject(linked)  # type: ignore[assignment]

        async def auser() -> AbstractBaseUser:  # Django 5's await request.auser()
            return await sync_to_async(linked)()

        request.auser = auser
        # The session is a header no cross-site page can send: no CSRF token needed.
        request._dont_enforce_csrf_checks = True  # type: ignore[attr-defined]

    @staticmethod
    def _challenge(state: RequestState, response: HttpResponseBase) -> HttpResponseBase:
        """The view's response, or the invalid-session answer in place of its 401/403."""
        if state.identity is not None or response.status_code not in CHALLENGE_STATUSES:
            return response
        if response.streaming:
            # Its iterator may hold a file. (A plain response is dropped without close():
            # that sends request_finished, which would close the database connections in
            # the middle of the request, inside an atomic block too.)
            response.close()
        return wafer_response(state.challenge())
