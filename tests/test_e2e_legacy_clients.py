"""End to end: the OLDER real Wafer client SDKs from npm, run in Node, against the example apps.

``tests/test_e2e_clients.py`` covers the current SDKs (``wafer-client-sdk@0.8.4`` and
``wafer2-client-sdk@2.1.0``). This file covers the ones published before them, installed
side by side by ``tests/e2e/package.json``:

* ``v1-legacy``: ``qcloud-weapp-client-sdk@0.7.4``. It logs in with ``X-WX-Code`` and
  ``X-WX-Encrypt-Data``: ``wx.getUserInfo``'s 2016 ``encryptData``, AES-128-CBC with
  IV = key and no IV header. The shim asks the fake WeChat for that format.
* ``v2-113``: ``wafer2-client-sdk@1.1.3`` (npm alias ``wafer2-client-sdk-113``). Its
  ``login()`` trusts ``wx.checkSession`` when a session is stored, ``request({login:
  true})`` runs that ``login()``, and ``requestLogin({loginParams: {code, encryptedData,
  iv}})`` logs in with what the app gathered (the ``<button open-type="getUserInfo">``
  flow).
* ``v2-200``: ``wafer2-client-sdk@2.0.0`` (alias ``wafer2-client-sdk-200``). Its login is
  2.1.0's, but its ``request`` differs: ``login: false`` never sends the stored skey, and
  only ``code === -1`` (not HTTP 401 alone) counts as a lost session.

Everything runs over real HTTP: ``tests/e2e/run.js`` drives one SDK step per Node process
(the client's storage is a JSON file, so a scenario spans processes), against
``examples/starlette_app`` and ``examples/flask_app`` with a fresh SQLite store, and the
fake WeChat serves ``jscode2session``. Each test has its own WeChat user.

Install the SDKs first: ``npm ci --prefix tests/e2e``. Without Node or without the SDKs the
end-to-end tests are skipped, except with ``CI=true``, where they fail. The first tests,
about the fake's legacy ``getUserInfo``, need neither.
"""

from __future__ import annotations

import base64
import hashlib
import json
import urllib.error
import urllib.request
from typing import Any

import pytest

from tests.support.e2e import (
    MAGIC,
    StepReport,
    World,
    check_credentials,
    check_login_answer,
    check_success,
    require_sdk,
    secret_forms,
)
from wafer_py.config import DEFAULT_NICKNAME, DEMO_APPID
from wafer_py.crypto import decrypt_data
from wafer_py.exceptions import StaleSessionKey
from wafer_py.fakewechat import FakeWeChat

# These clients come from the Wafer era, when wx.getUserInfo gave the user's own profile:
# the fake answers as WeChat did then.
pytestmark = pytest.mark.real_profiles

#: run.js sdk name -> (directory under node_modules, the exact version it must hold)
SDKS = {
    "v1-legacy": ("qcloud-weapp-client-sdk", "0.7.4"),
    "v2-113": ("wafer2-client-sdk-113", "1.1.3"),
    "v2-200": ("wafer2-client-sdk-200", "2.0.0"),
}
SESSION_STORAGE_KEY = "weapp_session_" + MAGIC

#: The headers of a login, by kind, exactly as they go on the wire (the shim adds
#: content-type to every wx.request).
LEGACY_LOGIN_HEADERS = {"X-WX-Code", "X-WX-Encrypt-Data", "content-type"}
FULL_LOGIN_HEADERS = {"X-WX-Code", "X-WX-Encrypted-Data", "X-WX-IV", "content-type"}
CODE_ONLY_HEADERS = {"X-WX-Code", "content-type"}


# ------------------------------------------------------------------ the fake's 2016 getUserInfo


