"""``login_required`` and ``require_user`` for Starlette and FastAPI: the protocol's answer,
not a redirect to a page.

The middleware already sets ``request.user`` and ``request.auth``, so Starlette's own
``@requires("authenticated")`` works as it is; these answer the invalid-session error
directly, which makes the mini-program's client SDK log in and retry::

    @login_required
    async def user(request):
        return JSONResponse({"code": 0, "data": {"userInfo": request.user.userinfo()}})

    @app.get("/me")                               # FastAPI
    def me(user: WaferUser = Depends(require_user)): ...
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import Any, Concatenate, ParamSpec, cast

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from ..plans import offload
from ..protocol import RequestState
from ..users import WaferUser
from .views import wafer_state

__all__ = ["login_required", "require_user", "Endpoint", "AsyncEndpoint"]

P = ParamSpec("P")
#: A Starlette endpoint taking the request first; its answer is a response or awaits one.
Endpoint = Callable[Concatenate[Request, P], Any]
#: What the decorators make of it: always a coroutine function.
AsyncEndpoint = Callable[Concatenate[Request, P], Awaitable[Any]]


def _challenge(state: RequestState) -> Response:
    answer = state.challenge()
    return Response(answer.content, answer.status, headers=dict(answer.headers))


def login_required(endpoint: Endpoint[P]) -> AsyncEndpoint[P]:
    """Decorate a Starlette endpoint (sync or async, taking ``request``) to need login."""
    is_async = inspect.iscoroutinefunction(endpoint)

    @functools.wraps(endpoint)
    async def wrapper(request: Request, *args: P.args, **kwargs: P.kwargs) -> Any:
        state = wafer_state(request)
        if not state.is_authenticated:
            return _challenge(state)
        if is_async:
            return await endpoint(request, *args, **kwargs)
        return await offload(endpoint, request, *args, **kwargs)

    # ``request`` stays a keyword too: FastAPI calls an endpoint with keyword arguments.
    return cast("AsyncEndpoint[P]", wrapper)


def require_user(request: Request) -> WaferUser:
    """FastAPI dependency: ``user: WaferUser = Depends(require_user)``.

    Raises a 401 that the middleware turns into the invalid-session answer.
    """
    user = request.scope.get("user")
    if not isinstance(user, WaferUser):
        raise HTTPException(status_code=401)
    return user
