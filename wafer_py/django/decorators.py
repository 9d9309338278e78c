"""``login_required`` for Django views: the protocol's answers, not a redirect to a page.

Django's own ``login_required`` sends a browser to ``LOGIN_URL``; a mini-program needs the
invalid-session answer instead, which makes its client SDK log in and retry::

    @login_required
    def user(request):
        return JsonResponse({"code": 0, "data": {"userInfo": request.wafer_user.userinfo()}})

It decorates ``def`` and ``async def`` views alike and keeps the kind it was given, as
Django's decorators do.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine
from typing import Any, Concatenate, ParamSpec, TypeVar, overload

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponse

from .middleware import wafer_response
from .views import wafer_state

__all__ = ["login_required"]

P = ParamSpec("P")
R = TypeVar("R")
Req = TypeVar("Req", bound=HttpRequest)


@overload
def login_required(  # type: ignore[overload-overlap, unused-ignore]
    view: Callable[Concatenate[Req, P], Coroutine[Any, Any, R]],
) -> Callable[Concatenate[Req, P], Coroutine[Any, Any, R | HttpResponse]]: ...
@overload
def login_required(
    view: Callable[Concatenate[Req, P], R],
) -> Callable[Concatenate[Req, P], R | HttpResponse]: ...
def login_required(view: Callable[Concatenate[Req, P], Any]) -> Callable[Concatenate[Req, P], Any]:
    """Answer the protocol's invalid-session error unless the request has a valid session
    (``request.wafer`` set by :class:`~wafer_py.django.middleware.WaferMiddleware`)."""
    if iscoroutinefunction(view):

        @functools.wraps(view)
        async def async_wrapper(request: Req, /, *args: P.args, **kwargs: P.kwargs) -> Any:
            state = wafer_state(request)
            if not state.is_authenticated:
                return wafer_response(state.challenge())
            return await view(request, *args, **kwargs)

        return markcoroutinefunction(async_wrapper)

    @functools.wraps(view)
    def wrapper(request: Req, /, *args: P.args, **kwargs: P.kwargs) -> Any:
        state = wafer_state(request)
        if not state.is_authenticated:
            return wafer_response(state.challenge())
        return view(request, *args, **kwargs)

    return wrapper
