"""Web login for Django pages opened in WeChat (official-account OAuth, 网页授权).

The same names as :mod:`wafer_py.flask` and :mod:`wafer_py.starlette`, the request first::

    # urls.py
    urlpatterns = [..., *web_urls()]        # the OAuth callback (WAFER_WEB's callback_path)

    # views.py
    @web_login_required(scope="snsapi_userinfo")
    def profile(request):
        return HttpResponse(f"Hello {escape(get_web_user(request).nickname)}")

It uses the middleware's :class:`~wafer_py.auth.WaferAuth`; ``WAFER_WEB`` (a dict) holds
:class:`~wafer_py.web.login.WebLogin`'s options (``callback_path``, ``public_url``,
``cookie_secure``...), read with the other settings when Django builds its chain.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from http.cookies import SimpleCookie
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar, overload

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.urls import URLPattern, path
from django.views.decorators.csrf import csrf_exempt

from ..plans import offload
from ..web.login import CALLBACK_PATH, CONFIRM_BODY_LIMIT, WebAccess, WebAnswer, WebLogin, WebUser
from .middleware import WEB_ATTRIBUTE

if TYPE_CHECKING:
    from ..web.oauth import Scope

__all__ = ["web_urls", "web_callback", "web_login_required", "get_web_user", "web_logout"]

P = ParamSpec("P")
R = TypeVar("R")
Req = TypeVar("Req", bound=HttpRequest)
#: Where :func:`web_login_required` leaves the :class:`~wafer_py.web.login.WebUser`.
WEB_USER_ATTRIBUTE = "wafer_web_user"


def _web_login(request: HttpRequest) -> WebLogin:
    make: Callable[[], WebLogin] | None = getattr(request, WEB_ATTRIBUTE, None)
    if make is None:
        raise RuntimeError("web login needs wafer_py.django.middleware.WaferMiddleware")
    return make()


def _answer(answer: WebAnswer) -> HttpResponse:
    """A web login answer as a Django response (its ``Set-Cookie`` headers as cookies)."""
    response = HttpResponse(answer.body, status=answer.status)
    _add_headers(response, answer.headers)
    return response


def _add_headers(response: HttpResponseBase, headers: list[tuple[str, str]]) -> None:
    for name, value in headers:
        if name.lower() == "set-cookie":
            cookie: SimpleCookie = SimpleCookie()
            cookie.load(value)
            for key, morsel in cookie.items():
                response.cookies[key] = morsel
        else:
            response[name] = value


def _origin(request: HttpRequest) -> str:
    return f"{request.scheme}://{request.get_host()}{request.META.get('SCRIPT_NAME', '')}"


@csrf_exempt  # the confirmation form is bound to the browser by the login's own nonce
def web_callback(request: HttpRequest) -> HttpResponse:
    """The view WeChat sends the browser back to (GET), and the confirmation's (POST)."""
    login = _web_login(request)
    cookie = request.COOKIES.get(login.cookie_name)
    nonce = request.COOKIES.get(login.nonce_cookie_name)
    lang = request.headers.get("Accept-Language")
    if request.method == "POST":
        limit = CONFIRM_BODY_LIMIT
        declared = request.headers.get("Content-Length", "")
        too_big = declared.isdigit() and int(declared) > limit
        body = b"x" * (limit + 1) if too_big else request.read(limit + 1)
        answer = login.confirm(
            body, cookie=cookie, nonce=nonce, secure=request.is_secure(), accept_language=lang
        )
    else:
        answer = login.finish(
            request.GET.dict(),
            cookie=cookie,
            nonce=nonce,
            secure=request.is_secure(),
            base_url=_origin(request),
            accept_language=lang,
        )
    return _answer(answer)


def web_urls() -> list[URLPattern]:
    """The URL pattern of the OAuth callback, at ``WAFER_WEB``'s ``callback_path``."""
    options: dict[str, Any] = getattr(settings, "WAFER_WEB", None) or {}
    callback = str(options.get("callback_path", CALLBACK_PATH))
    return [path(callback.lstrip("/"), web_callback, name="wafer_web_callback")]


def web_logout(request: HttpRequest, redirect_to: str = "/") -> HttpResponse:
    """A response that ends the request's web session and goes to ``redirect_to``."""
    login = _web_login(request)
    return _answer(
        login.logout(
            request.COOKIES.get(login.cookie_name),
            redirect_to=redirect_to,
            secure=request.is_secure(),
        )
    )


def get_web_user(request: HttpRequest) -> WebUser | None:
    """The request's :class:`~wafer_py.web.login.WebUser`, or ``None``."""
    user = getattr(request, WEB_USER_ATTRIBUTE, None)
    return user if isinstance(user, WebUser) else None


def _guard(request: HttpRequest, scope: Scope) -> WebAccess:
    login = _web_login(request)
    return login.guard(
        request.COOKIES.get(login.cookie_name),
        scope=scope,
        next_path=request.get_full_path(),
        base_url=_origin(request),
        secure=request.is_secure(),
        nonce=request.COOKIES.get(login.nonce_cookie_name),
        accept_language=request.headers.get("Accept-Language"),
    )


@overload
def web_login_required(
    view: Callable[Concatenate[Req, P], R], *, scope: Scope = ...
) -> Callable[Concatenate[Req, P], Any]: ...
@overload
def web_login_required(view: None = None, *, scope: Scope = ...) -> Callable[[Any], Any]: ...
def web_login_required(
    view: Callable[Concatenate[Req, P], R] | None = None, *, scope: Scope = "snsapi_base"
) -> Any:
    """Send a browser without a web session of ``scope`` through WeChat's OAuth first.

    ``@web_login_required`` (silent ``snsapi_base``: openid only) or
    ``@web_login_required(scope="snsapi_userinfo")`` (a consent page: nickname, avatar);
    ``def`` and ``async def`` views alike.
    """

    def decorate(view: Callable[Concatenate[Req, P], Any]) -> Callable[Concatenate[Req, P], Any]:
        if iscoroutinefunction(view):

            @functools.wraps(view)
            async def async_wrapper(request: Req, /, *args: P.args, **kwargs: P.kwargs) -> Any:
                access = await offload(_guard, request, scope)
                if access.answer is not None:
                    return _answer(access.answer)
                setattr(request, WEB_USER_ATTRIBUTE, access.user)
                response = await view(request, *args, **kwargs)
                _add_headers(response, access.headers)
                return response

            return markcoroutinefunction(async_wrapper)

        @functools.wraps(view)
        def wrapper(request: Req, /, *args: P.args, **kwargs: P.kwargs) -> Any:
            access = _guard(request, scope)
            if access.answer is not None:
                return _answer(access.answer)
            setattr(request, WEB_USER_ATTRIBUTE, access.user)
            response = view(request, *args, **kwargs)
            _add_headers(response, access.headers)
            return response

        return wrapper

    return decorate if view is None else decorate(view)
