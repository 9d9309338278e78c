"""Both example apps over real HTTP: login, validation, the seed flow and bad input.

Every bad request must get a 4xx with a protocol error body (never a 500), and leave
what is stored exactly as it was.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from tests.support.servers import serve_example
from wafer_py import WaferAuth
from wafer_py.config import DEMO_APPID
from wafer_py.crypto import encrypt_data
from wafer_py.fakewechat import FakeWeChat
from wafer_py.protocol import MAGIC_ID


@pytest.fixture
def auth(make_auth: Callable[..., WaferAuth]) -> WaferAuth:
    return make_auth()


@pytest.fixture
def base(framework: str, auth: WaferAuth) -> Iterator[str]:
    with serve_example(framework, auth) as url:
        yield url


def login(base: str, fake: FakeWeChat, user: str = "alice", **headers: str) -> requests.Response:
    code = fake.login(DEMO_APPID, user)["code"]
    return requests.get(f"{base}/weapp/login", headers={"X-WX-Code": code, **headers}, timeout=10)


def snapshot(auth: WaferAuth, *openids: str) -> list[Any]:
    """Everything stored about these users: their records and all their sessions."""
    return [(auth.store.get_user(o), auth.store.list_sessions(o)) for o in openids]


def assert_protocol_error(
    response: requests.Response, status: int, error: str, reason: str | None = None
) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    assert body[MAGIC_ID] == 1
    assert body["error"] == error
    assert isinstance(body["message"], str) and body["message"]
    if reason is not None:
        assert body["reason"] == reason
    return body


# --------------------------------------------------------------------------- login


def test_code_only_login_registers_a_new_user(base: str, fake: FakeWeChat, auth: WaferAuth) -> None:
    response = login(base, fake, "newcomer")
    assert response.status_code == 200
    body = response.json()
    openid = fake.login(DEMO_APPID, "newcomer", rotate=False)["openid"]
    # v1 reads the magic key and session; v2 reads code and data.
    assert body[MAGIC_ID] == 1
    assert set(body["session"]) == {"id", "skey"}
    assert body["code"] == 0
    assert body["data"]["skey"] == body["session"]["skey"]
    assert body["data"]["userinfo"]["openId"] == openid
    assert body["data"]["userinfo"]["nickName"] == auth.config.default_nickname
    assert body["data"]["userinfo"]["avatarUrl"] == auth.config.default_avatar
    assert isinstance(body["data"]["time"], int)
    # The session_key never leaves the server, and the skey is not stored in the clear.
    session_key = fake.session_key_of(DEMO_APPID, openid)
    assert session_key not in response.text
    (session,) = auth.store.list_sessions(openid)
    assert body["session"]["skey"] not in (session.skey_hash, session.sealed_session_key)
    assert session_key not in session.sealed_session_key


def test_login_with_encrypted_data_stores_the_profile(
    base: str, fake: FakeWeChat, auth: WaferAuth
) -> None:
    code = fake.login(DEMO_APPID, "bea")
    info = fake.user_info(DEMO_APPID, "bea", nickName="Béa 微信")
    response = requests.get(
        f"{base}/weapp/login",
        timeout=10,
        headers={
            "X-WX-Code": code["code"],
            "X-WX-Encrypted-Data": info["encryptedData"],
            "X-WX-IV": info["iv"],
        },
    )
    assert response.status_code == 200, response.text
    userinfo = response.json()["data"]["userinfo"]
    assert userinfo["nickName"] == "Béa 微信"
    assert "watermark" not in userinfo
    user = auth.store.get_user(code["openid"])
    assert user is not None and user.profile["nickName"] == "Béa 微信"


def test_several_live_sessions_per_user(base: str, fake: FakeWeChat, auth: WaferAuth) -> None:
    skeys = [login(base, fake, "multi").json()["data"]["skey"] for _ in range(3)]
    for skey in skeys:
        response = requests.get(f"{base}/weapp/user", headers={"X-WX-Skey": skey}, timeout=10)
        assert response.status_code == 200


def test_concurrent_first_logins_all_succeed(base: str, fake: FakeWeChat, auth: WaferAuth) -> None:
    codes = [fake.login(DEMO_APPID, "racer", rotate=False)["code"] for _ in range(12)]
    results: list[requests.Response] = []

    def run(code: str) -> None:
        results.append(requests.get(f"{base}/weapp/login", headers={"X-WX-Code": code}, timeout=20))

    threads = [threading.Thread(target=run, args=(c,)) for c in codes]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r.status_code for r in results] == [200] * 12
    openid = results[0].json()["data"]["userinfo"]["openId"]
    assert len(auth.store.list_sessions(openid)) == 12


def test_any_method_logs_in(base: str, fake: FakeWeChat) -> None:
    code = fake.login(DEMO_APPID, "poster")["code"]
    response = requests.post(
        f"{base}/weapp/login", headers={"X-WX-Code": code}, data=b"ignored", timeout=10
    )
    assert response.status_code == 200


# ---------------------------------------------------------------------- validation


def test_v1_and_v2_credentials(base: str, fake: FakeWeChat) -> None:
    body = login(base, fake, "carol").json()
    v1 = requests.get(
        f"{base}/weapp/user",
        timeout=10,
        headers={"X-WX-Id": body["session"]["id"], "X-WX-Skey": body["session"]["skey"]},
    )
    v2 = requests.get(f"{base}/weapp/user", timeout=10, headers={"X-WX-Skey": body["data"]["skey"]})
    for response in (v1, v2):
        assert response.status_code == 200
        data = response.json()
        assert MAGIC_ID not in data and data["code"] == 0
        assert data["data"]["userInfo"]["openId"] == body["data"]["userinfo"]["openId"]


def test_revoked_session_gets_the_invalid_session_answer(
    base: str, fake: FakeWeChat, auth: WaferAuth
) -> None:
    body = login(base, fake, "dave").json()
    openid = body["data"]["userinfo"]["openId"]
    assert auth.revoke_user(openid) == 1
    response = requests.get(
        f"{base}/weapp/user", headers={"X-WX-Skey": body["data"]["skey"]}, timeout=10
    )
    answer = assert_protocol_error(response, 401, "ERR_INVALID_SESSION", "invalid_session")
    assert answer["code"] == -1


def test_logout_revokes_only_this_session(base: str, fake: FakeWeChat, auth: WaferAuth) -> None:
    first = login(base, fake, "erin").json()["data"]["skey"]
    second = login(base, fake, "erin").json()["data"]["skey"]
    response = requests.post(f"{base}/weapp/logout", headers={"X-WX-Skey": first}, timeout=10)
    assert response.status_code == 200, response.text
    assert response.json() == {"code": 0, "data": {"revoked": True}}
    refused = requests.get(f"{base}/weapp/user", headers={"X-WX-Skey": first}, timeout=10)
    assert_protocol_error(refused, 401, "ERR_INVALID_SESSION", "invalid_session")
    again = requests.post(f"{base}/weapp/logout", headers={"X-WX-Skey": first}, timeout=10)
    assert_protocol_error(again, 401, "ERR_INVALID_SESSION", "invalid_session")
    kept = requests.get(f"{base}/weapp/user", headers={"X-WX-Skey": second}, timeout=10)
    assert kept.status_code == 200, kept.text


def test_unprotected_routes_pass_invalid_sessions_through(base: str) -> None:
    response = requests.get(base + "/", headers={"X-WX-Skey": "0" * 48}, timeout=10)
    assert response.status_code == 200 and response.json()["code"] == 0


# ---------------------------------------------------------------------- seed flow


def test_seed_flow_updates_the_profile(base: str, fake: FakeWeChat, auth: WaferAuth) -> None:
    body = login(base, fake, "erin").json()
    info = fake.user_info(DEMO_APPID, "erin", nickName="Erin Updated")
    response = requests.get(
        f"{base}/weapp/user",
        timeout=10,
        headers={
            "X-WX-Skey": body["data"]["skey"],
            "X-WX-Encrypted-Data": info["encryptedData"],
            "X-WX-IV": info["iv"],
        },
    )
    assert response.status_code == 200, response.text
    assert response.json()["data"]["userInfo"]["nickName"] == "Erin Updated"
    user = auth.store.get_user(body["data"]["userinfo"]["openId"])
    assert user is not None and user.nickname == "Erin Updated"


# ---------------------------------------------------------------------- bad input


def _other_app_data(fake: FakeWeChat, user: str) -> dict[str, str]:
    openid = fake.login(DEMO_APPID, user, rotate=False)["openid"]
    key = fake.session_key_of(DEMO_APPID, openid)
    data, iv = encrypt_data(
        key, {"openId": openid, "nickName": "Mallory"}, appid="wxanotherapp000000"
    )
    return {"encryptedData": data, "iv": iv}


LOGIN_CASES: dict[str, tuple[int, str]] = {
    "missing_code": (400, "missing_code"),
    "oversized_code": (431, "header_too_large"),
    "non_ascii_code": (400, "bad_header"),
    "replayed_code": (400, "code_used"),
    "expired_code": (400, "invalid_code"),
    "unknown_code": (400, "invalid_code"),
    "bad_base64": (400, "malformed_encrypted_data"),
    "wrong_iv_length": (400, "malformed_encrypted_data"),
    "garbage_ciphertext": (422, "stale_session_key"),
    "other_appid_watermark": (403, "wrong_appid"),
    "other_users_data": (403, "openid_mismatch"),
    "oversized_data": (431, "header_too_large"),
    "missing_iv": (400, "malformed_encrypted_data"),
}


@pytest.mark.parametrize("case", sorted(LOGIN_CASES))
def test_bad_login_requests(case: str, base: str, fake: FakeWeChat, auth: WaferAuth) -> None:
    # A known user with a stored profile and a live session: nothing of it may change.
    first = fake.login(DEMO_APPID, "victim")
    info = fake.user_info(DEMO_APPID, "victim")
    ok = requests.get(
        f"{base}/weapp/login",
        timeout=10,
        headers={
            "X-WX-Code": first["code"],
            "X-WX-Encrypted-Data": info["encryptedData"],
            "X-WX-IV": info["iv"],
        },
    )
    assert ok.status_code == 200
    before = snapshot(auth, first["openid"])

    code = fake.login(DEMO_APPID, "victim", rotate=False)["code"]
    fresh = fake.user_info(DEMO_APPID, "victim")
    headers: dict[str, str] = {"X-WX-Code": code}
    if case == "missing_code":
        headers = {}
    elif case == "oversized_code":
        headers["X-WX-Code"] = "a" * 5000
    elif case == "non_ascii_code":
        headers["X-WX-Code"] = "c\u00f6de"
    elif case == "replayed_code":
        headers["X-WX-Code"] = first["code"]
    elif case == "expired_code":
        fake.advance(301)
    elif case == "unknown_code":
        headers["X-WX-Code"] = "0" * 32
    elif case == "bad_base64":
        headers.update({"X-WX-Encrypted-Data": "%%%not-base64%%%", "X-WX-IV": fresh["iv"]})
    elif case == "wrong_iv_length":
        headers.update(
            {
                "X-WX-Encrypted-Data": fresh["encryptedData"],
                "X-WX-IV": base64.b64encode(b"short").decode(),
            }
        )
    elif case == "garbage_ciphertext":
        headers.update(
            {"X-WX-Encrypted-Data": base64.b64encode(b"\x00" * 64).decode(), "X-WX-IV": fresh["iv"]}
        )
    elif case == "other_appid_watermark":
        other = _other_app_data(fake, "victim")
        headers.update({"X-WX-Encrypted-Data": other["encryptedData"], "X-WX-IV": other["iv"]})
    elif case == "other_users_data":
        fake.login(DEMO_APPID, "someone-else")
        theirs = fake.user_info(DEMO_APPID, "someone-else")
        openid = first["openid"]
        key = fake.session_key_of(DEMO_APPID, openid)
        plain = json.loads(theirs["rawData"]) | {"openId": "o-someone-else"}
        data, iv = encrypt_data(key, plain, appid=DEMO_APPID)
        headers.update({"X-WX-Encrypted-Data": data, "X-WX-IV": iv})
    elif case == "oversized_data":
        headers.update({"X-WX-Encrypted-Data": "A" * 40_000, "X-WX-IV": fresh["iv"]})
    elif case == "missing_iv":
        headers["X-WX-Encrypted-Data"] = fresh["encryptedData"]

    response = requests.get(f"{base}/weapp/login", headers=headers, timeout=10)
    status, reason = LOGIN_CASES[case]
    answer = assert_protocol_error(response, status, "ERR_LOGIN_FAILED", reason)
    assert fake.session_key_of(DEMO_APPID, first["openid"]) not in response.text
    assert answer["code"] == -1
    assert snapshot(auth, first["openid"]) == before


SESSION_CASES = [
    "unknown_skey",
    "malformed_skey",
    "oversized_skey",
    "id_without_skey",
    "wrong_skey_for_id",
    "unknown_id",
    "empty_skey",
]


@pytest.mark.parametrize("case", SESSION_CASES)
def test_bad_session_headers(case: str, base: str, fake: FakeWeChat, auth: WaferAuth) -> None:
    body = login(base, fake, "frank").json()
    openid = body["data"]["userinfo"]["openId"]
    before = snapshot(auth, openid)
    headers = {
        "unknown_skey": {"X-WX-Skey": "ab" * 24},
        "malformed_skey": {"X-WX-Skey": "not a skey; drop table"},
        "oversized_skey": {"X-WX-Skey": "a" * 4000},
        "id_without_skey": {"X-WX-Id": body["session"]["id"]},
        "wrong_skey_for_id": {"X-WX-Id": body["session"]["id"], "X-WX-Skey": "cd" * 24},
        "unknown_id": {"X-WX-Id": "ef" * 16, "X-WX-Skey": body["session"]["skey"]},
        "empty_skey": {"X-WX-Skey": ""},
    }[case]
    response = requests.get(f"{base}/weapp/user", headers=headers, timeout=10)
    reason = "missing_session" if case == "empty_skey" else None
    answer = assert_protocol_error(response, 401, "ERR_INVALID_SESSION", reason)
    assert answer["code"] == -1
    assert snapshot(auth, openid) == before


SEED_CASES: dict[str, tuple[int, str]] = {
    "bad_base64": (400, "malformed_encrypted_data"),
    "wrong_iv_length": (400, "malformed_encrypted_data"),
    "garbage_ciphertext": (422, "stale_session_key"),
    "stale_session_key": (422, "stale_session_key"),
    "other_appid_watermark": (403, "wrong_appid"),
    "oversized_data": (431, "header_too_large"),
    "missing_iv": (400, "malformed_encrypted_data"),
}


@pytest.mark.parametrize("case", sorted(SEED_CASES))
def test_bad_seed_flow(case: str, base: str, fake: FakeWeChat, auth: WaferAuth) -> None:
    body = login(base, fake, "gina").json()
    openid = body["data"]["userinfo"]["openId"]
    before = snapshot(auth, openid)
    fresh = fake.user_info(DEMO_APPID, "gina", nickName="Should Not Stick")
    extra = {
        "bad_base64": {"X-WX-Encrypted-Data": "@@@", "X-WX-IV": fresh["iv"]},
        "wrong_iv_length": {
            "X-WX-Encrypted-Data": fresh["encryptedData"],
            "X-WX-IV": base64.b64encode(b"0123456789").decode(),
        },
        "garbage_ciphertext": {
            "X-WX-Encrypted-Data": base64.b64encode(b"\x01" * 48).decode(),
            "X-WX-IV": fresh["iv"],
        },
        "other_appid_watermark": _other_app_data(fake, "gina"),
        "oversized_data": {"X-WX-Encrypted-Data": "A" * 40_000, "X-WX-IV": fresh["iv"]},
        "missing_iv": {"X-WX-Encrypted-Data": fresh["encryptedData"]},
    }.get(case)
    if case == "stale_session_key":
        fake.login(DEMO_APPID, "gina")  # a later wx.login rotates the session_key
        rotated = fake.user_info(DEMO_APPID, "gina", nickName="Should Not Stick")
        extra = {"X-WX-Encrypted-Data": rotated["encryptedData"], "X-WX-IV": rotated["iv"]}
    assert extra is not None
    if "encryptedData" in extra:
        extra = {"X-WX-Encrypted-Data": extra["encryptedData"], "X-WX-IV": extra["iv"]}
    response = requests.get(
        f"{base}/weapp/user", timeout=10, headers={"X-WX-Skey": body["data"]["skey"], **extra}
    )
    status, reason = SEED_CASES[case]
    answer = assert_protocol_error(response, status, "ERR_CHECK_LOGIN_FAILED", reason)
    assert answer["code"] == status  # never -1: a re-login cannot fix this data
    assert snapshot(auth, openid) == before


# ------------------------------------------------------------------ WeChat errors


@pytest.mark.parametrize(
    ("errcode", "status", "reason"),
    [
        (-1, 503, "wechat_busy"),
        (45011, 429, "rate_limited"),
        (40226, 403, "code_blocked"),
        (40013, 502, "invalid_appid"),
    ],
)
def test_wechat_errors(errcode: int, status: int, reason: str, base: str, fake: FakeWeChat) -> None:
    fake.inject("/sns/jscode2session", errcode)
    response = login(base, fake, "henry")
    assert_protocol_error(response, status, "ERR_LOGIN_FAILED", reason)
    assert login(base, fake, "henry").status_code == 200  # the injection was used up


def test_wechat_unreachable(
    framework: str, make_auth: Callable[..., WaferAuth], fake: FakeWeChat
) -> None:
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}"
    auth = make_auth()
    auth.wechat.api_base = dead
    with serve_example(framework, auth) as base:
        response = login(base, fake, "ivan")
    assert_protocol_error(response, 503, "ERR_LOGIN_FAILED", "wechat_unavailable")
