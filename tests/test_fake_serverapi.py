"""The fake WeChat's access_token endpoints and token-taking APIs, over real HTTP."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from wafer_py.config import DEMO_APP_SECRET, DEMO_APPID
from wafer_py.crypto import hmac_signature
from wafer_py.fakewechat import FakeWeChat

CREDENTIALS = {"grant_type": "client_credential", "appid": DEMO_APPID, "secret": DEMO_APP_SECRET}


class WeChat:
    """Raw calls to the fake, as any HTTP client would make them."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.http = requests.Session()

    def get(self, path: str, **params: Any) -> dict[str, Any]:
        response = self.http.get(self.url + path, params=params, timeout=10)
        assert response.status_code == 200  # WeChat answers errors with 200 too
        body: dict[str, Any] = response.json()
        return body

    def post(
        self, path: str, body: Any = None, raw: bytes | None = None, **params: Any
    ) -> dict[str, Any]:
        response = self.http.post(self.url + path, params=params, json=body, data=raw, timeout=10)
        assert response.status_code == 200
        answer: dict[str, Any] = response.json()
        return answer

    def token(self, **changes: Any) -> dict[str, Any]:
        return self.get("/cgi-bin/token", **{**CREDENTIALS, **changes})

    def stable(self, force: bool | None = None, **changes: Any) -> dict[str, Any]:
        body: dict[str, Any] = {**CREDENTIALS, **changes}
        if force is not None:
            body["force_refresh"] = force
        return self.post("/cgi-bin/stable_token", body)

    def check(
        self, token: str, openid: str, session_key: str, sig_method: str = "hmac_sha256"
    ) -> dict[str, Any]:
        return self.get(
            "/wxa/checksession",
            access_token=token,
            openid=openid,
            signature=hmac_signature(session_key, ""),
            sig_method=sig_method,
        )


@pytest.fixture
def wechat(fake_server: Any) -> WeChat:
    return WeChat(fake_server.url)


def errcode(body: dict[str, Any]) -> int:
    assert " rid: " in body.get("errmsg", "")
    return int(body["errcode"])


# ------------------------------------------------------------------ /cgi-bin/token


def test_token_rotation_keeps_the_previous_token_five_minutes(
    wechat: WeChat, fake: FakeWeChat
) -> None:
    first = wechat.token()
    assert first["expires_in"] == 7200 and len(first["access_token"]) > 100
    openid = fake.login(user="alice")["openid"]
    key = fake.session_key_of(DEMO_APPID, openid)
    second = wechat.token()["access_token"]
    assert second != first["access_token"]
    fake.advance(299)
    assert wechat.check(first["access_token"], openid, key)["errcode"] == 0
    fake.advance(2)
    assert errcode(wechat.check(first["access_token"], openid, key)) == 40001
    assert wechat.check(second, openid, key)["errcode"] == 0
    fake.advance(7200)
    assert errcode(wechat.check(second, openid, key)) == 42001


def test_token_checks_credentials(wechat: WeChat) -> None:
    assert errcode(wechat.token(secret="nope")) == 40125
    assert errcode(wechat.token(appid="wxunknown")) == 40013
    assert errcode(wechat.token(grant_type="authorization_code")) == 40002
    assert (
        errcode(wechat.get("/cgi-bin/token", grant_type="client_credential", appid=DEMO_APPID))
        == 41004
    )


def test_token_daily_quota(wechat: WeChat, fake: FakeWeChat) -> None:
    fake.server_api.tokens.limits.per_day["/cgi-bin/token"] = 3
    assert all("access_token" in wechat.token() for _ in range(3))
    assert errcode(wechat.token()) == 45009
    assert fake.server_api.tokens.used_today(DEMO_APPID, "/cgi-bin/token") == 4
    fake.advance(86400)  # the next day
    assert "access_token" in wechat.token()


# ----------------------------------------------------------- /cgi-bin/stable_token


def test_stable_token_is_the_same_until_five_minutes_before_expiry(
    wechat: WeChat, fake: FakeWeChat
) -> None:
    first = wechat.stable()
    assert first["expires_in"] == 7200
    fake.advance(1000)
    again = wechat.stable(force=False)
    assert again == {"access_token": first["access_token"], "expires_in": 6200}
    fake.advance(6200 - 300)  # 300 s left: rotated
    rotated = wechat.stable()
    assert rotated["access_token"] != first["access_token"]
    assert rotated["expires_in"] == 7200
    # The old one lives out its last minutes.
    openid = fake.login()["openid"]
    key = fake.session_key_of(DEMO_APPID, openid)
    assert wechat.check(first["access_token"], openid, key)["errcode"] == 0
    fake.advance(300)
    assert errcode(wechat.check(first["access_token"], openid, key)) == 42001


