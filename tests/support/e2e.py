"""What the end-to-end tests share: one ``tests/e2e/run.js`` step per Node process.

``tests/test_e2e_clients.py`` (the current client SDKs) and ``tests/test_e2e_legacy_clients.py``
(the older ones) both drive a real SDK in Node through :class:`World`, and read what each step
printed through :class:`StepReport`. Their fixtures (``node``, ``framework``, ``world``) and
are in ``tests/conftest.py``; :func:`require_sdk` (here) skips a missing SDK, or fails with
``CI=true``; each module gives ``sdk`` and ``sdk_installed``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.support.ci import skip_or_fail
from wafer_py import WaferAuth
from wafer_py.config import DEMO_APPID
from wafer_py.fakewechat import FakeWeChat
from wafer_py.fakewechat.miniprogram import anonymous_profile, default_profile

E2E_DIR = Path(__file__).resolve().parent.parent / "e2e"
RUN_JS = E2E_DIR / "run.js"
MAGIC = "F2C224D4-2BCE-4C64-AF9F-A6D872000D1A"
JSCODE2SESSION = "/sns/jscode2session"
NODE_TIMEOUT = 30.0
#: What a step may end in when it did not run as a test wants: run.js broke, the step ran
#: out of time, or the SDK has no such step.
BROKEN_OUTCOMES = ("error", "timeout", "skipped")


def require_sdk(directory: str, version: str | None = None) -> None:
    """An SDK is installed under tests/e2e/node_modules/``directory`` (at ``version`` exactly,
    when given)."""
    manifest = E2E_DIR / "node_modules" / directory / "package.json"
    if not manifest.is_file():
        skip_or_fail(f"{directory} is not installed: run `npm ci --prefix tests/e2e`")
    if version is None:
        return
    installed = json.loads(manifest.read_text(encoding="utf-8")).get("version")
    if installed != version:
        skip_or_fail(
            f"node_modules/{directory} holds {installed}, not {version}: "
            "run `npm ci --prefix tests/e2e`"
        )


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
    def error(self) -> dict[str, Any]:
        return dict(self.raw.get("error") or {})

    @property
    def session(self) -> dict[str, Any] | None:
        """What the SDK keeps under its storage key (``None`` when nothing)."""
        return self.raw.get("session")

    @property
    def logins(self) -> list[dict[str, Any]]:
        return list(self.raw["wx"]["logins"])

    @property
    def check_sessions(self) -> list[str]:
        return list(self.raw["wx"]["checkSession"])

    @property
    def requests(self) -> list[dict[str, Any]]:
        """Every wx.request on the wire, in order, with what came back."""
        return list(self.raw["wx"]["requests"])

    def __repr__(self) -> str:
        return json.dumps(self.raw, ensure_ascii=False, indent=1)


@dataclass
class World:
    """One test's fake WeChat, example server, auth and Node client."""

    framework: str
    sdk: str
    node: str
    fake: FakeWeChat
    fake_url: str
    auth: WaferAuth
    server_url: str
    user: str
    storage: Path
    steps: list[StepReport] = field(default_factory=list)

    @property
    def v1(self) -> bool:
        """A first-generation SDK (``v1``, ``v1-legacy``): it sends ``X-WX-Id`` as well."""
        return self.sdk.split("-")[0] == "v1"

    def run(
        self,
        step: str,
        *,
        profile: dict[str, Any] | None = None,
        check_session_fails: bool = False,
        rotate: bool = True,
        extra: Sequence[str] = (),
    ) -> StepReport:
        """Run one step in a fresh Node process; the storage file carries the session.

        ``profile`` overrides what wx.getUserInfo returns, ``check_session_fails`` makes
        wx.checkSession fail (WeChat's own login state expired), ``rotate=False`` makes
        wx.login keep the session_key; ``extra`` are more arguments of run.js (``--data``,
        ``--file``, ``--no-session``).
        """
        command = [self.node, str(RUN_JS), self.sdk, step, self.server_url]
        if profile is not None:
            command += ["--profile", json.dumps(profile)]
        command += list(extra)
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("WAFER_E2E_") or k == "WAFER_E2E_STEP_TIMEOUT_MS"
        }
        env.update(
            {
                "WAFER_E2E_FAKE_URL": self.fake_url,
                "WAFER_E2E_APPID": DEMO_APPID,
                "WAFER_E2E_USER": self.user,
                "WAFER_E2E_STORAGE": str(self.storage),
            }
        )
        if check_session_fails:
            env["WAFER_E2E_CHECK_SESSION"] = "fail"
        if not rotate:
            env["WAFER_E2E_ROTATE"] = "0"
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
        assert report.outcome not in BROKEN_OUTCOMES, (
            f"node {step} ({self.sdk}) broke: {report!r}\nstderr:\n{done.stderr}"
        )
        assert done.returncode == 0, f"node exited {done.returncode}: {done.stderr}"
        self.steps.append(report)
        return report

    @property
    def openid(self) -> str:
        """The fake's openid of this test's user (what wx.login answered)."""
        openids = {login["openid"] for s in self.steps for login in s.logins}
        assert len(openids) == 1, f"expected one openid, got {openids}"
        return openids.pop()

    def session_key(self) -> str:
        """The user's CURRENT session_key at the fake (the last wx.login's)."""
        return self.fake.session_key_of(DEMO_APPID, self.openid)

    def jscode2session_calls(self) -> int:
        return self.fake.calls[JSCODE2SESSION]

    def profile(self, **overrides: Any) -> dict[str, Any]:
        """The userInfo the fake's wx.getUserInfo gives this user with ``overrides``."""
        real = self.fake.real_profiles
        profile = default_profile(self.user) if real else anonymous_profile()
        profile.update(overrides)
        return profile

    def default_nickname(self) -> str:
        """The nickName the fake's wx.getUserInfo gives this user when not overridden."""
        return str(self.profile()["nickName"])

    def session_ids(self, openid: str) -> set[str]:
        return {s.id for s in self.auth.store.list_sessions(openid)}