def test_fake_legacy_user_info_is_the_2016_format(fake: FakeWeChat) -> None:
    """``legacy=True``: ``encryptData`` only, AES-128-CBC under the current session_key
    with IV = key; the plaintext fields are those of the current format."""
    login = fake.login(DEMO_APPID, user="olga")
    session_key = fake.session_key_of(DEMO_APPID, login["openid"])
    info = fake.user_info(DEMO_APPID, user="olga", legacy=True, nickName="Olga 旧")
    assert set(info) == {"encryptData", "rawData", "signature", "userInfo"}
    assert info["userInfo"]["nickName"] == "Olga 旧"
    assert json.loads(info["rawData"]) == info["userInfo"]
    expected_signature = hashlib.sha1((info["rawData"] + session_key).encode()).hexdigest()
    assert info["signature"] == expected_signature

    payload = decrypt_data(
        session_key, info["encryptData"], None, appid=DEMO_APPID, openid=login["openid"]
    )
    assert payload["openId"] == login["openid"]
    assert payload["nickName"] == "Olga 旧"
    assert payload["watermark"]["appid"] == DEMO_APPID

    # IV = key really: the key given as the IV opens it, another IV does not
    as_iv = decrypt_data(session_key, info["encryptData"], session_key, appid=DEMO_APPID)
    assert as_iv == payload
    zero_iv = base64.b64encode(bytes(16)).decode()
    with pytest.raises(StaleSessionKey):
        decrypt_data(session_key, info["encryptData"], zero_iv, appid=DEMO_APPID)

    # the default stays the current format
    assert set(fake.user_info(DEMO_APPID, user="olga")) == {
        "encryptedData",
        "iv",
        "rawData",
        "signature",
        "userInfo",
    }


