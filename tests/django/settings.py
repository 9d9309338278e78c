"""Django settings of the Django tests: SQLite in a scratch file, and the shared
PostgreSQL server as the ``pg`` alias when it answers (a database of the run's own,
dropped at its end)."""

from __future__ import annotations

import secrets
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

from tests.support import services

_SCRATCH = Path(tempfile.mkdtemp(prefix="wafer-django-"))

SECRET_KEY = secrets.token_hex(32)
DEBUG = False
USE_TZ = True
ALLOWED_HOSTS = ["testserver", "127.0.0.1", "localhost"]
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.admin",
    "rest_framework",
    "wafer_py.django",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
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
ROOT_URLCONF = "tests.django.urls"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
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
WAFER_APPID = "wx1234567890abcdef"
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["wafer_py.django.drf.WaferAuthentication"],
    "EXCEPTION_HANDLER": "wafer_py.django.drf.wafer_exception_handler",
}