# ------------------------------------------------------------------ shared checks


def secret_forms(session_key: str) -> list[str]:
    """The session_key and what could be derived from it (wafer-node-sdk's sha1 skey)."""
    raw = base64.b64decode(session_key)
    return [session_key, raw.hex(), hashlib.sha1(session_key.encode()).hexdigest()]


def check_login_answer(world: World, exchange: dict[str, Any], session_key: str) -> dict[str, Any]:
    """What every successful login answer on the wire holds, whatever the SDK: a session
    and the user's info, and neither the session_key nor anything derived from it.
    Returns the parsed answer."""
    assert exchange["statusCode"] == 200, exchange
    raw = exchange["rawBody"]
    for secret in secret_forms(session_key):
        assert secret not in raw, "the login answer leaks the session_key"
    body = json.loads(raw)
    assert "session_key" not in raw and "session_key" not in json.dumps(body)
    assert body[MAGIC] == 1
    assert body["code"] == 0
    assert set(body["session"]) == {"id", "skey"}
    assert body["data"]["skey"] == body["session"]["skey"]
    assert isinstance(body["data"]["time"], int)
    assert body["data"]["userinfo"]["openId"] == world.openid
    return dict(body)


def check_credentials(world: World, exchange: dict[str, Any], stored: dict[str, Any]) -> None:
    """A request carried the stored session: v1 X-WX-Id + X-WX-Skey, v2 X-WX-Skey only."""
    sent = exchange["header"]
    assert sent["X-WX-Skey"] == stored["skey"]
    if world.v1:
        assert sent["X-WX-Id"] == stored["id"]
    else:
        assert "X-WX-Id" not in sent


def check_success(step: StepReport, openid: str, nickname: str) -> dict[str, Any]:
    """The request step ended in the SDK's success callback with a successful /weapp/user
    answer for ``openid`` with ``nickname``; returns that userInfo."""
    assert step.outcome == "success", step
    assert step.result["statusCode"] == 200, step
    data = step.result["data"]
    assert data["code"] == 0
    assert MAGIC not in data
    info: dict[str, Any] = data["data"]["userInfo"]
    assert info["openId"] == openid
    assert info["nickName"] == nickname
    return info
