"""Metrics under Django (issue #16, item 4): a ``/metrics`` view scraped after a login, a
failed login, a validation and an invalid session, through the sync and async handlers;
``WAFER_METRICS`` read from the settings."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.test import AsyncClient, Client

from tests.support.constants import TEST_SECRET
from tests.support.metrics import check_moved, exercise, parse
from wafer_py import WaferAuth
from wafer_py.config import DEMO_APP_SECRET, DEMO_APPID
from wafer_py.fakewechat import FakeWeChat

pytestmark = pytest.mark.urls("tests.django.metricsurls")


def _getter(handler: str) -> Callable[[str, dict[str, str]], tuple[int, str]]:
    if handler == "sync":
        client = Client()

        def get(path: str, headers: dict[str, str]) -> tuple[int, str]:
            response = client.get(path, headers=headers)
            return response.status_code, response.content.decode()

        return get
    aclient = AsyncClient()

    def aget(path: str, headers: dict[str, str]) -> tuple[int, str]:
        async def run() -> Any:
            return await aclient.get(path, headers=headers)

        response = async_to_sync(run)()
        return response.status_code, response.content.decode()

    return aget


@pytest.mark.parametrize("handler", ["sync", "async"])
def test_the_metrics_view_shows_the_counters_moved(
    handler: str, settings: Any, make_auth: Callable[..., WaferAuth], fake: FakeWeChat
) -> None:
    settings.WAFER_AUTH = make_auth(store_url="memory://", metrics="prometheus")
    get = _getter(handler)
    status, text = get("/metrics", {})
    assert status == 200
    before = parse(text)
    used = exercise(get, fake, DEMO_APPID, f"django-metrics-{handler}", "/open")
    status, text = get("/metrics", {})
    check_moved(before, parse(text))
    for secret in [*used, DEMO_APP_SECRET, TEST_SECRET]:
        assert secret not in text


def test_the_setting_is_read_from_the_django_settings(settings: Any) -> None:
    from wafer_py.django.backends import wafer_environ
    from wafer_py.django.conf import wafer_config

    settings.WAFER_APPID = DEMO_APPID
    settings.WAFER_APP_SECRET = DEMO_APP_SECRET
    settings.WAFER_METRICS = "prometheus"
    assert wafer_config({}).metrics == "prometheus"
    assert wafer_environ()["WAFER_METRICS"] == "prometheus"
