"""Phone numbers: the legacy encrypted payload, WaferAuth's helpers, and both example apps
over real HTTP (log in, get a code from the fake, post it, the number is on the user)."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator

import pytest
import requests

from tests.support.servers import serve_example
from wafer_py import Credentials, WaferAuth
from wafer_py.config import DEMO_APPID
from wafer_py.crypto import decrypt_data, encrypt_data
from wafer_py.exceptions import BadBody, MalformedEncryptedData, WeChatError
from wafer_py.fakewechat import FakeWeChat
from wafer_py.protocol import MAGIC_ID
from wafer_py.wechat.phone import PhoneNumber, mask_phone, phone_code_from_body

# A fixed vector: key b"0123456789abcdef", IV b"fedcba9876543210", and WeChat's legacy
# phone payload with a fixed watermark. The ciphertext was checked against
# `openssl enc -aes-128-cbc -K 30313233343536373839616263646566 -iv 6665...3130`.
VECTOR_KEY = "MDEyMzQ1Njc4OWFiY2RlZg=="
VECTOR_IV = "ZmVkY2JhOTg3NjU0MzIxMA=="
VECTOR_PAYLOAD = {
    "phoneNumber": "13800138000",
    "purePhoneNumber": "13800138000",
    "countryCode": "86",
}
VECTOR_DATA = (
    "/zKksLWsmvxbw65eoGVnlJgByfhVA3B7OucVR9YfnROXMeht7O4jvVTLC1qQtIadUy968xbYGyl5DVVqCqfSa/"
    "eI3sT08QkpS/hFcLxHLqPVRUBMYmEZWI8/yOPwMCIkZAlNcgUXWR+8anDzPWXCKFGZ/R7zZ0Kg1DYAW4RZy55R5"
    "97wMePLCgBCBT+Txpr6HMB/hqrGwVUwQJQ7OF4E/A=="
)


def test_legacy_phone_payload_vector() -> None:
    data, iv = encrypt_data(
        VECTOR_KEY,
        VECTOR_PAYLOAD,
        appid=DEMO_APPID,
        timestamp=1700000000,
        iv=base64.b64decode(VECTOR_IV),
    )
    assert (data, iv) == (VECTOR_DATA, VECTOR_IV)
    plain = decrypt_data(VECTOR_KEY, VECTOR_DATA, VECTOR_IV, appid=DEMO_APPID)
    assert plain == {**VECTOR_PAYLOAD, "watermark": {"timestamp": 1700000000, "appid": DEMO_APPID}}
    phone = PhoneNumber.from_wechat(plain)
    assert phone == PhoneNumber("13800138000", "13800138000", "86")
    assert (phone.e164, phone.to_json()) == ("+8613800138000", VECTOR_PAYLOAD)


def test_phone_number_parsing_and_masking() -> None:
    current = PhoneNumber.from_wechat(
        {"phoneNumber": "+16505550100", "purePhoneNumber": "6505550100", "countryCode": 1}
    )
    assert (current.country_code, current.e164) == ("1", "+16505550100")
    assert repr(current) == "PhoneNumber(phone_number='+16*****0100', country_code='1')"
    assert mask_phone("12345") == "*****"
    for broken in (
        None,
        {},
        {"phoneNumber": "1", "purePhoneNumber": "1"},
        {"phoneNumber": "1", "purePhoneNumber": "1", "countryCode": "8x"},
    ):
        with pytest.raises(WeChatError):
            PhoneNumber.from_wechat(broken)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"code=1",
        b"[1]",
        b'{"code": 5}',
        b'{"code": ""}',
        b'{"code": "a b"}',
        b'{"x": "y"}',
        b"\xff",
    ],
)
def test_phone_code_body_is_checked(body: bytes) -> None:
    with pytest.raises(BadBody):
        phone_code_from_body(body)


def test_phone_code_body() -> None:
    assert phone_code_from_body(b'{"code": "0a1B-_.="}') == "0a1B-_.="


# ------------------------------------------------------------------ WaferAuth


def test_auth_decrypts_stores_and_checks(
    make_auth: Callable[..., WaferAuth], fake: FakeWeChat
) -> None:
    auth = make_auth()
    result = auth.login(fake.login(DEMO_APPID, "alice")["code"])
    who = auth.validate(Credentials(skey=result.skey))
    key = fake.session_key_of(DEMO_APPID, who.openid)
    data, iv = encrypt_data(key, VECTOR_PAYLOAD, appid=DEMO_APPID)
    phone = auth.decrypt_phone_number(who, data, iv)
    assert phone.pure_phone_number == "13800138000"
    assert auth.store.get_user(who.openid).phone is None  # type: ignore[union-attr]
    who = auth.set_phone_number(who, phone)
    assert who.user.phone == "+8613800138000"
    assert "13800138000" not in repr(who.user)
    data, iv = encrypt_data(key, {"nickName": "no phone here"}, appid=DEMO_APPID)
    with pytest.raises(MalformedEncryptedData):
        auth.decrypt_phone_number(who, data, iv)
    assert auth.check_session_key(who) is True
    fake.login(DEMO_APPID, "alice")  # a later wx.login rotates the key at WeChat
    assert auth.check_session_key(who) is False
    assert auth.set_phone_number(who, None).user.phone is None


# ---------------------------------------------------- both examples over HTTP


@pytest.fixture(params=["starlette", "flask"])
def served(
    request: pytest.FixtureRequest, make_auth: Callable[..., WaferAuth]
) -> Iterator[tuple[str, WaferAuth]]:
    auth = make_auth()
    with serve_example(str(request.param), auth) as url:
        yield url, auth


def test_phone_number_end_to_end(served: tuple[str, WaferAuth], fake: FakeWeChat) -> None:
    base, auth = served
    code = fake.login(DEMO_APPID, "alice")
    login = requests.get(f"{base}/weapp/login", headers={"X-WX-Code": code["code"]}, timeout=10)
    skey = login.json()["data"]["skey"]

    phone_code = fake.phone_code(DEMO_APPID, "alice", phone_number="13800138000")["code"]
    answer = requests.post(
        f"{base}/weapp/phone", json={"code": phone_code}, headers={"X-WX-Skey": skey}, timeout=10
    )
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"code": 0, "data": {"phoneNumber": "13800138000"}}
    stored = auth.store.get_user(code["openid"])
    assert stored is not None and stored.phone == "+8613800138000"

    # The number stays out of the login answer and the user info.
    again = requests.get(
        f"{base}/weapp/login",
        timeout=10,
        headers={"X-WX-Code": fake.login(DEMO_APPID, "alice")["code"]},
    )
    user = requests.get(f"{base}/weapp/user", headers={"X-WX-Skey": skey}, timeout=10)
    for text in (again.text, user.text):
        assert "13800138000" not in text

    # The code was spent: WeChat's 40029, answered 400 in the protocol's format.
    reused = requests.post(
        f"{base}/weapp/phone", json={"code": phone_code}, headers={"X-WX-Skey": skey}, timeout=10
    )
    assert reused.status_code == 400
    body = reused.json()
    assert (body[MAGIC_ID], body["reason"], body["code"]) == (1, "invalid_code", 400)
    assert "phone number code" in body["message"]
    assert fake.calls["/wxa/business/getuserphonenumber"] == 2
    assert fake.calls["/cgi-bin/stable_token"] == 1


@pytest.mark.parametrize(
    ("payload", "status", "reason"),
    [
        (b"not json", 400, "bad_body"),
        (b'{"code": 12}', 400, "bad_body"),
        (b"{}", 400, "bad_body"),
        (b'{"code": "' + b"x" * 300 + b'"}', 400, "bad_body"),
        (b'{"code": "never-minted"}', 400, "invalid_code"),
    ],
)
def test_phone_route_bad_input(
    served: tuple[str, WaferAuth], fake: FakeWeChat, payload: bytes, status: int, reason: str
) -> None:
    base, auth = served
    code = fake.login(DEMO_APPID, "bob")
    skey = requests.get(
        f"{base}/weapp/login", headers={"X-WX-Code": code["code"]}, timeout=10
    ).json()["data"]["skey"]
    answer = requests.post(
        f"{base}/weapp/phone",
        data=payload,
        timeout=10,
        headers={"X-WX-Skey": skey, "Content-Type": "application/json"},
    )
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert (body[MAGIC_ID], body["reason"]) == (1, reason)
    stored = auth.store.get_user(code["openid"])
    assert stored is not None and stored.phone is None


def test_phone_route_needs_a_session(served: tuple[str, WaferAuth], fake: FakeWeChat) -> None:
    base, _ = served
    code = fake.phone_code(DEMO_APPID, "carol")["code"]
    answer = requests.post(f"{base}/weapp/phone", json={"code": code}, timeout=10)
    assert answer.status_code == 401
    assert answer.json()["error"] == "ERR_INVALID_SESSION"
    assert fake.calls["/wxa/business/getuserphonenumber"] == 0