def test_stable_token_force_refresh(wechat: WeChat, fake: FakeWeChat) -> None:
    openid = fake.login()["openid"]
    key = fake.session_key_of(DEMO_APPID, openid)
    old = wechat.stable()["access_token"]
    new = wechat.stable(force=True)["access_token"]
    assert new != old
    assert errcode(wechat.check(old, openid, key)) == 40001  # retired at once
    fake.advance(10)
    assert wechat.stable(force=True)["access_token"] == new  # < 30 s apart: no refresh
    fake.server_api.tokens.limits.force_per_day = 2
    fake.advance(31)
    newer = wechat.stable(force=True)["access_token"]
    assert newer != new
    fake.advance(31)
    assert errcode(wechat.stable(force=True)) == 45009  # 2 forced refreshes a day


def test_stable_token_wants_a_json_post(wechat: WeChat) -> None:
    assert errcode(wechat.get("/cgi-bin/stable_token", **CREDENTIALS)) == 43002
    assert errcode(wechat.post("/cgi-bin/stable_token", raw=b"grant_type=x")) == 47001
    assert errcode(wechat.stable(force="yes")) == 47001  # type: ignore[arg-type]
    assert errcode(wechat.stable(secret="nope")) == 40125


def test_stable_and_classic_tokens_are_isolated(wechat: WeChat, fake: FakeWeChat) -> None:
    openid = fake.login()["openid"]
    key = fake.session_key_of(DEMO_APPID, openid)
    stable = wechat.stable()["access_token"]
    classic = wechat.token()["access_token"]
    fake.advance(400)
    wechat.token()  # retires the classic one after 5 minutes, not the stable one
    wechat.stable(force=True)  # retires the stable one, not the classic one
    fake.advance(301)
    assert errcode(wechat.check(stable, openid, key)) == 40001
    assert errcode(wechat.check(classic, openid, key)) == 40001
    assert wechat.check(wechat.stable()["access_token"], openid, key)["errcode"] == 0


def test_expire_tokens_control(wechat: WeChat, fake: FakeWeChat, fake_server: Any) -> None:
    openid = fake.login()["openid"]
    key = fake.session_key_of(DEMO_APPID, openid)
    stable = wechat.stable()["access_token"]
    classic = wechat.token()["access_token"]
    answer = requests.post(f"{fake_server.url}/_fake/expire_tokens", json={}, timeout=10)
    assert answer.json() == {"ok": True, "expired": 2}
    assert errcode(wechat.check(stable, openid, key)) == 42001
    assert errcode(wechat.check(classic, openid, key)) == 42001
    fresh = wechat.stable()["access_token"]
    assert fresh != stable
    assert fake.expire_tokens() == 1
    assert fake.calls["/cgi-bin/stable_token"] == 2


def test_tokens_are_checked_before_anything_else(wechat: WeChat, fake: FakeWeChat) -> None:
    openid = fake.login()["openid"]
    key = fake.session_key_of(DEMO_APPID, openid)
    assert errcode(wechat.check("", openid, key)) == 41001
    assert errcode(wechat.check("forged", openid, key)) == 40001
    assert (
        errcode(
            wechat.post("/wxa/business/getuserphonenumber", {"code": "x"}, access_token="forged")
        )
        == 40001
    )


# ------------------------------------------------------------------ phone numbers


def test_phone_number_code(wechat: WeChat, fake: FakeWeChat) -> None:
    token = wechat.stable()["access_token"]
    minted = fake.phone_code(user="alice", phone_number="13800138000")
    assert minted["phoneNumber"] == "13800138000"
    body = wechat.post(
        "/wxa/business/getuserphonenumber", {"code": minted["code"]}, access_token=token
    )
    assert body["errcode"] == 0 and body["errmsg"] == "ok"
    info = body["phone_info"]
    assert info["phoneNumber"] == info["purePhoneNumber"] == "13800138000"
    assert info["countryCode"] == 86  # a number in this API
    assert info["watermark"] == {"timestamp": int(fake.now()), "appid": DEMO_APPID}
    # Single use.
    assert (
        errcode(
            wechat.post(
                "/wxa/business/getuserphonenumber", {"code": minted["code"]}, access_token=token
            )
        )
        == 40029
    )


