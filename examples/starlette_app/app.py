"""An ordinary Starlette app, wrapped by wafer_py in a few lines.

Everything above the "wafer_py" marker is the app as it was before; the marked lines
add Wafer login (``/weapp/login``) and the protected ``/weapp/user``, which uses
Starlette's own ``@requires("authenticated")``.

Run it: ``uvicorn examples.starlette_app.app:create_app --factory`` (configured by
``WAFER_*`` variables), or ``wafer-py demo`` for the demo with the fake WeChat.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.authentication import requires
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from wafer_py import WaferAuth, WaferConfig
from wafer_py.asgi import WaferMiddleware


async def index(request: Request) -> JSONResponse:
    return JSONResponse({"code": 0, "data": {"message": "hello from an ordinary Starlette app"}})


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


# --- wafer_py: a route that needs a session ----------------------------------------
@requires("authenticated")
async def weapp_user(request: Request) -> JSONResponse:
    return JSONResponse({"code": 0, "data": {"userInfo": request.user.userinfo()}})


def create_app(auth: WaferAuth | None = None) -> Starlette:
    routes = [
        Route("/", index),
        Route("/health", health),
        Route("/weapp/user", weapp_user),  # wafer_py
    ]
    # wafer_py: the middleware answers /weapp/login and sets request.user
    auth = auth or WaferAuth(WaferConfig.from_env())
    return Starlette(routes=routes, middleware=[Middleware(WaferMiddleware, auth=auth)])
