"""Django settings of the whole test run: the example project's own, plus what the tests
of the WeChat account, its admin, DRF and the ``django://`` store need (the admin and its
messages, DRF, SQLite with a lock wait, and the shared PostgreSQL server as the ``pg``
alias when it answers: a database of the run's own, dropped at its end).

One settings module for the run: Django is set up once per process, and the e2e tests
serve the example project in the same process.
"""

from __future__ import annotations

import secrets
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

from examples.django_app.settings import *  # noqa: F403
from examples.django_app.settings import INSTALLED_APPS, MIDDLEWARE
from tests.support import services

_SCRATCH = Path(tempfile.mkdtemp(prefix="wafer-django-tests-"))

ALLOWED_HOSTS = ["testserver", "127.0.0.1", "localhost", "[::1]"]
INSTALLED_APPS = [
    *INSTALLED_APPS[:-1],
    "django.contrib.messages",
    "django.contrib.admin",
    "rest_framework",
    INSTALLED_APPS[-1],  # wafer_py.django
]
_AUTH = MIDDLEWARE.index("django.contrib.auth.middleware.AuthenticationMiddleware")
MIDDLEWARE = [
    *MIDDLEWARE[: _AUTH + 1],
    "django.contrib.messages.middleware.MessageMiddleware",
    *MIDDLEWARE[_AUTH + 1 :],
]
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "wafer_py.django.backends.WaferBackend",
]
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]
# Threads of the store contract suite write at once: they wait for SQLite's lock.
DATABASES: dict[str, dict[str, object]] = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(_SCRATCH / "main.db"),
        "OPTIONS": {"timeout": 30},
        "TEST": {"NAME": str(_SCRATCH / "test.db")},
    }
}
if services._answers("postgres") is None:
    _pg = urlsplit(services.url("postgres"))
    DATABASES["pg"] = {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": _pg.path.lstrip("/") or "postgres",
        "USER": _pg.username or "postgres",
        "PASSWORD": _pg.password or "",
        "HOST": _pg.hostname or "127.0.0.1",
        "PORT": _pg.port or 5432,
        "TEST": {"NAME": "test_wafer_dj_" + secrets.token_hex(4)},
    }
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["wafer_py.django.drf.WaferAuthentication"],
    "EXCEPTION_HANDLER": "wafer_py.django.drf.wafer_exception_handler",
}