def test_phone_code_expiry_openid_and_bad_bodies(wechat: WeChat, fake: FakeWeChat) -> None:
    token = wechat.stable()["access_token"]
    path = "/wxa/business/getuserphonenumber"
    old = fake.phone_code(user="bob")["code"]
    fake.advance(301)
    assert errcode(wechat.post(path, {"code": old}, access_token=token)) == 40029
    token = wechat.stable()["access_token"]
    code = fake.phone_code(user="bob")
    other = fake.login(user="carol")["openid"]
    assert (
        errcode(wechat.post(path, {"code": code["code"], "openid": other}, access_token=token))
        == 40003
    )
    assert errcode(wechat.post(path, {"code": "unknown"}, access_token=token)) == 40029
    assert errcode(wechat.post(path, {}, access_token=token)) == 41008
    assert errcode(wechat.post(path, raw=b"{nope", access_token=token)) == 47001
    # The failed attempts did not spend it.
    answer = wechat.post(path, {"code": code["code"], "openid": code["openid"]}, access_token=token)
    assert answer["phone_info"]["purePhoneNumber"] == code["purePhoneNumber"]
    # Each user keeps a stable made-up number; foreign numbers carry their country code.
    assert fake.phone_code(user="bob")["phoneNumber"] == code["phoneNumber"]
    foreign = fake.phone_code(user="dan", phone_number="6505550100", country_code="1")
    assert (foreign["phoneNumber"], foreign["countryCode"]) == ("+16505550100", "1")


def test_phone_code_control_endpoint(fake_server: Any, fake: FakeWeChat) -> None:
    url = f"{fake_server.url}/_fake/phone_code"
    minted = requests.post(
        url, json={"user": "erin", "phoneNumber": "13912345678"}, timeout=10
    ).json()
    assert minted["phoneNumber"] == "13912345678" and minted["code"]
    bad = requests.post(url, json={"phoneNumber": "12ab"}, timeout=10)
    assert bad.status_code == 400 and "phoneNumber" in bad.json()["error"]
    index = requests.get(f"{fake_server.url}/_fake/", timeout=10).json()
    assert "POST /_fake/phone_code" in index["control_endpoints"]
    assert "POST /wxa/business/getuserphonenumber" in index["wechat_endpoints"]


# ------------------------------------------------------------------- session keys


def test_checksession(wechat: WeChat, fake: FakeWeChat) -> None:
    token = wechat.stable()["access_token"]
    openid = fake.login(user="alice")["openid"]
    key = fake.session_key_of(DEMO_APPID, openid)
    assert wechat.check(token, openid, key) == {"errcode": 0, "errmsg": "ok"}
    fake.login(user="alice")  # rotates the key
    assert errcode(wechat.check(token, openid, key)) == 87009
    new_key = fake.session_key_of(DEMO_APPID, openid)
    assert errcode(wechat.check(token, openid, new_key, sig_method="md5")) == 87008
    assert errcode(wechat.check(token, "ounknown", new_key)) == 40003


def test_resetusersessionkey(wechat: WeChat, fake: FakeWeChat) -> None:
    token = wechat.stable()["access_token"]
    openid = fake.login(user="alice")["openid"]
    key = fake.session_key_of(DEMO_APPID, openid)
    body = wechat.get(
        "/wxa/resetusersessionkey",
        access_token=token,
        openid=openid,
        signature=hmac_signature(key, ""),
        sig_method="hmac_sha256",
    )
    assert body["errcode"] == 0 and body["openid"] == openid
    assert body["session_key"] != key and len(body["session_key"]) == 24
    assert errcode(wechat.check(token, openid, key)) == 87009  # the old key, at once
    assert wechat.check(token, openid, body["session_key"])["errcode"] == 0


def test_reset_forgets_tokens_and_phone_codes(wechat: WeChat, fake: FakeWeChat) -> None:
    token = wechat.stable()["access_token"]
    code = fake.phone_code()["code"]
    fake.reset()
    assert fake.calls["/cgi-bin/stable_token"] == 0
    assert (
        errcode(wechat.post("/wxa/business/getuserphonenumber", {"code": code}, access_token=token))
        == 40001
    )
    assert wechat.stable()["access_token"] != token
