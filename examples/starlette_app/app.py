"""An ordinary Starlette app, wrapped by wafer_py in a few lines.

Everything above the "wafer_py" marker is the app as it was before; the marked lines
add Wafer login (``/weapp/login``), the protected ``/weapp/user``, which uses
Starlette's own ``@requires("authenticated")``, and ``/api/``, protected by the
middleware's ``protect=``, and a page for WeChat's browser,
``/web/profile``, behind official-account OAuth.

Run it: ``uvicorn examples.starlette_app.app:create_app --factory`` (configured by
``WAFER_*`` variables), or ``wafer-py demo`` for the demo with the fake WeChat.
"""

from __future__ import annotations

from html import escape

from starlette.applications import Starlette
from starlette.authentication import requires
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from wafer_py import WaferAuth, WaferConfig, WaferError
from wafer_py.asgi import WaferMiddleware
from wafer_py.models import User
from wafer_py.starlette import (
    WaferWeb,
    avatar_response,
    error_response,
    fetch_phone_number,
    get_web_user,
    revoke_session,
    set_profile,
    upload_avatar,
    web_login_required,
)


async def index(request: Request) -> JSONResponse:
    return JSONResponse({"code": 0, "data": {"message": "hello from an ordinary Starlette app"}})


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


# --- wafer_py: a route that needs a session ----------------------------------------
@requires("authenticated")
async def weapp_user(request: Request) -> JSONResponse:
    return JSONResponse({"code": 0, "data": {"userInfo": request.user.userinfo()}})


async def api_me(request: Request) -> JSONResponse:
    # no @requires: the middleware's protect= lets no request without a session get here.
    # request.user has the same attributes as Flask's current_user.
    user = request.user
    return JSONResponse(
        {"code": 0, "data": {"openId": user.openid, "displayName": user.display_name}}
    )


@requires("authenticated")
async def weapp_phone(request: Request) -> Response:
    # {"code": <getPhoneNumber code>}: WeChat gives the number; it is kept on the user.
    try:
        phone = await fetch_phone_number(request)
    except WaferError as exc:
        return error_response(exc)
    return JSONResponse({"code": 0, "data": {"phoneNumber": phone.phone_number}})


@requires("authenticated")
async def weapp_profile(request: Request) -> Response:
    # {"nickName": ..., "avatarUrl"?: ...} from <input type="nickname"> and chooseAvatar
    try:
        user = await set_profile(request)
    except WaferError as exc:
        return error_response(exc)
    return JSONResponse({"code": 0, "data": {"userInfo": user.userinfo()}})


@requires("authenticated")
async def weapp_avatar(request: Request) -> Response:
    # wx.uploadFile({name: "avatar"}): checked, stripped of metadata, kept in the store
    try:
        url = await upload_avatar(request)
    except WaferError as exc:
        return error_response(exc)
    return JSONResponse({"code": 0, "data": {"avatarUrl": url}})


async def weapp_avatar_image(request: Request) -> Response:
    # public, as <image src> loads it without the session headers
    try:
        return await avatar_response(request)
    except WaferError as exc:
        return error_response(exc)


@requires("authenticated")
async def weapp_logout(request: Request) -> Response:
    # Revokes this session in the shared store: every app process refuses it now.
    try:
        revoked = await revoke_session(request)
    except WaferError as exc:
        return error_response(exc)
    return JSONResponse({"code": 0, "data": {"revoked": revoked}})


# --- wafer_py: a web page for WeChat's browser (official-account OAuth) ---------------
@web_login_required(scope="snsapi_userinfo")
async def web_profile(request: Request) -> HTMLResponse:
    user = get_web_user(request)
    assert user is not None
    # The same person in the mini-program (one unionid), when there is one.
    return HTMLResponse(profile_page(user.nickname, user.avatar, user.linked_user))


def profile_page(nickname: str, avatar: str, linked: User | None = None) -> str:
    """The page a WeChat user sees: nickname and avatar, and the mini-program profile of
    the same person (``linked``) if there is one; escaped."""
    mini = ""
    if linked is not None:
        mini = (
            '<section id="mini-program"><h2>In the mini-program</h2>'
            f'<img id="mini-avatar" src="{escape(str(linked.profile.get("avatarUrl", "")))}" '
            'alt="" width="64" height="64">'
            f'<p id="mini-nickname">{escape(linked.nickname)}</p></section>'
        )
    return (
        '<!doctype html><html><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<title>Profile</title></head><body>"
        f'<img id="avatar" src="{escape(avatar)}" alt="" width="64" height="64">'
        f'<h1 id="nickname">{escape(nickname)}</h1>{mini}</body></html>'
    )


def create_app(auth: WaferAuth | None = None) -> Starlette:
    routes = [
        Route("/", index),
        Route("/health", health),
        Route("/weapp/user", weapp_user),  # wafer_py
        Route("/weapp/phone", weapp_phone, methods=["POST"]),  # wafer_py
        Route("/weapp/profile", weapp_profile, methods=["POST"]),  # wafer_py
        Route("/weapp/avatar", weapp_avatar, methods=["POST"]),  # wafer_py
        Route("/weapp/avatar/{key}", weapp_avatar_image),  # wafer_py
        Route("/weapp/logout", weapp_logout, methods=["POST"]),  # wafer_py
        Route("/api/me", api_me),  # wafer_py: behind protect=["/api/"]
        Route("/web/profile", web_profile),  # wafer_py
    ]
    # wafer_py: the middleware answers /weapp/login, sets request.user, and lets no
    # request without a session reach /api/
    auth = auth or WaferAuth(WaferConfig.from_env())
    wafer = Middleware(WaferMiddleware, auth=auth, protect=["/api/"])
    app = Starlette(routes=routes, middleware=[wafer])
    WaferWeb(app)  # wafer_py: adds the OAuth callback, sharing the middleware's auth
    return app
