"""pytest-django for the Django adapter's tests only.

The settings are the example project's (one settings module for the whole run: the e2e
tests serve the same project in-process); they are named here, not in the pytest
configuration, so pytest-django stays idle for the other tests. Each test gets the
fake WeChat through ``WAFER_AUTH`` (``wafer``), and its own views through each module's
``pytest.mark.urls("tests.django.urls")``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import django
import pytest

from wafer_py import WaferAuth

# Named when pytest loads this file; Django itself is set up when the first test here
# runs (below), so pytest-django's database block, which it sets on a Django set up before
# it configures, never falls on the in-process examples that other tests serve.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "examples.django_app.settings")


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
