"""The WeChat client against the fake: errcode mapping, retries, the token retry, async."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from requests.adapters import HTTPAdapter

from wafer_py.config import DEMO_APP_SECRET, DEMO_APPID
from wafer_py.exceptions import (
    AccessTokenExpired,
    CodeAlreadyUsed,
    DailyQuotaExceeded,
    InvalidAccessToken,
    InvalidCode,
    InvalidSignature,
    MissingParameter,
    RateLimited,
    WeChatBusy,
    WeChatUnavailable,
    wechat_error,
)
from wafer_py.fakewechat import FakeWeChat
from wafer_py.stores import MemoryStore
from wafer_py.wechat import WeChatClient
from wafer_py.wechat.aio import AsyncWeChatAPI, AsyncWeChatClient
from wafer_py.wechat.api import CHECK_SESSION, PHONE_NUMBER, RESET_SESSION_KEY, WeChatAPI
from wafer_py.wechat.phone import PhoneNumber
from wafer_py.wechat.tokens import AccessTokenCache

STABLE = "/cgi-bin/stable_token"


@pytest.fixture
def client(fake_server: Any) -> Iterator[WeChatClient]:
    made = WeChatClient(DEMO_APPID, DEMO_APP_SECRET, api_base=fake_server.url, backoff=0.01)
    yield made
    made.close()


@pytest.fixture
def api(client: WeChatClient) -> WeChatAPI:
    return WeChatAPI(client, AccessTokenCache(MemoryStore(), client))


def user(fake: FakeWeChat, name: str = "alice") -> tuple[str, str]:
    openid = fake.login(user=name)["openid"]
    return openid, fake.session_key_of(DEMO_APPID, openid)


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        (40001, InvalidAccessToken),
        (40014, InvalidAccessToken),
        (42001, AccessTokenExpired),
        (45009, DailyQuotaExceeded),
        (45011, RateLimited),
        (87009, InvalidSignature),
        (41001, MissingParameter),
        (47001, MissingParameter),
        ("-1", WeChatBusy),
        (40029, InvalidCode),
        (40163, CodeAlreadyUsed),
    ],
)
def test_errcodes_map_to_named_errors(code: Any, cls: type[Exception]) -> None:
    assert type(wechat_error(code, "x rid: 1")) is cls


# ------------------------------------------------------------------- the APIs


def test_fetch_access_token_both_ways(client: WeChatClient, fake: FakeWeChat) -> None:
    stable = client.fetch_access_token()
    assert stable.expires_in == 7200
    assert client.fetch_access_token().access_token == stable.access_token
    assert client.fetch_access_token(force_refresh=True).access_token != stable.access_token
    classic = client.fetch_access_token(stable=False)
    assert classic.access_token != stable.access_token
    assert (fake.calls[STABLE], fake.calls["/cgi-bin/token"]) == (3, 1)


def test_phone_number(api: WeChatAPI, fake: FakeWeChat) -> None:
    minted = fake.phone_code(user="alice", phone_number="13800138000")
    phone = api.get_phone_number(minted["code"], openid=minted["openid"])
    assert phone == PhoneNumber("13800138000", "13800138000", "86")
    assert phone.e164 == "+8613800138000"
    assert "13800138000" not in repr(phone)
    with pytest.raises(InvalidCode, match="phone number code"):
        api.get_phone_number(minted["code"])


def test_session_key_check_and_reset(api: WeChatAPI, fake: FakeWeChat) -> None:
    openid, key = user(fake)
    assert api.check_session_key(openid, key) is True
    new_key = api.reset_session_key(openid, key)
    assert new_key == fake.session_key_of(DEMO_APPID, openid)
    assert api.check_session_key(openid, key) is False
    assert api.check_session_key(openid, new_key) is True
    with pytest.raises(InvalidSignature):
        api.reset_session_key(openid, key)


# ------------------------------------------------------------ rejected tokens


def test_rejected_token_is_refreshed_once_and_the_call_retried(
    api: WeChatAPI, fake: FakeWeChat
) -> None:
    minted = fake.phone_code()
    api.access_token()
    fake.inject(PHONE_NUMBER, 40001)
    assert api.get_phone_number(minted["code"]).pure_phone_number == minted["purePhoneNumber"]
    assert fake.calls[PHONE_NUMBER] == 2
    # stable_token handed back the refused token, so one forced refresh followed.
    assert fake.calls[STABLE] == 3


def test_expired_token_is_refreshed_without_forcing(api: WeChatAPI, fake: FakeWeChat) -> None:
    openid, key = user(fake)
    first = api.access_token()
    fake.expire_tokens()  # 42001 from now on
    assert api.check_session_key(openid, key) is True
    assert api.access_token() != first
    assert (fake.calls[CHECK_SESSION], fake.calls[STABLE]) == (2, 2)


def test_a_second_rejection_surfaces_no_loop(api: WeChatAPI, fake: FakeWeChat) -> None:
    openid, key = user(fake)
    api.access_token()
    fake.inject(CHECK_SESSION, 40001, times=5)
    with pytest.raises(InvalidAccessToken):
        api.check_session_key(openid, key)
    assert fake.calls[CHECK_SESSION] == 2
    assert fake.calls[STABLE] == 3


# -------------------------------------------------------------------- retries


def test_busy_is_retried_for_reads_with_a_bound(api: WeChatAPI, fake: FakeWeChat) -> None:
    openid, key = user(fake)
    fake.inject(CHECK_SESSION, -1)
    assert api.check_session_key(openid, key) is True
    assert fake.calls[CHECK_SESSION] == 2
    fake.inject(CHECK_SESSION, -1, times=10)
    with pytest.raises(WeChatBusy):
        api.check_session_key(openid, key)
    assert fake.calls[CHECK_SESSION] == 2 + 3  # one try and two retries


def test_busy_is_not_retried_where_a_code_or_key_may_be_spent(
    api: WeChatAPI, client: WeChatClient, fake: FakeWeChat
) -> None:
    openid, key = user(fake)
    fake.inject(PHONE_NUMBER, -1)
    with pytest.raises(WeChatBusy):
        api.get_phone_number(fake.phone_code()["code"])
    fake.inject(RESET_SESSION_KEY, -1)
    with pytest.raises(WeChatBusy):
        api.reset_session_key(openid, key)
    fake.inject("/sns/jscode2session", -1)
    with pytest.raises(WeChatBusy):
        client.code2session(fake.login()["code"])
    assert (
        fake.calls[PHONE_NUMBER],
        fake.calls[RESET_SESSION_KEY],
        fake.calls["/sns/jscode2session"],
    ) == (1, 1, 1)


@pytest.mark.parametrize(("errcode", "cls"), [(45011, RateLimited), (45009, DailyQuotaExceeded)])
def test_rate_limits_are_raised_at_once(
    api: WeChatAPI, fake: FakeWeChat, errcode: int, cls: type[Exception]
) -> None:
    openid, key = user(fake)
    fake.inject(STABLE, errcode)
    with pytest.raises(cls):
        api.check_session_key(openid, key)
    fake.inject(CHECK_SESSION, errcode)
    with pytest.raises(cls):
        api.check_session_key(openid, key)
    assert (fake.calls[STABLE], fake.calls[CHECK_SESSION]) == (2, 1)


class FlakyAdapter(HTTPAdapter):
    """Fails the first ``failures`` requests with a connection error, then goes through."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures
        self.sent = 0

    def send(
        self, request: requests.PreparedRequest, *args: Any, **kwargs: Any
    ) -> requests.Response:
        self.sent += 1
        if self.sent <= self.failures:
            raise requests.ConnectionError(f"reset while sending {request.url}")
        return super().send(request, *args, **kwargs)


