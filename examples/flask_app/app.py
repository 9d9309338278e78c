"""An ordinary Flask app, wrapped by wafer_py in a few lines.

Everything above the "wafer_py" marker is the app as it was before; the marked lines
add Wafer login (``/weapp/login``), the protected ``/weapp/user`` and ``/api/``, and a page for
WeChat's browser, ``/web/profile``, behind official-account OAuth.

Run it: ``flask --app examples.flask_app.app run`` (configured by ``WAFER_*`` variables),
or ``wafer-py demo --framework flask`` for the demo with the fake WeChat.
"""

from __future__ import annotations

from html import escape
from typing import Any

from flask import Flask

from wafer_py import WaferAuth, WaferError
from wafer_py.flask import (
    Wafer,
    WaferWeb,
    avatar_response,
    current_user,
    current_web_user,
    error_response,
    fetch_phone_number,
    login_required,
    revoke_session,
    set_profile,
    upload_avatar,
    web_login_required,
)
from wafer_py.models import User


def create_app(auth: WaferAuth | None = None) -> Flask:
    app = Flask(__name__)

    @app.get("/")
    def index() -> dict[str, object]:
        return {"code": 0, "data": {"message": "hello from an ordinary Flask app"}}

    @app.get("/health")
    def health() -> dict[str, object]:
        return {"ok": True}

    # --- wafer_py: the login path, and a route that needs a session ---------------
    # answers /weapp/login; protect: every /api/ route needs a session, decorated or not.
    # Without an auth it is configured by app.config's WAFER_* keys, then the environment.
    Wafer(app, auth, protect=["/api/"])

    @app.get("/api/me")
    def api_me() -> dict[str, object]:
        # no decorator: protect= lets no request without a session reach this view.
        # current_user has the same attributes as Starlette's request.user.
        user = current_user
        return {"code": 0, "data": {"openId": user.openid, "displayName": user.display_name}}

    @app.get("/weapp/user")
    @login_required
    def weapp_user() -> dict[str, object]:
        return {"code": 0, "data": {"userInfo": current_user.userinfo()}}

    @app.post("/weapp/phone")
    @login_required
    def weapp_phone() -> Any:
        # {"code": <getPhoneNumber code>}: WeChat gives the number; it is kept on the user.
        try:
            phone = fetch_phone_number()
        except WaferError as exc:
            return error_response(exc)
        return {"code": 0, "data": {"phoneNumber": phone.phone_number}}

    @app.post("/weapp/profile")
    @login_required
    def weapp_profile() -> Any:
        # {"nickName": ..., "avatarUrl"?: ...} from <input type="nickname"> and chooseAvatar
        try:
            user = set_profile()
        except WaferError as exc:
            return error_response(exc)
        return {"code": 0, "data": {"userInfo": user.userinfo()}}

    @app.post("/weapp/avatar")
    @login_required
    def weapp_avatar() -> Any:
        # wx.uploadFile({name: "avatar"}): checked, stripped of metadata, kept in the store
        try:
            url = upload_avatar()
        except WaferError as exc:
            return error_response(exc)
        return {"code": 0, "data": {"avatarUrl": url}}

    @app.get("/weapp/avatar/<key>")
    def weapp_avatar_image(key: str) -> Any:
        # public, as <image src> loads it without the session headers
        try:
            return avatar_response(key)
        except WaferError as exc:
            return error_response(exc)

    @app.post("/weapp/logout")
    @login_required
    def weapp_logout() -> Any:
        # Revokes this session in the shared store: every app process refuses it now.
        try:
            revoked = revoke_session()
        except WaferError as exc:
            return error_response(exc)
        return {"code": 0, "data": {"revoked": revoked}}

    # --- wafer_py: a web page for WeChat's browser (official-account OAuth) -----------
    WaferWeb(app)  # mounts /wechat/oauth/callback, sharing Wafer(app)'s config and store

    @app.get("/web/profile")
    @web_login_required(scope="snsapi_userinfo")
    def web_profile() -> str:
        user = current_web_user
        # The same person in the mini-program (one unionid), when there is one.
        return profile_page(user.nickname, user.avatar, user.linked_user)

    return app


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
