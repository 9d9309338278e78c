"""Views for the Django adapter's tests (``pytest.mark.urls("tests.django.urls")``)."""

from __future__ import annotations

import json
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path

from wafer_py import WaferError
from wafer_py.django import (
    afetch_phone_number,
    arevoke_session,
    error_response,
    fetch_phone_number,
    login_required,
    revoke_session,
    wafer_state,
)


def _who(request: HttpRequest) -> dict[str, Any]:
    user = request.wafer_user  # type: ignore[attr-defined]
    return {
        "authenticated": user.is_authenticated,
        "openid": user.openid,
        "state": wafer_state(request).is_authenticated,
        "generation": wafer_state(request).generation,
    }


def open_view(request: HttpRequest) -> JsonResponse:
    return JsonResponse(_who(request))


async def async_open_view(request: HttpRequest) -> JsonResponse:
    return JsonResponse(_who(request))


@login_required
def guarded(request: HttpRequest) -> JsonResponse:
    return JsonResponse(_who(request))


@login_required
async def async_guarded(request: HttpRequest) -> JsonResponse:
    return JsonResponse(_who(request))


def forbidden(request: HttpRequest) -> HttpResponse:
    return HttpResponse("no", status=403)


def unauthorized(request: HttpRequest) -> HttpResponse:
    return HttpResponse("no", status=401)


def post_open(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"posted": json.loads(request.body or b"{}")})


def phone(request: HttpRequest) -> HttpResponse:
    try:
        number = fetch_phone_number(request)
    except WaferError as exc:
        return error_response(exc)
    return JsonResponse({"phoneNumber": number.phone_number})


async def async_phone(request: HttpRequest) -> HttpResponse:
    try:
        number = await afetch_phone_number(request)
    except WaferError as exc:
        return error_response(exc)
    return JsonResponse({"phoneNumber": number.phone_number})


def logout(request: HttpRequest) -> HttpResponse:
    try:
        return JsonResponse({"revoked": revoke_session(request)})
    except WaferError as exc:
        return error_response(exc)


async def async_logout(request: HttpRequest) -> HttpResponse:
    try:
        return JsonResponse({"revoked": await arevoke_session(request)})
    except WaferError as exc:
        return error_response(exc)


def linked_user(request: HttpRequest) -> JsonResponse:
    user = request.user
    return JsonResponse({"pk": user.pk, "authenticated": user.is_authenticated})


async def async_linked_user(request: HttpRequest) -> JsonResponse:
    user = await request.auser()
    return JsonResponse({"pk": user.pk, "authenticated": user.is_authenticated})


urlpatterns = [
    path("open", open_view),
    path("async/open", async_open_view),
    path("guarded", guarded),
    path("async/guarded", async_guarded),
    path("forbidden", forbidden),
    path("unauthorized", unauthorized),
    path("post", post_open),
    path("phone", phone),
    path("async/phone", async_phone),
    path("logout", logout),
    path("async/logout", async_logout),
    path("api/thing", open_view),
    path("linked", linked_user),
    path("async/linked", async_linked_user),
]
