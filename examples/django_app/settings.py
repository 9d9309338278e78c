"""The settings of a minimal Django project, with the few lines wafer_py adds (marked).

The WAFER_* values come from the environment here (``WAFER_APPID``, ``WAFER_APP_SECRET``,
``WAFER_SECRET_KEY``, ``WAFER_STORE_URL``...); a project may set them in this file as well.
The database is SQLite in a temporary directory: the example keeps nothing.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

# A throwaway key for a throwaway project: set DJANGO_SECRET_KEY in a real one.
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY") or "example-only-" + os.urandom(16).hex()
DEBUG = False
# Loopback only, as the demo serves; DJANGO_ALLOWED_HOSTS (comma-separated) adds names.
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]"] + [
    host.strip() for host in os.environ.get("DJANGO_ALLOWED_HOSTS", "").split(",") if host.strip()
]

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "wafer_py.django",  # wafer_py
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "wafer_py.django.middleware.WaferMiddleware",  # wafer_py: after AuthenticationMiddleware
]

# wafer_py: every /api/ view needs a session, decorated or not
WAFER_PROTECT = ["/api/"]

ROOT_URLCONF = f"{__package__}.urls"
WSGI_APPLICATION = f"{__package__}.wsgi.application"

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("DJANGO_DB_PATH")
        or str(Path(tempfile.mkdtemp(prefix="wafer-django-example-")) / "db.sqlite3"),
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
TIME_ZONE = "UTC"
