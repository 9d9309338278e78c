"""Any Wafer header values through the Django middleware (sync and async chains): a 4xx in
the protocol's format or the view's answer, never a 5xx or a traceback."""

from __future__ import annotations

import string
from typing import Any

import hypothesis
import pytest

from tests.django.test_django_middleware import Async, Sync
from wafer_py import WaferAuth
from wafer_py.protocol import MAGIC_ID, WAFER_HEADERS

st = hypothesis.strategies

pytestmark = pytest.mark.urls("tests.django.urls")

NAMES = sorted(WAFER_HEADERS)
VALUES = st.one_of(
    st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=0x2FFF), max_size=60),
    st.text(alphabet=string.ascii_letters + string.digits + "+/=", max_size=80),
    st.sampled_from(["", " ", "A" * 40_000, "r7BXXKkLb8qrSNn05n0qiA==", "é", "a" * 300]),
)


@pytest.mark.parametrize("kind", [Sync, Async], ids=["sync", "async"])
def test_no_header_combination_escapes(kind: type[Sync], wafer: WaferAuth, settings: Any) -> None:
    settings.WAFER_PROTECT = ["/api/"]
    client = kind()

    @hypothesis.settings(max_examples=100, deadline=None)
    @hypothesis.given(
        headers=st.dictionaries(st.sampled_from(NAMES), VALUES, max_size=6),
        path=st.sampled_from(["/weapp/login", "/api/thing", "/guarded", "/open"]),
    )
    def check(headers: dict[str, str], path: str) -> None:
        # as a server hands them over: the UTF-8 bytes of the wire, read as latin-1
        wire = {k: v.encode("utf-8").decode("latin-1") for k, v in headers.items()}
        response = client.get(path, headers=wire)
        assert response.status_code < 500, (path, headers)
        if response.status_code != 200:
            body = response.json()
            assert body[MAGIC_ID] == 1 and body["code"] != 0

    check()
