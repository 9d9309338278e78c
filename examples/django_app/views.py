"""The example's views: an ordinary Django view, and the ones wafer_py protects (marked)."""

from __future__ import annotations

from html import escape

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET, require_POST

from wafer_py import WaferError
from wafer_py.django import (
    WaferHttpRequest,
    arevoke_session,
    error_response,
    fetch_phone_number,
    login_required,
)
from wafer_py.django.web import get_web_user, web_login_required


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
    return HttpResponse(profile_page(user.nickname, user.avatar))


def profile_page(nickname: str, avatar: str) -> str:
    """The page a WeChat user sees: nickname and avatar, escaped."""
    return (
        '<!doctype html><html><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<title>Profile</title></head><body>"
        f'<img id="avatar" src="{escape(avatar)}" alt="" width="64" height="64">'
        f'<h1 id="nickname">{escape(nickname)}</h1></body></html>'
    )
