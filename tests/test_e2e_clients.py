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

import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import serve_example, skip_or_fail
from wafer_py import WaferAuth
from wafer_py.config import DEFAULT_NICKNAME, DEMO_APPID
from wafer_py.fakewechat import FakeWeChat

pytestmark = pytest.mark.e2e

E2E_DIR = Path(__file__).resolve().parent / "e2e"
RUN_JS = E2E_DIR / "run.js"
SDK_PACKAGES = {"v1": "wafer-client-sdk", "v2": "wafer2-client-sdk"}
MAGIC = "F2C224D4-2BCE-4C64-AF9F-A6D872000D1A"
JSCODE2SESSION = "/sns/jscode2session"
NODE_TIMEOUT = 30.0


# ------------------------------------------------------------------ environment checks


@pytest.fixture(scope="session")
def node() -> str:
    """The node executable, with the two SDKs installed under tests/e2e/node_modules."""
    executable = shutil.which("node")
    if executable is None:
        skip_or_fail("node is not installed; the e2e tests run the client SDKs in Node")
    assert executable is not None
    for package in SDK_PACKAGES.values():
        if not (E2E_DIR / "node_modules" / package / "package.json").is_file():
            skip_or_fail(f"{package} is not installed: run `npm ci --prefix tests/e2e`")
    return executable


# ------------------------------------------------------------------ the world of one test


@dataclass
class StepReport:
    """What one ``run.js`` step printed."""

    raw: dict[str, Any]

    @property
    def outcome(self) -> str:
        return str(self.raw["outcome"])

    @property
    def result(self) -> Any:
        return self.raw.get("result")

    @property
    def error(self) -> dict[str, Any] | None:
        return self.raw.get("error")

    @property
    def session(self) -> dict[str, Any] | None:
        return self.raw.get("session")

    @property
    def logins(self) -> list[dict[str, Any]]:
        return list(self.raw["wx"]["logins"])

    @property
    def requests(self) -> list[dict[str, Any]]:
        """Every wx.request on the wire, in order, with what came back."""
        return list(self.raw["wx"]["requests"])

    def requests_to(self, path: str) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["url"].split("?")[0].endswith(path)]

    def __repr__(self) -> str:
        return json.dumps(self.raw, ensure_ascii=False, indent=1)


