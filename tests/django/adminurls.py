"""The admin, for the tests of the WeChat account admin (`pytest.mark.urls`)."""

from django.contrib import admin
from django.urls import path

urlpatterns = [path("admin/", admin.site.urls)]
