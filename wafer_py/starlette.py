"""Starlette (and FastAPI) helpers on top of :class:`~wafer_py.asgi.WaferMiddleware`.

The middleware already sets ``request.user`` (a :class:`~wafer_py.asgi.WaferUser`) and
``request.auth``, so Starlette's ``@requires("authenticated")`` works as it is; a 401 or
403 it raises for a request without a valid session is turned into the protocol's
invalid-session answer. :func:`login_required` answers that directly, and
:func:`require_user` is the same as a FastAPI dependency.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar, cast

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response

from .asgi import SCOPE_KEY, WaferMiddleware, WaferUser, get_state
from .protocol import RequestState

__all__ = ["WaferMiddleware", "WaferUser", "login_required", "require_user", "wafer_state",
           "SCOPE_KEY"]

F = TypeVar("F", bound=Callable[..., Any])


def wafer_state(conn: HTTPConnection) -> RequestState:
    """The request's :class:`~wafer_py.protocol.RequestState`."""
    return get_state(conn.scope)


def _challenge(state: RequestState) -> Response:
    answer = state.challenge()
    return Response(answer.content, answer.status, headers=dict(answer.headers))


def login_required(endpoint: F) -> F:
    """Decorate a Starlette endpoint (sync or async, taking ``request``) to need login."""
    is_async = inspect.iscoroutinefunction(endpoint)

    @functools.wraps(endpoint)
    async def wrapper(request: Request, *args: Any, **kwargs: Any) -> Any:
        state = wafer_state(request)
        if not state.is_authenticated:
            return _challenge(state)
        if is_async:
            return await endpoint(request, *args, **kwargs)
        return await run_in_threadpool(endpoint, request, *args, **kwargs)

    return cast(F, wrapper)


def require_user(request: Request) -> WaferUser:
    """FastAPI dependency: ``user: WaferUser = Depends(require_user)``.

    Raises a 401 that the middleware turns into the invalid-session answer.
    """
    user = request.scope.get("user")
    if not isinstance(user, WaferUser):
        raise HTTPException(status_code=401)
    return user
