"""Every adapter reads the same sources in the same order: its framework's configuration,
then the ``WAFER_*`` environment for what that leaves out (Django: tests/django/
test_django_settings.py). Flask's ``Wafer(app)`` once ignored the environment."""

from __future__ import annotations

import os
from typing import Any

import pytest
from flask import Flask
from starlette.applications import Starlette

from tests.support.constants import TEST_SECRET
from wafer_py.asgi import WaferMiddleware
from wafer_py.config import DEMO_APP_SECRET, DEMO_APPID, config_sources
from wafer_py.flask import Wafer
from wafer_py.wsgi import WaferWSGIMiddleware


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """The environment of a 12-factor deployment: the secrets and the store."""
    for name in [n for n in os.environ if n.startswith("WAFER_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("WAFER_APP_SECRET", DEMO_APP_SECRET)
    monkeypatch.setenv("WAFER_SECRET_KEY", TEST_SECRET)
    monkeypatch.setenv("WAFER_STORE_URL", "memory://")
    monkeypatch.setenv("WAFER_SESSION_TTL", "600")
    return monkeypatch


def test_flask_reads_the_environment_for_keys_missing_from_app_config() -> None:
    app = Flask(__name__)
    app.config.update(WAFER_APPID=DEMO_APPID, WAFER_SESSION_TTL=900, WAFER_LOGIN_PATH="")
    wafer = Wafer(app)
    assert wafer.auth is not None
    config = wafer.auth.config
    try:
        assert config.appid == DEMO_APPID  # app.config
        assert config.app_secret == DEMO_APP_SECRET  # the environment
        assert config.secret_keys == (TEST_SECRET,)
        assert config.store_url == "memory://"
        assert config.session_ttl == 900  # app.config wins over the environment
        assert config.login_path == "/weapp/login"  # "" is left out: the default
    finally:
        wafer.auth.close()


def test_flask_without_the_environment_names_the_missing_variable(
    environment: pytest.MonkeyPatch,
) -> None:
    environment.delenv("WAFER_APP_SECRET")
    app = Flask(__name__)
    app.config.update(WAFER_APPID=DEMO_APPID)
    with pytest.raises(ValueError, match="WAFER_APP_SECRET is not set"):
        Wafer(app)


@pytest.mark.parametrize("middleware", [WaferMiddleware, WaferWSGIMiddleware])
def test_the_middleware_without_a_config_reads_the_environment(
    middleware: Any, environment: pytest.MonkeyPatch
) -> None:
    environment.setenv("WAFER_APPID", DEMO_APPID)
    wrapped = middleware(Starlette())
    try:
        assert wrapped.auth.config.appid == DEMO_APPID
        assert wrapped.auth.config.store_url == "memory://"
        assert wrapped.auth.config.session_ttl == 600
    finally:
        wrapped.auth.close()


def test_config_sources_says_where_each_value_came_from() -> None:
    found = config_sources(
        {"WAFER_APPID": "wx1", "WAFER_SECRET_KEY": ["a", "b"], "WAFER_STORE_URL": None},
        {"WAFER_APPID": "wx2", "WAFER_STORE_URL": "redis://h/0", "HOME": "/root"},
        framework_name="app.config",
    )
    assert found == {
        "WAFER_APPID": ("wx1", "app.config"),
        "WAFER_SECRET_KEY": ("a,b", "app.config"),
        "WAFER_STORE_URL": ("redis://h/0", "env"),
    }