@dataclass
class World:
    """One test's fake WeChat, server, auth and client."""

    framework: str
    sdk: str
    node: str
    fake: FakeWeChat
    fake_url: str
    auth: WaferAuth
    server_url: str
    user: str
    storage: Path
    reports: list[StepReport] = field(default_factory=list)

    def run(
        self, step: str, *, profile: dict[str, Any] | None = None, check_session_fails: bool = False
    ) -> StepReport:
        """Run one step in a fresh Node process (the storage file carries the session).

        ``profile`` overrides what wx.getUserInfo returns; ``check_session_fails`` makes
        wx.checkSession fail (WeChat's own login state expired).
        """
        command = [self.node, str(RUN_JS), self.sdk, step, self.server_url]
        if profile is not None:
            command += ["--profile", json.dumps(profile)]
        env = dict(os.environ)
        env.update(
            {
                "WAFER_E2E_FAKE_URL": self.fake_url,
                "WAFER_E2E_APPID": DEMO_APPID,
                "WAFER_E2E_USER": self.user,
                "WAFER_E2E_STORAGE": str(self.storage),
            }
        )
        env.pop("WAFER_E2E_PROFILE", None)
        env.pop("WAFER_E2E_ROTATE", None)
        if check_session_fails:
            env["WAFER_E2E_CHECK_SESSION"] = "fail"
        else:
            env.pop("WAFER_E2E_CHECK_SESSION", None)
        try:
            done = subprocess.run(
                command,
                cwd=E2E_DIR,
                env=env,
                capture_output=True,
                encoding="utf-8",
                timeout=NODE_TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            pytest.fail(
                f"node {step} ({self.sdk}) ran longer than {NODE_TIMEOUT} s; stderr:\n{exc.stderr}"
            )
        lines = [line for line in done.stdout.splitlines() if line.strip()]
        assert lines, (
            f"node {step} printed nothing (exit {done.returncode}); stderr:\n{done.stderr}"
        )
        try:
            raw = json.loads(lines[-1])
        except json.JSONDecodeError:
            pytest.fail(f"node {step} printed no JSON line:\n{done.stdout}\n{done.stderr}")
        report = StepReport(raw)
        assert report.outcome not in ("error", "timeout"), (
            f"node {step} ({self.sdk}) broke: {report!r}\nstderr:\n{done.stderr}"
        )
        assert done.returncode == 0, f"node exited {done.returncode}: {done.stderr}"
        self.reports.append(report)
        return report

    @property
    def openid(self) -> str:
        """The fake's openid of this test's user (from what wx.login answered)."""
        openids = {login["openid"] for r in self.reports for login in r.logins}
        assert len(openids) == 1, f"expected one openid, got {openids}"
        return openids.pop()

    def session_key(self) -> str:
        """The user's CURRENT session_key at the fake (the last wx.login's)."""
        return self.fake.session_key_of(DEMO_APPID, self.openid)

    def jscode2session_calls(self) -> int:
        return self.fake.calls[JSCODE2SESSION]

    def default_nickname(self) -> str:
        """The nickName the fake's wx.getUserInfo gives this user when not overridden."""
        from wafer_py.fakewechat.miniprogram import default_profile

        return str(default_profile(self.user)["nickName"])


@pytest.fixture(params=["starlette", "flask"])
def framework(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(params=["v1", "v2"])
def sdk(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def world(
    request: pytest.FixtureRequest,
    node: str,
    framework: str,
    sdk: str,
    fake: FakeWeChat,
    fake_server: Any,
    make_auth: Callable[..., WaferAuth],
    tmp_path: Path,
) -> Iterator[World]:
    auth = make_auth()
    user = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")
    with serve_example(framework, auth) as url:
        yield World(
            framework,
            sdk,
            node,
            fake,
            fake_server.url,
            auth,
            url,
            user,
            tmp_path / "wx-storage.json",
        )


# ------------------------------------------------------------------ shared checks


def _secret_forms(session_key: str) -> list[str]:
    """The session_key and what could be derived from it (wafer-node-sdk's sha1 skey)."""
    raw = base64.b64decode(session_key)
    return [session_key, raw.hex(), hashlib.sha1(session_key.encode()).hexdigest()]


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
    assert exchange["statusCode"] == 200, exchange
    body = json.loads(exchange["rawBody"])
    for secret in _secret_forms(session_key):
        assert secret not in exchange["rawBody"], "the login answer leaks the session_key"
    assert body[MAGIC] == 1
    assert body["code"] == 0
    assert set(body["session"]) == {"id", "skey"}
    assert body["data"]["skey"] == body["session"]["skey"]
    assert body["data"]["userinfo"]["openId"] == world.openid
    assert isinstance(body["data"]["time"], int)
    assert "session_key" not in json.dumps(body)
    return body


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
    assert skey not in _secret_forms(session_key), "the skey is (derived from) the session_key"
    return skey


def assert_session_headers(world: World, exchange: dict[str, Any], stored: dict[str, Any]) -> None:
    header = exchange["header"]
    assert header["X-WX-Skey"] == stored["skey"]
    if world.sdk == "v1":
        assert header["X-WX-Id"] == stored["id"]
    else:
        assert "X-WX-Id" not in header


def assert_user_answer(report: StepReport, openid: str, nickname: str) -> dict[str, Any]:
    """A successful /weapp/user answer for ``openid`` with ``nickname``."""
    assert report.outcome == "success", report
    assert report.result["statusCode"] == 200, report
    data = report.result["data"]
    assert data["code"] == 0
    assert MAGIC not in data
    info = data["data"]["userInfo"]
    assert info["openId"] == openid
    assert info["nickName"] == nickname
    return info


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
    assert_user_answer(again, openid, nickname)
    [exchange] = again.requests
    assert_session_headers(world, exchange, report.session)
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

    assert_user_answer(world.run("request"), openid, DEFAULT_NICKNAME)


@pytest.mark.parametrize("sdk", ["v2"])
def test_code_only_request_login_for_new_user(world: World) -> None:
    """v2 request({login: true}) runs loginWithCode first, so a new user is registered."""
    report = world.run("request_login")
    openid = world.openid
    assert_user_answer(report, openid, DEFAULT_NICKNAME)
    login, user_request = report.requests
    assert_login_answer(world, login, world.session_key(), with_data=False)
    assert_session_headers(world, user_request, report.session)
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
    assert_user_answer(report, openid, nickname)

    login, user_request = report.requests
    assert login["url"] == world.server_url + "/weapp/login"
    assert user_request["url"] == world.server_url + "/weapp/user"
    assert_login_answer(world, login, session_key, with_data=world.sdk == "v1")
    assert_stored_session(world, report, session_key)
    assert_session_headers(world, user_request, report.session)
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
    assert_user_answer(report, openid, nickname)

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
    assert_session_headers(world, retried, report.session)
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
    info = assert_user_answer(report, openid, new_nickname)
    assert info["city"] == "Shenzhen"
    assert report.logins == []  # fresh user info, but no new wx.login
    [exchange] = report.requests
    assert exchange["header"]["X-WX-Encrypted-Data"] and exchange["header"]["X-WX-IV"]
    assert_session_headers(world, exchange, first.session)
    assert report.session == first.session  # same session, nothing re-stored

    user = world.auth.store.get_user(openid)
    assert user is not None
    assert user.nickname == new_nickname
    assert user.profile["city"] == "Shenzhen"
    assert world.jscode2session_calls() == calls_before
    assert len(world.auth.store.list_sessions(openid)) == 1

    # a plain request afterwards sees the new profile as well
    assert_user_answer(world.run("request"), openid, new_nickname)


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
