"""Any header values at all: the protocol answers 4xx or passes the request on, never raises."""

from __future__ import annotations

import string
from collections.abc import Iterator

import hypothesis
import pytest

from wafer_py import WaferAuth, WaferConfig
from wafer_py.config import DEMO_APPID
from wafer_py.fakewechat import FakeWeChat
from wafer_py.protocol import (
    WAFER_HEADERS,
    RequestState,
    WaferProtocol,
    WaferResponse,
    path_matcher,
)

st = hypothesis.strategies

NAMES = sorted(WAFER_HEADERS)  # every header the protocol reads
VALUES = st.one_of(
    st.text(max_size=60),
    st.text(alphabet=string.ascii_letters + string.digits + "+/=", max_size=80),
    st.sampled_from(["", " ", "A" * 40_000, "r7BXXKkLb8qrSNn05n0qiA==", "\x00", "é", "a" * 300]),
)


@pytest.fixture(scope="module")
def protocol() -> Iterator[WaferProtocol]:
    fake = FakeWeChat()
    with fake.serve() as server:
        auth = WaferAuth(
            WaferConfig(
                api_base=server.url,
                fake_wechat=True,
                store_url="memory://",
                secret_keys=("fuzz-test-secret-key-000000000000",),
            )
        )
        auth.login(fake.login(DEMO_APPID, "fuzz")["code"])  # some stored state to protect
        yield WaferProtocol(auth, path_matcher(["/api/"]))
        auth.close()


@hypothesis.settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[hypothesis.HealthCheck.function_scoped_fixture],
)
@hypothesis.given(
    headers=st.dictionaries(st.sampled_from(NAMES), VALUES, max_size=6), login=st.booleans()
)
def test_no_header_combination_escapes(
    headers: dict[str, str], login: bool, protocol: WaferProtocol
) -> None:
    outcome = protocol.handle("/weapp/login" if login else "/api/x", headers)
    if isinstance(outcome, WaferResponse):
        assert 200 <= outcome.status < 500
        assert outcome.status == 200 or outcome.body["code"] != 0
        assert outcome.content.startswith(b"{")
    else:
        assert isinstance(outcome, RequestState)
