"""``WAFER_*`` settings: read from ``django.conf.settings``, the environment as a fallback;
a missing or wrong one stops the project when Django builds its middleware chain."""

from __future__ import annotations

import os
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured
from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.wsgi import WSGIHandler

from tests.support.constants import TEST_SECRET
from wafer_py import WaferAuth
from wafer_py.config import DEMO_APP_SECRET, DEMO_APPID
from wafer_py.django.conf import wafer_auth, wafer_config, wafer_protect

pytestmark = pytest.mark.urls("tests.django.urls")

APP = {"WAFER_APPID": DEMO_APPID, "WAFER_APP_SECRET": DEMO_APP_SECRET}


@pytest.fixture(autouse=True)
def no_wafer_environment(monkeypatch: pytest.MonkeyPatch, settings: Any) -> None:
    """Neither the environment nor the settings hold WAFER_* values unless a test sets them."""
    for name in [n for n in os.environ if n.startswith("WAFER_")]:
        monkeypatch.delenv(name)
    for name in [n for n in dir(django_settings) if n.startswith("WAFER_")]:
        delattr(settings, name)


def test_settings_win_over_the_environment(monkeypatch: pytest.MonkeyPatch, settings: Any) -> None:
    monkeypatch.setenv("WAFER_APPID", "wx-from-the-environment")
    monkeypatch.setenv("WAFER_APP_SECRET", "secret-from-the-environment")
    monkeypatch.setenv("WAFER_SESSION_TTL", "600")
    settings.WAFER_APPID = "wx-from-settings"
    settings.WAFER_SECRET_KEY = [TEST_SECRET, "an-older-key-still-accepted-0000000"]
    settings.WAFER_STORE_URL = "memory://"
    config = wafer_config()
    assert config.appid == "wx-from-settings"
    assert config.app_secret == "secret-from-the-environment"  # the fallback
    assert config.session_ttl == 600
    assert config.secret_keys == (TEST_SECRET, "an-older-key-still-accepted-0000000")
    assert config.store_url == "memory://"


@pytest.mark.parametrize("handler", [WSGIHandler, ASGIHandler])
def test_a_missing_appid_stops_the_project_naming_the_setting(handler: type[Any]) -> None:
    with pytest.raises(ImproperlyConfigured, match="WAFER_APPID"):
        handler()


def test_a_wrong_value_is_named(settings: Any) -> None:
    for name, value in APP.items():
        setattr(settings, name, value)
    settings.WAFER_SESSION_TTL = "a week"
    with pytest.raises(ImproperlyConfigured, match="WAFER_SESSION_TTL"):
        WSGIHandler()
    settings.WAFER_SESSION_TTL = 3600
    settings.WAFER_SECRET_KEY = "tiny-key-7Q"
    with pytest.raises(ImproperlyConfigured, match="WAFER_SECRET_KEY") as caught:
        WSGIHandler()
    assert "tiny-key-7Q" not in str(caught.value)  # never the key itself


def test_protect_is_checked(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    settings.WAFER_PROTECT = ["api/"]
    with pytest.raises(ImproperlyConfigured, match="WAFER_PROTECT"):
        wafer_protect()
    settings.WAFER_PROTECT = "/api/"  # one prefix as text is a list of one
    assert wafer_protect()("/api/x") and not wafer_protect()("/apix")
    del settings.WAFER_PROTECT
    monkeypatch.setenv("WAFER_PROTECT", "/api/, /admin-api/")
    assert wafer_protect()("/admin-api/x") and not wafer_protect()("/other")


def test_wafer_auth_may_be_given_ready_or_by_path(settings: Any, make_auth: Any) -> None:
    auth = make_auth(store_url="memory://")
    settings.WAFER_AUTH = auth
    assert wafer_auth() is auth
    settings.WAFER_AUTH = "tests.django.test_django_settings.make_demo_auth"
    made = wafer_auth()
    assert isinstance(made, WaferAuth) and made.config.appid == DEMO_APPID
    made.close()
    settings.WAFER_AUTH = "tests.django.nowhere.auth"
    with pytest.raises(ImproperlyConfigured, match="WAFER_AUTH"):
        wafer_auth()
    settings.WAFER_AUTH = object()
    with pytest.raises(ImproperlyConfigured, match="WAFER_AUTH"):
        wafer_auth()


def make_demo_auth() -> WaferAuth:
    from wafer_py import WaferConfig

    return WaferAuth(
        WaferConfig(
            store_url="memory://",
            secret_keys=(TEST_SECRET,),
            **{"appid": DEMO_APPID, "app_secret": DEMO_APP_SECRET},
        )
    )


def test_a_wrong_web_option_stops_the_project(settings: Any, make_auth: Any) -> None:
    settings.WAFER_AUTH = make_auth(store_url="memory://")
    settings.WAFER_WEB = {"public_url": "shop.example.com"}  # no scheme
    with pytest.raises(ImproperlyConfigured, match="WAFER_WEB: public_url"):
        WSGIHandler()
    settings.WAFER_WEB = {"no_such_option": 1}
    with pytest.raises(ImproperlyConfigured, match="WAFER_WEB"):
        WSGIHandler()


def test_the_middleware_before_authentication_stops_the_project(
    settings: Any, make_auth: Any
) -> None:
    settings.WAFER_AUTH = make_auth(store_url="memory://")
    ours = "wafer_py.django.middleware.WaferMiddleware"
    auth = "django.contrib.auth.middleware.AuthenticationMiddleware"
    rest = [m for m in settings.MIDDLEWARE if m not in (ours, auth)]
    settings.MIDDLEWARE = [*rest, ours, auth]
    with pytest.raises(ImproperlyConfigured, match=r"after .*AuthenticationMiddleware"):
        WSGIHandler()
    settings.MIDDLEWARE = [*rest, auth, ours]
    WSGIHandler()


def test_drf_and_manage_py_read_the_settings_as_the_middleware_does(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One reading for all (``wafer_environ`` once turned a list of keys into the text
    "['k1', 'k2']", one key, and left out WAFER_CHECK_NICKNAMES)."""
    from wafer_py.django.backends import wafer_environ

    older = "an-older-key-still-accepted-0000000"
    settings.WAFER_SECRET_KEY = [TEST_SECRET, older]
    settings.WAFER_CHECK_NICKNAMES = True
    monkeypatch.setenv("WAFER_APPID", DEMO_APPID)
    environ = wafer_environ()
    assert environ["WAFER_SECRET_KEY"] == f"{TEST_SECRET},{older}"
    assert environ["WAFER_CHECK_NICKNAMES"] == "True"
    assert environ["WAFER_APPID"] == DEMO_APPID
