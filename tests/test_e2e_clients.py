"""End to end: the real Wafer client SDKs from npm, run in Node, against the example apps.

The v1 SDK (``wafer-client-sdk@0.8.4``) and the v2 SDK (``wafer2-client-sdk@2.1.0``) run in
Node with the ``wx`` shim of ``tests/e2e/wx-shim.js``. ``wx.login`` and ``wx.getUserInfo``
go to the fake WeChat's control API, and ``wx.request`` makes real HTTP requests. The servers
are ``examples/starlette_app`` (uvicorn) and ``examples/flask_app`` (werkzeug's threaded
WSGI server), each on a free port of 127.0.0.1 with a fresh SQLite store, and the fake
WeChat serves ``jscode2session``.

Each test runs the steps of ``tests/e2e/run.js`` one Node process at a time. The client's
storage sits in a JSON file, so one scenario can span several processes. Every test uses its
own WeChat user (named after the test).

Install the SDKs first: ``npm ci --prefix tests/e2e``. Without Node or without the SDKs the
tests are skipped, except with ``CI=true``, where they fail.
"""

from __future__ import annotations

import json
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

# The Wafer-era flow: wx.getUserInfo gave the user's own profile (the fake as WeChat was then).
pytestmark = [pytest.mark.e2e, pytest.mark.real_profiles]

SDK_PACKAGES = {"v1": "wafer-client-sdk", "v2": "wafer2-client-sdk"}


# ------------------------------------------------------------------ the world of one test