def test_fake_legacy_user_info_over_the_control_api(fake: FakeWeChat, fake_server: Any) -> None:
    """``POST /_fake/userinfo`` with ``"legacy": true``; a non-boolean is a 400."""
    login = fake.login(DEMO_APPID, user="pete")
    session_key = fake.session_key_of(DEMO_APPID, login["openid"])

    def post(body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        request = urllib.request.Request(
            fake_server.url + "/_fake/userinfo",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                return answer.status, json.loads(answer.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    status, info = post({"appid": DEMO_APPID, "user": "pete", "legacy": True, "city": "Xi'an"})
    assert status == 200
    assert set(info) == {"encryptData", "rawData", "signature", "userInfo"}
    payload = decrypt_data(session_key, info["encryptData"], None, appid=DEMO_APPID)
    assert payload["city"] == "Xi'an"

    status, answer = post({"appid": DEMO_APPID, "user": "pete", "legacy": "yes"})
    assert status == 400
    assert "legacy" in answer["error"]
    with pytest.raises(ValueError, match="legacy"):
        fake.user_info(DEMO_APPID, user="pete", legacy=1)


# ------------------------------------------------------------------ the world of one test


@pytest.fixture
def sdk_installed(sdk: str) -> None:
    """The test's SDK is installed at its exact version (``world`` asks)."""
    require_sdk(*SDKS[sdk])


def sdks(*names: str) -> pytest.MarkDecorator:
    """Run a test once per SDK in ``names`` (and per framework, through ``world``)."""
    return pytest.mark.parametrize("sdk", names)


e2e = pytest.mark.e2e


# ------------------------------------------------------------------ shared checks


def check_login(
    world: World, exchange: dict[str, Any], headers: set[str], *, nickname: str
) -> dict[str, Any]:
    """One successful login exchange on the wire: what was sent, what came back."""
    assert exchange["url"] == world.server_url + "/weapp/login"
    assert exchange["method"] == "GET"
    sent = exchange["header"]
    assert set(sent) == headers, sent
    session_key = world.session_key()
    # the encrypted user info went out in the SDK's format and opens with this login's key
    if "X-WX-Encrypt-Data" in sent:
        payload = decrypt_data(session_key, sent["X-WX-Encrypt-Data"], None, appid=DEMO_APPID)
    elif "X-WX-Encrypted-Data" in sent:
        payload = decrypt_data(
            session_key, sent["X-WX-Encrypted-Data"], sent["X-WX-IV"], appid=DEMO_APPID
        )
    else:
        payload = None
    if payload is not None:
        assert payload["openId"] == world.openid
        assert payload["nickName"] == nickname

    body = check_login_answer(world, exchange, session_key)
    skey = body["session"]["skey"]
    assert isinstance(skey, str) and len(skey) >= 32
    assert body["session"]["id"] != skey
    assert body["data"]["userinfo"]["nickName"] == nickname
    assert body["session"]["id"] in world.session_ids(world.openid)
    return body


def check_stored(world: World, step: StepReport, answer: dict[str, Any], client_info: Any) -> None:
    """What the SDK stored after the login ``answer``.

    v1 stores ``answer.session`` plus its OWN plaintext userInfo (``client_info``); the v2
    SDKs store ``answer.data`` whole.
    """
    if world.sdk == "v1-legacy":
        assert step.session == {**answer["session"], "userInfo": client_info}
    else:
        assert step.session == answer["data"]
    assert step.raw["storage"] == {SESSION_STORAGE_KEY: step.session}


def check_user_answer(world: World, exchange: dict[str, Any], nickname: str) -> None:
    """A successful /weapp/user exchange for this test's user."""
    assert exchange["url"] == world.server_url + "/weapp/user"
    assert exchange["statusCode"] == 200, exchange
    body = json.loads(exchange["rawBody"])
    assert MAGIC not in body
    assert body["code"] == 0
    assert body["data"]["userInfo"]["openId"] == world.openid
    assert body["data"]["userInfo"]["nickName"] == nickname


def check_session_refused(exchange: dict[str, Any], skey: str | None, reason: str) -> None:
    """/weapp/user refused the request: 401 and the answer both generations act on."""
    assert exchange["statusCode"] == 401, exchange
    if skey is None:
        assert "X-WX-Skey" not in exchange["header"]
    else:
        assert exchange["header"]["X-WX-Skey"] == skey
    body = json.loads(exchange["rawBody"])
    assert body[MAGIC] == 1
    assert body["error"] == "ERR_INVALID_SESSION"
    assert body["reason"] == reason
    assert body["code"] == -1


def full_login_headers(sdk: str) -> set[str]:
    return LEGACY_LOGIN_HEADERS if sdk == "v1-legacy" else FULL_LOGIN_HEADERS


# ------------------------------------------------------------------ every SDK


@e2e
@sdks("v1-legacy", "v2-113", "v2-200")
def test_first_login_with_encrypted_data(world: World) -> None:
    """qcloud.login(): wx.login + wx.getUserInfo, then GET /weapp/login with the user info
    encrypted in the SDK's format; the server registers that profile."""
    nickname = f"老版本 {world.sdk}"
    step = world.run("login", profile={"nickName": nickname, "city": "Guangzhou"})
    assert step.outcome == "success", step
    client_info = world.profile(nickName=nickname, city="Guangzhou")
    if world.sdk == "v1-legacy":
        assert step.result == client_info  # v1 answers with its own plaintext userInfo
    else:
        assert step.result["openId"] == world.openid  # v2 with the server's userinfo
        assert step.result["nickName"] == nickname
    assert step.check_sessions == []  # nothing stored, nothing to check

    [login] = step.requests
    answer = check_login(world, login, full_login_headers(world.sdk), nickname=nickname)
    check_stored(world, step, answer, client_info)
    assert world.jscode2session_calls() == 1

    user = world.auth.store.get_user(world.openid)
    assert user is not None
    assert user.nickname == nickname
    assert user.profile["city"] == "Guangzhou"
    assert world.session_ids(world.openid) == {answer["session"]["id"]}


@e2e
@sdks("v1-legacy", "v2-113", "v2-200")
def test_login_with_a_stored_session(world: World) -> None:
    """A second login(): 0.7.4 and 1.1.3 trust wx.checkSession and skip the server, and
    log in afresh when it fails; 2.0.0 (like 2.1.0) always logs in."""
    first = world.run("login")
    assert first.outcome == "success", first
    nickname = world.profile()["nickName"]

    again = world.run("login")
    assert again.outcome == "success", again
    if world.sdk == "v2-200":
        assert again.check_sessions == []
        [login] = again.requests
        answer = check_login(world, login, FULL_LOGIN_HEADERS, nickname=nickname)
        check_stored(world, again, answer, None)
        assert again.session["skey"] != first.session["skey"]
        assert world.jscode2session_calls() == 2
        return

    assert again.check_sessions == ["ok"]
    assert again.requests == [] and again.logins == []
    assert again.session == first.session
    # the success value is the one stored at the first login
    key = "userInfo" if world.sdk == "v1-legacy" else "userinfo"
    assert again.result == first.session[key]
    assert world.jscode2session_calls() == 1

    fresh = world.run("login", check_session_fails=True)
    assert fresh.outcome == "success", fresh
    assert fresh.check_sessions == ["fail"]
    [login] = fresh.requests
    answer = check_login(world, login, full_login_headers(world.sdk), nickname=nickname)
    check_stored(world, fresh, answer, world.profile())
    assert fresh.session["skey"] != first.session["skey"]
    assert world.jscode2session_calls() == 2
    assert len(world.session_ids(world.openid)) == 2  # the old session is not revoked


@e2e
@sdks("v1-legacy", "v2-113", "v2-200")
def test_request_with_login_from_empty_storage(world: World) -> None:
    """request({login: true}) with nothing stored: a login (0.7.4 and 1.1.3 with encrypted
    data, 2.0.0 with the code only), then the request with the new session. A second
    request({login: true}): 0.7.4 and 1.1.3 reuse the session (wx.checkSession passes),
    2.0.0 logs in again first."""
    assert not world.storage.exists()
    step = world.run("request_login")
    code_only = world.sdk == "v2-200"
    nickname = DEFAULT_NICKNAME if code_only else world.profile()["nickName"]
    check_success(step, world.openid, nickname)

    login, user_request = step.requests
    headers = CODE_ONLY_HEADERS if code_only else full_login_headers(world.sdk)
    answer = check_login(world, login, headers, nickname=nickname)
    check_stored(world, step, answer, world.profile())
    check_credentials(world, user_request, step.session)
    check_user_answer(world, user_request, nickname)
    assert len(step.logins) == 1
    assert world.jscode2session_calls() == 1
    user = world.auth.store.get_user(world.openid)
    assert user is not None and user.nickname == nickname

    again = world.run("request_login")
    check_success(again, world.openid, nickname)
    if code_only:
        relogin, user_request = again.requests
        answer = check_login(world, relogin, CODE_ONLY_HEADERS, nickname=nickname)
        check_stored(world, again, answer, None)
        assert again.session["skey"] != step.session["skey"]
        assert world.jscode2session_calls() == 2
    else:
        [user_request] = again.requests
        assert again.check_sessions == ["ok"] and again.logins == []
        assert again.session == step.session
        assert world.jscode2session_calls() == 1
    check_credentials(world, user_request, again.session)


@e2e
@sdks("v1-legacy", "v2-113")
def test_revoked_session_relogin_and_retry(world: World) -> None:
    """After auth.revoke_user the stored session is refused (401, ERR_INVALID_SESSION,
    code -1); the SDK drops it, logs in again with encrypted data by itself and the
    retried request succeeds with the new session."""
    first = world.run("login")
    assert first.outcome == "success", first
    openid = world.openid
    nickname = world.profile()["nickName"]
    [old_id] = world.session_ids(openid)

    assert world.auth.revoke_user(openid) == 1
    assert world.session_ids(openid) == set()

    step = world.run("request")
    check_success(step, world.openid, nickname)
    rejected, relogin, retried = step.requests
    check_credentials(world, rejected, first.session)
    check_session_refused(rejected, first.session["skey"], "invalid_session")
    # nothing is stored any more, so login() goes straight to wx.login (no checkSession)
    assert step.check_sessions == []
    assert len(step.logins) == 1
    answer = check_login(world, relogin, full_login_headers(world.sdk), nickname=nickname)
    check_stored(world, step, answer, world.profile())
    check_credentials(world, retried, step.session)
    check_user_answer(world, retried, nickname)
    assert step.session["skey"] != first.session["skey"]

    assert world.jscode2session_calls() == 2
    [new_id] = world.session_ids(openid)
    assert new_id != old_id
    assert new_id == answer["session"]["id"]


# ------------------------------------------------------------------ wafer2-client-sdk 1.1.3


@e2e
@sdks("v2-113")
def test_v2_113_request_login_with_login_params(world: World) -> None:
    """requestLogin({loginParams: {code, encryptedData, iv}}) with wx.login first, then
    wx.getUserInfo: the server stores the profile; the SDK stores data and calls success()
    with nothing; the stored skey then opens /weapp/user."""
    nickname = "按钮登录 Button"
    step = world.run("request_login_params", profile={"nickName": nickname, "gender": 2})
    assert step.outcome == "success", step
    assert step.result is None  # requestLogin's success() gets no argument

    [login] = step.requests
    answer = check_login(world, login, FULL_LOGIN_HEADERS, nickname=nickname)
    check_stored(world, step, answer, None)
    assert answer["data"]["userinfo"]["gender"] == 2
    user = world.auth.store.get_user(world.openid)
    assert user is not None
    assert user.nickname == nickname and user.profile["gender"] == 2
    assert world.jscode2session_calls() == 1

    follow = world.run("request")
    check_success(follow, world.openid, nickname)
    [exchange] = follow.requests
    check_credentials(world, exchange, step.session)
    assert follow.logins == []


@e2e
@sdks("v2-113")
@pytest.mark.parametrize("rotate", [False, True], ids=["key-kept", "key-rotated"])
def test_v2_113_request_login_button_order(world: World, rotate: bool) -> None:
    """The quickstart's button flow: the user info (the button's e.detail) comes BEFORE
    wx.login. If wx.login kept the session_key the login succeeds; if it rotated it, the
    data no longer decrypts: the server refuses (ERR_LOGIN_FAILED, stale_session_key,
    code -1, no user, no session), and 1.1.3 fails with ERR_LOGIN_MISSING_SESSION whose
    message is the server's answer verbatim, storing nothing."""
    # the user exists at WeChat (an earlier wx.login), so the button has a key to encrypt with
    world.fake.login(DEMO_APPID, user=world.user)
    step = world.run("request_login_button", rotate=rotate)
    [login] = step.requests
    assert set(login["header"]) == FULL_LOGIN_HEADERS
    nickname = world.profile()["nickName"]

    if not rotate:
        assert step.outcome == "success", step
        answer = check_login(world, login, FULL_LOGIN_HEADERS, nickname=nickname)
        check_stored(world, step, answer, None)
        user = world.auth.store.get_user(world.openid)
        assert user is not None and user.nickname == nickname
        return

    assert step.outcome == "fail", step
    assert login["statusCode"] == 422
    body = json.loads(login["rawBody"])
    assert body == {
        MAGIC: 1,
        "error": "ERR_LOGIN_FAILED",
        "reason": "stale_session_key",
        "message": body["message"],
        "code": -1,
    }
    for secret in secret_forms(world.session_key()):
        assert secret not in login["rawBody"]
    assert step.error["name"] == "LoginError"
    assert step.error["type"] == "ERR_LOGIN_MISSING_SESSION"
    assert json.loads(step.error["message"]) == body
    assert step.session is None
    assert world.auth.store.get_user(world.openid) is None
    assert world.session_ids(world.openid) == set()
    assert world.jscode2session_calls() == 1  # the code was spent


# ------------------------------------------------------------------ wafer2-client-sdk 2.0.0


@e2e
@sdks("v2-200")
def test_v2_200_revoked_session_never_reaches_the_server(world: World) -> None:
    """2.0.0 runs loginWithCode before every request({login: true}), so after a revoke
    the next such request logs in first and carries the NEW skey: the revoked one never
    goes on the wire and there is nothing to retry."""
    first = world.run("login")
    assert first.outcome == "success", first
    openid = world.openid
    nickname = world.profile()["nickName"]
    assert world.auth.revoke_user(openid) == 1

    step = world.run("request_login")
    check_success(step, world.openid, nickname)  # the code-only login keeps the stored profile
    login, user_request = step.requests
    answer = check_login(world, login, CODE_ONLY_HEADERS, nickname=nickname)
    check_stored(world, step, answer, None)
    check_credentials(world, user_request, step.session)
    check_user_answer(world, user_request, nickname)
    assert all(r["header"].get("X-WX-Skey") != first.session["skey"] for r in step.requests)
    assert world.session_ids(openid) == {answer["session"]["id"]}
    assert world.jscode2session_calls() == 2


@e2e
@sdks("v2-200")
def test_v2_200_request_without_login_sends_no_session(world: World) -> None:
    """2.0.0's request({login: false}) never sends the stored skey (only login: true
    adds it). /weapp/user answers 401 missing_session with code -1; the SDK drops its
    session, runs loginWithCode and retries, again without the skey, gets the same answer
    and fails with RequestError(ERR_INVALID_SESSION, "登录态已过期"), storing nothing.
    A client-side bug of 2.0.0 (fixed in 2.1.0): wafer_py answers each request right."""
    first = world.run("login")
    assert first.outcome == "success", first
    openid = world.openid
    nickname = world.profile()["nickName"]

    step = world.run("request")
    assert step.outcome == "fail", step
    assert step.error["name"] == "RequestError"
    assert step.error["type"] == "ERR_INVALID_SESSION"
    assert step.error["message"] == "登录态已过期"
    rejected, relogin, retried = step.requests
    check_session_refused(rejected, None, "missing_session")
    answer = check_login(world, relogin, CODE_ONLY_HEADERS, nickname=nickname)
    check_session_refused(retried, None, "missing_session")
    assert step.session is None  # the second refusal cleared the session just stored
    assert step.raw["storage"] == {}

    # the server opened a session for the code-only login; nobody holds it any more
    assert len(world.session_ids(openid)) == 2
    assert answer["session"]["id"] in world.session_ids(openid)
    assert world.jscode2session_calls() == 2
