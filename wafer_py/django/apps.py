"""The Django app ``wafer_py.django`` (add it to ``INSTALLED_APPS`` and run ``migrate``)."""

from __future__ import annotations

from django.apps import AppConfig


class WaferAppConfig(AppConfig):
    """wafer_py's models (the WeChat account, the ``django://`` store's tables), admin and
    management commands; the settings are checked by the middleware when Django builds
    its chain."""

    name = "wafer_py.django"
    label = "wafer_py_django"
    verbose_name = "WeChat login (wafer_py)"
    default_auto_field = "django.db.models.BigAutoField"