@pytest.fixture(params=["v1", "v2"])
def sdk(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def sdk_installed() -> None:
    """Both SDKs are installed under tests/e2e/node_modules (``world`` asks)."""
    for package in SDK_PACKAGES.values():
        require_sdk(package)


# ------------------------------------------------------------------ shared checks


def assert_login_answer(
    world: World, exchange: dict[str, Any], session_key: str, *, with_data: bool
) -> dict[str, Any]:
    """Check one login exchange on the wire; return the parsed answer."""
    header = exchange["header"]
    assert header.get("X-WX-Code"), header
    if with_data:
        assert header.get("X-WX-Encrypted-Data") and header.get("X-WX-IV"), header
    else:
        assert "X-WX-Encrypted-Data" not in header and "X-WX-IV" not in header, header
    return check_login_answer(world, exchange, session_key)


def assert_stored_session(world: World, report: StepReport, session_key: str) -> str:
    """The client stored a session in its SDK's shape; return its skey."""
    stored = report.session
    assert stored, f"the client stored no session: {report!r}"
    if world.sdk == "v1":
        assert set(stored) == {"id", "skey", "userInfo"}, stored
        assert stored["id"] and stored["id"] != stored["skey"]
    else:
        assert set(stored) == {"skey", "userinfo", "time"}, stored
        assert stored["userinfo"]["openId"] == world.openid
    skey = stored["skey"]
    assert isinstance(skey, str) and len(skey) >= 32
    assert skey not in secret_forms(session_key), "the skey is (derived from) the session_key"
    return skey


# ------------------------------------------------------------------ tests


def test_first_login_with_encrypted_data(world: World) -> None:
    """qcloud.login(): wx.login + wx.getUserInfo, the server registers the real profile."""
    calls_before = world.jscode2session_calls()
    report = world.run("login")
    assert report.outcome == "success", report
    openid = world.openid
    session_key = world.session_key()
    nickname = world.default_nickname()

    # the success callback got the profile (v1: its own plaintext; v2: the server's)
    assert report.result["nickName"] == nickname
    if world.sdk == "v2":
        assert report.result["openId"] == openid

    [login] = report.requests
    assert login["url"] == world.server_url + "/weapp/login"
    assert login["method"] == "GET"
    body = assert_login_answer(world, login, session_key, with_data=True)
    assert body["data"]["userinfo"]["nickName"] == nickname
    skey = assert_stored_session(world, report, session_key)
    assert skey == body["session"]["skey"]
    assert world.jscode2session_calls() == calls_before + 1

    user = world.auth.store.get_user(openid)
    assert user is not None and user.nickname == nickname
    [session] = world.auth.store.list_sessions(openid)
    if world.sdk == "v1":
        assert session.id == report.session["id"]

    # the stored session opens /weapp/user; no new login
    again = world.run("request")
    check_success(again, openid, nickname)
    [exchange] = again.requests
    check_credentials(world, exchange, report.session)
    assert again.logins == []
    assert world.jscode2session_calls() == calls_before + 1


@pytest.mark.parametrize("sdk", ["v2"])
def test_code_only_first_login_registers_default_user(world: World) -> None:
    """v2 loginWithCode() for a user never seen: registered with WeChat's default nickname."""
    report = world.run("login_code_only")
    assert report.outcome == "success", report
    openid = world.openid
    session_key = world.session_key()
    assert report.result["nickName"] == DEFAULT_NICKNAME
    assert report.result["openId"] == openid

    [login] = report.requests
    body = assert_login_answer(world, login, session_key, with_data=False)
    assert body["data"]["userinfo"]["nickName"] == DEFAULT_NICKNAME
    assert report.raw["wx"]["userInfo"] == []  # no wx.getUserInfo at all
    assert_stored_session(world, report, session_key)

    user = world.auth.store.get_user(openid)
    assert user is not None and user.nickname == DEFAULT_NICKNAME
    assert len(world.auth.store.list_sessions(openid)) == 1

    check_success(world.run("request"), openid, DEFAULT_NICKNAME)


@pytest.mark.parametrize("sdk", ["v2"])
def test_code_only_request_login_for_new_user(world: World) -> None:
    """v2 request({login: true}) runs loginWithCode first, so a new user is registered."""
    report = world.run("request_login")
    openid = world.openid
    check_success(report, openid, DEFAULT_NICKNAME)
    login, user_request = report.requests
    assert_login_answer(world, login, world.session_key(), with_data=False)
    check_credentials(world, user_request, report.session)
    assert world.jscode2session_calls() == 1
    stored = world.auth.store.get_user(openid)
    assert stored is not None and stored.nickname == DEFAULT_NICKNAME


def test_request_with_login_from_empty_storage(world: World) -> None:
    """request({login: true}) with nothing stored logs in, then sends the request."""
    assert not world.storage.exists()
    report = world.run("request_login")
    openid = world.openid
    session_key = world.session_key()
    # v1 logs in with encrypted data (the real profile); v2 with the code only
    nickname = world.default_nickname() if world.sdk == "v1" else DEFAULT_NICKNAME
    check_success(report, openid, nickname)

    login, user_request = report.requests
    assert login["url"] == world.server_url + "/weapp/login"
    assert user_request["url"] == world.server_url + "/weapp/user"
    assert_login_answer(world, login, session_key, with_data=world.sdk == "v1")
    assert_stored_session(world, report, session_key)
    check_credentials(world, user_request, report.session)
    assert len(report.logins) == 1
    assert world.jscode2session_calls() == 1
    assert len(world.auth.store.list_sessions(openid)) == 1


def test_revoked_session_relogin_and_retry(world: World) -> None:
    """After auth.revoke_user the next request gets the invalid-session answer; the SDK
    logs in again by itself and the retried request succeeds."""
    first = world.run("login")
    assert first.outcome == "success", first
    openid = world.openid
    nickname = world.default_nickname()
    old_skey = first.session["skey"]
    [old_session] = world.auth.store.list_sessions(openid)
    calls_before = world.jscode2session_calls()

    assert world.auth.revoke_user(openid) == 1
    assert world.auth.store.list_sessions(openid) == []

    report = world.run("request")
    # the profile survives a code-only re-login (v2) and is refreshed by v1's full login
    check_success(report, openid, nickname)

    rejected, relogin, retried = report.requests
    assert rejected["url"] == retried["url"] == world.server_url + "/weapp/user"
    assert rejected["header"]["X-WX-Skey"] == old_skey
    assert rejected["statusCode"] == 401
    answer = json.loads(rejected["rawBody"])
    assert answer[MAGIC] == 1
    assert answer["error"] == "ERR_INVALID_SESSION"
    assert answer["code"] == -1
    assert relogin["url"] == world.server_url + "/weapp/login"
    assert len(report.logins) == 1
    assert_login_answer(world, relogin, world.session_key(), with_data=world.sdk == "v1")
    new_skey = assert_stored_session(world, report, world.session_key())
    assert new_skey != old_skey
    check_credentials(world, retried, report.session)
    assert retried["statusCode"] == 200

    # a re-login really happened: WeChat was asked again and there is a new session
    assert world.jscode2session_calls() == calls_before + 1
    [new_session] = world.auth.store.list_sessions(openid)
    assert new_session.id != old_session.id
    if world.sdk == "v1":
        assert report.session["id"] == new_session.id


def test_profile_update_from_encrypted_data(world: World) -> None:
    """The seed flow: a request with the session and fresh encrypted user info (no new
    wx.login) updates the stored profile before the route runs."""
    first = world.run("login")
    assert first.outcome == "success", first
    openid = world.openid
    old_nickname = world.default_nickname()
    user = world.auth.store.get_user(openid)
    assert user is not None and user.nickname == old_nickname
    calls_before = world.jscode2session_calls()

    new_nickname = f"Seeded 种子 {world.sdk}"
    report = world.run("seed", profile={"nickName": new_nickname, "city": "Shenzhen"})
    info = check_success(report, openid, new_nickname)
    assert info["city"] == "Shenzhen"
    assert report.logins == []  # fresh user info, but no new wx.login
    [exchange] = report.requests
    assert exchange["header"]["X-WX-Encrypted-Data"] and exchange["header"]["X-WX-IV"]
    check_credentials(world, exchange, first.session)
    assert report.session == first.session  # same session, nothing re-stored

    user = world.auth.store.get_user(openid)
    assert user is not None
    assert user.nickname == new_nickname
    assert user.profile["city"] == "Shenzhen"
    assert world.jscode2session_calls() == calls_before
    assert len(world.auth.store.list_sessions(openid)) == 1

    # a plain request afterwards sees the new profile as well
    check_success(world.run("request"), openid, new_nickname)


@pytest.mark.parametrize("sdk", ["v1"])
def test_v1_login_trusts_check_session(world: World) -> None:
    """v1 login() with a stored session asks only wx.checkSession (no server round trip);
    when wx.checkSession fails it drops the session and logs in with encrypted data again."""
    first = world.run("login")
    assert first.outcome == "success", first
    openid = world.openid

    cached = world.run("login")
    assert cached.outcome == "success", cached
    assert cached.requests == [] and cached.logins == []
    assert cached.raw["wx"]["checkSession"] == ["ok"]
    assert cached.session == first.session
    assert world.jscode2session_calls() == 1

    fresh = world.run("login", check_session_fails=True)
    assert fresh.outcome == "success", fresh
    assert fresh.raw["wx"]["checkSession"] == ["fail"]
    [login] = fresh.requests
    assert_login_answer(world, login, world.session_key(), with_data=True)
    assert fresh.session["id"] != first.session["id"]
    assert world.jscode2session_calls() == 2
    # the old session stays valid until it expires or is revoked (several per user)
    assert {s.id for s in world.auth.store.list_sessions(openid)} == {
        first.session["id"],
        fresh.session["id"],
    }


def test_stale_encrypted_data_is_refused_without_relogin(world: World) -> None:
    """Seed data encrypted under a session_key the server never saw (a later wx.login
    rotated it) is refused with a non-session error: no re-login, the profile is kept."""
    first = world.run("login")
    assert first.outcome == "success", first
    openid = world.openid
    nickname = world.default_nickname()
    world.fake.login(DEMO_APPID, user=world.user)  # a wx.login the server never hears of
    calls_before = world.jscode2session_calls()

    report = world.run("seed", profile={"nickName": "Never stored"})
    [exchange] = report.requests  # no retry, no login
    assert report.logins == []
    assert exchange["statusCode"] == 422
    answer = json.loads(exchange["rawBody"])
    assert answer[MAGIC] == 1
    assert answer["error"] == "ERR_CHECK_LOGIN_FAILED"
    assert answer["reason"] == "stale_session_key"
    assert answer["code"] != -1
    if world.sdk == "v1":
        # v1 treats any answer with the magic key as an auth failure and drops its session
        assert report.outcome == "fail", report
        assert report.error["type"] == "ERR_CHECK_LOGIN_FAILED"
        assert report.session is None
    else:
        assert report.outcome == "success", report
        assert report.result["statusCode"] == 422
        assert report.session == first.session

    user = world.auth.store.get_user(openid)
    assert user is not None and user.nickname == nickname
    assert world.jscode2session_calls() == calls_before
    assert len(world.auth.store.list_sessions(openid)) == 1
