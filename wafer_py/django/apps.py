"""The Django app of wafer_py (``INSTALLED_APPS = [..., "wafer_py.django"]``)."""

from __future__ import annotations

from django.apps import AppConfig


class WaferAppConfig(AppConfig):
    """Its models (the WeChat account, the ``django://`` store's tables) and commands."""

    name = "wafer_py.django"
    label = "wafer_py_django"
    verbose_name = "Wafer (WeChat login)"
    default_auto_field = "django.db.models.BigAutoField"
