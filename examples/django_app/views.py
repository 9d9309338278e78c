"""The example's views: an ordinary Django view, and the ones wafer_py protects (marked)."""

from __future__ import annotations

from html import escape

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET, require_POST

from wafer_py import WaferError
from wafer_py.django import (
    WaferHttpRequest,
    arevoke_session,
    aupload_avatar,
    avatar_response,
    error_response,
    fetch_phone_number,
    login_required,
    set_profile,
)
from wafer_py.django.web import get_web_user, web_login_required
from wafer_py.models import User


@require_GET
def index(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"code": 0, "data": {"message": "hello from an ordinary Django app"}})


@require_GET
def health(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"ok": True})


# --- wafer_py: views that need a session -----------------------------------------------
@require_GET
@login_required
def weapp_user(request: WaferHttpRequest) -> JsonResponse:
    # request.wafer_user has the same attributes as Flask's current_user;
    # request.user is the Django user linked to the WeChat account.
    return JsonResponse({"code": 0, "data": {"userInfo": request.wafer_user.userinfo()}})


@require_GET
def api_me(request: WaferHttpRequest) -> JsonResponse:
    # no decorator: WAFER_PROTECT lets no request without a session reach this view.
    user = request.wafer_user
    return JsonResponse(
        {"code": 0, "data": {"openId": user.openid, "displayName": user.display_name}}
    )


@require_POST
@login_required
def weapp_phone(request: HttpRequest) -> HttpResponse:
    # {"code": <getPhoneNumber code>}: WeChat gives the number; it is kept on the user.
    try:
        phone = fetch_phone_number(request)
    except WaferError as exc:
        return error_response(exc)
    return JsonResponse({"code": 0, "data": {"phoneNumber": phone.phone_number}})


@require_POST
@login_required
def weapp_profile(request: HttpRequest) -> HttpResponse:
    # {"nickName": ..., "avatarUrl"?: ...} from <input type="nickname"> and chooseAvatar
    try:
        user = set_profile(request)
    except WaferError as exc:
        return error_response(exc)
    return JsonResponse({"code": 0, "data": {"userInfo": user.userinfo()}})


@require_POST
@login_required
async def weapp_avatar(request: HttpRequest) -> HttpResponse:
    # wx.uploadFile({name: "avatar"}): checked, stripped of metadata, kept in the store
    # (an async view: parsing, Pillow and the store run in a worker thread)
    try:
        url = await aupload_avatar(request)
    except WaferError as exc:
        return error_response(exc)
    return JsonResponse({"code": 0, "data": {"avatarUrl": url}})


@require_GET
def weapp_avatar_image(request: HttpRequest, key: str) -> HttpResponse:
    # public, as <image src> loads it without the session headers
    try:
        return avatar_response(request, key)
    except WaferError as exc:
        return error_response(exc)


@require_POST
@login_required
async def weapp_logout(request: HttpRequest) -> HttpResponse:
    # An async view: revokes this session in the shared store, for every process.
    try:
        revoked = await arevoke_session(request)
    except WaferError as exc:
        return error_response(exc)
    return JsonResponse({"code": 0, "data": {"revoked": revoked}})


# --- wafer_py: a web page for WeChat's browser (official-account OAuth) ---------------
@require_GET
@web_login_required(scope="snsapi_userinfo")
def web_profile(request: HttpRequest) -> HttpResponse:
    user = get_web_user(request)
    assert user is not None
    # The same person in the mini-program (one unionid), when there is one.
    return HttpResponse(profile_page(user.nickname, user.avatar, user.linked_user))


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
