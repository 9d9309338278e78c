"""A Django app for the web login tests (``tests/test_weblogin.py``'s ``serve_test_app``):
the same pages as its Flask and Starlette apps, in the example project."""

from __future__ import annotations

import os
from typing import Any

import django
from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.wsgi import WSGIHandler
from django.http import HttpRequest, HttpResponse
from django.test.utils import override_settings
from django.urls import path

from wafer_py import WaferAuth
from wafer_py.django.web import get_web_user, web_login_required, web_logout, web_urls


@web_login_required
def silent(request: HttpRequest) -> HttpResponse:
    user = get_web_user(request)
    assert user is not None
    return HttpResponse(f"openid={user.openid} scope={user.scope}", content_type="text/plain")


@web_login_required(scope="snsapi_userinfo")
async def full(request: HttpRequest) -> HttpResponse:
    user = get_web_user(request)
    assert user is not None
    return HttpResponse(f"nickname={user.nickname}", content_type="text/plain")


def logout(request: HttpRequest) -> HttpResponse:
    return web_logout(request, "/base")


os.environ.setdefault("DJANGO_SETTINGS_MODULE", "examples.django_app.settings")
urlpatterns = [path("base", silent), path("full", full), path("logout", logout), *web_urls()]


class UrlconfMiddleware:
    """Routes this app's requests through this module (the project's URLconf is global)."""

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> Any:
        request.urlconf = __name__
        return self.get_response(request)


def django_app(auth: WaferAuth, *, wsgi: bool = False, **options: Any) -> ASGIHandler | WSGIHandler:
    """The pages under ASGI (or WSGI), with ``auth`` and ``WAFER_WEB = options``."""
    django.setup()
    from django.conf import settings

    middleware = [*settings.MIDDLEWARE, f"{__name__}.UrlconfMiddleware"]
    with override_settings(WAFER_AUTH=auth, WAFER_WEB=options, MIDDLEWARE=middleware):
        return WSGIHandler() if wsgi else ASGIHandler()
