"""Django for the tests in this folder: settings from ``tests.django.settings``, made
here with ``settings.configure`` (not ``DJANGO_SETTINGS_MODULE``, which app processes
started by other tests would inherit). pytest-django creates the test databases."""

from __future__ import annotations

from collections.abc import Iterator

import django
import pytest
from django.conf import settings

from tests.django import settings as test_settings
from tests.support import services
from tests.support.ci import skip_or_fail

if not settings.configured:
    settings.configure(
        **{name: getattr(test_settings, name) for name in dir(test_settings) if name.isupper()}
    )
    django.setup()


@pytest.fixture
def pg_alias() -> str:
    """The ``pg`` database alias; skips (fails under CI=true) without the server."""
    if "pg" not in settings.DATABASES:
        skip_or_fail("no PostgreSQL server: the Django tests' pg database is not configured")
    return "pg"


@pytest.fixture(scope="session", autouse=True)
def _pg_connections_closed(django_db_setup: None) -> Iterator[None]:
    """Before the test databases are dropped, end the connections threads left open
    (the contract suite's threads, ``sync_to_async``'s worker) to the run's own
    PostgreSQL database, which could not be dropped otherwise."""
    yield
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
