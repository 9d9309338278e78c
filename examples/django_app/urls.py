"""The example's routes, the same as the Flask and Starlette examples'. ``/weapp/login`` is
answered by wafer_py's middleware: it needs no route."""

from __future__ import annotations

from django.urls import path

from wafer_py.django.web import web_urls

from . import views

urlpatterns = [
    path("", views.index),
    path("health", views.health),
    path("weapp/user", views.weapp_user),  # wafer_py
    path("weapp/phone", views.weapp_phone),  # wafer_py
    path("weapp/profile", views.weapp_profile),  # wafer_py
    path("weapp/avatar", views.weapp_avatar),  # wafer_py
    path("weapp/avatar/<str:key>", views.weapp_avatar_image),  # wafer_py: public
    path("weapp/logout", views.weapp_logout),  # wafer_py
    path("api/me", views.api_me),  # wafer_py: behind WAFER_PROTECT = ["/api/"]
    path("web/profile", views.web_profile),  # wafer_py
    *web_urls(),  # wafer_py: the OAuth callback, /wechat/oauth/callback
]
