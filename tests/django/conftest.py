"""pytest-django for the Django tests only.

The settings are ``tests.django.settings`` (the example project's, plus the admin, DRF and
a PostgreSQL alias): one settings module for the whole run, since the e2e tests serve the
same project in-process. They are named here, not in the pytest configuration, so
pytest-django stays idle for the other tests. Each test gets the fake WeChat through
``WAFER_AUTH`` (``wafer``), and its own views through each module's
``pytest.mark.urls(...)``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import django
import pytest

from tests.support import services
from tests.support.ci import skip_or_fail
from wafer_py import WaferAuth

# Named and set up when pytest loads this file (after pytest-django has configured: its
# database block, which it sets on a Django set up before that, never falls on the
# in-process examples that other tests serve); the test modules here import models.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.django.settings")
django.setup()

#: The AppID the tests of the WeChat account use (``WAFER_APPID`` in their settings).
APPID = "wx1234567890abcdef"


@pytest.fixture(scope="session", autouse=True)
def _django_project() -> None:
    """Django set up for these tests."""
    django.setup()
    from django.conf import settings

    # The test client's host (pytest-django adds it only when Django was set up first).
    if "testserver" not in settings.ALLOWED_HOSTS:
        settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]


@pytest.fixture
def wafer(settings: object, make_auth: Callable[..., WaferAuth]) -> Iterator[WaferAuth]:
    """A fresh auth on the fake WeChat, the one the middleware of the next Client uses."""
    auth = make_auth(store_url="memory://")
    settings.WAFER_AUTH = auth  # type: ignore[attr-defined]
    yield auth


@pytest.fixture
def wafer_appid(settings: object) -> str:
    """``WAFER_APPID`` set for the test (the WeChat account's appid)."""
    settings.WAFER_APPID = APPID  # type: ignore[attr-defined]
    return APPID


@pytest.fixture
def pg_alias() -> str:
    """The ``pg`` database alias; skips (fails under CI=true) without the server."""
    from django.conf import settings

    if "pg" not in settings.DATABASES:
        skip_or_fail("no PostgreSQL server: the Django tests' pg database is not configured")
    return "pg"


@pytest.fixture(scope="session", autouse=True)
def _pg_connections_closed(django_db_setup: None) -> Iterator[None]:
    """Before the test databases are dropped, end the connections threads left open
    (the contract suite's threads, ``sync_to_async``'s worker) to the run's own
    PostgreSQL database, which could not be dropped otherwise."""
    yield
    from django.conf import settings

    if "pg" not in settings.DATABASES:
        return
    import psycopg

    name = settings.DATABASES["pg"]["NAME"]
    with psycopg.connect(services.url("postgres"), autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        )