def flaky_client(url: str, failures: int) -> tuple[WeChatClient, FlakyAdapter]:
    adapter = FlakyAdapter(failures)
    session = requests.Session()
    session.mount("http://", adapter)
    return WeChatClient(
        DEMO_APPID, DEMO_APP_SECRET, api_base=url, session=session, backoff=0.01
    ), adapter


def test_network_errors_are_retried_for_token_fetches(fake_server: Any) -> None:
    client, adapter = flaky_client(fake_server.url, failures=2)
    assert client.fetch_access_token().expires_in == 7200
    assert adapter.sent == 3
    client, adapter = flaky_client(fake_server.url, failures=5)
    with pytest.raises(WeChatUnavailable) as caught:
        client.fetch_access_token()
    assert adapter.sent == 3
    assert DEMO_APP_SECRET not in str(caught.value)


def test_network_errors_are_not_retried_for_codes(fake_server: Any, fake: FakeWeChat) -> None:
    client, adapter = flaky_client(fake_server.url, failures=1)
    with pytest.raises(WeChatUnavailable):
        client.code2session(fake.login()["code"])
    assert adapter.sent == 1


# -------------------------------------------------------------------- secrets


def test_secrets_stay_out_of_reprs_logs_and_errors(
    api: WeChatAPI, client: WeChatClient, fake: FakeWeChat, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    openid, key = user(fake)
    client.fetch_access_token(stable=False)
    token = api.access_token()
    fake.inject(CHECK_SESSION, 40001)
    api.check_session_key(openid, key)
    fake.inject(CHECK_SESSION, 40001, times=2)
    with pytest.raises(InvalidAccessToken) as caught:
        api.check_session_key(openid, key)
    fresh = api.access_token()
    assert "GET /wxa/checksession?" in caplog.text  # urllib3 logged the request lines...
    for secret in (DEMO_APP_SECRET, token, fresh, key):
        assert secret not in caplog.text  # ...with the secrets masked
        assert secret not in repr(api) + repr(client) + repr(api.tokens)
        assert secret not in str(caught.value) + repr(caught.value)


# ---------------------------------------------------------------------- async


def test_async_twins(api: WeChatAPI, client: WeChatClient, fake: FakeWeChat) -> None:
    openid, key = user(fake)
    minted = fake.phone_code(phone_number="13800138000")
    aclient, aapi = AsyncWeChatClient(client), AsyncWeChatAPI(api)

    async def main() -> tuple[Any, ...]:
        token, phone, valid = await asyncio.gather(
            aapi.access_token(),
            aapi.get_phone_number(minted["code"]),
            aapi.check_session_key(openid, key),
        )
        fetched = await aclient.fetch_access_token()
        login = await aclient.code2session(fake.login(user="zed")["code"])
        new_key = await aapi.reset_session_key(openid, key)
        return token, phone, valid, fetched, login, new_key

    token, phone, valid, fetched, login, new_key = asyncio.run(main())
    assert token == fetched.access_token == api.access_token()
    assert (phone.phone_number, valid) == ("13800138000", True)
    assert login.openid == fake.login(user="zed", rotate=False)["openid"]
    assert new_key == fake.session_key_of(DEMO_APPID, openid) != key

    async def bad_signature() -> Any:
        return await aapi.call(
            "GET",
            CHECK_SESSION,
            params={"openid": openid, "signature": "0" * 64, "sig_method": "hmac_sha256"},
        )

    with pytest.raises(InvalidSignature):
        asyncio.run(bad_signature())
