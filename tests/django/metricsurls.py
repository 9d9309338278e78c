"""A Django project's ``/metrics`` view, as docs/metrics.md shows it
(``pytest.mark.urls("tests.django.metricsurls")``)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.urls import path

from tests.django.urls import open_view
from wafer_py.metrics import exposition


def metrics(request: HttpRequest) -> HttpResponse:
    body, content_type = exposition(request.headers.get("Accept"))
    return HttpResponse(body, content_type=content_type)


urlpatterns = [
    path("metrics", metrics),
    path("open", open_view),
]
