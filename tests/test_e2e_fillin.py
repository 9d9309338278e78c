"""End to end: the avatar/nickname fill-in flow with the real Wafer client SDKs in Node.

Each SDK generation logs in (v2 with the code only, v1 with its one login), then the app's
form submit (``wx.request`` POST ``/weapp/profile``) and chooseAvatar's upload
(``wx.uploadFile({name: "avatar"})``, multipart over real HTTP) carry the session headers
built from what that SDK stored (v1: ``X-WX-Id`` + ``X-WX-Skey``; v2: ``X-WX-Skey``),
against both example apps (``world``: see tests/conftest.py and tests/test_e2e_clients.py).
"""

from __future__ import annotations

import io
import json
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from PIL import ExifTags
from PIL import Image as PILImage

from tests.support.e2e import MAGIC, StepReport, World, check_credentials, require_sdk
from wafer_py.avatars import AVATAR_PATH

pytestmark = pytest.mark.e2e

SDK_PACKAGES = {"v1": "wafer-client-sdk", "v2": "wafer2-client-sdk"}


@pytest.fixture(params=["v1", "v2"])
def sdk(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def sdk_installed() -> None:
    for package in SDK_PACKAGES.values():
        require_sdk(package)


def photo_with_gps(path: Path) -> Path:
    """A JPEG as a phone camera leaves it: EXIF with the make and a GPS position."""
    exif = PILImage.Exif()
    exif[ExifTags.Base.Make] = "SecretCam"
    exif[ExifTags.Base.GPSInfo] = {1: "N", 2: (39.0, 54.0, 27.0), 3: "E", 4: (116.0, 23.0, 50.0)}
    PILImage.new("RGB", (96, 96), (10, 120, 200)).save(path, "JPEG", exif=exif)
    with PILImage.open(path) as check:
        assert check.getexif().get_ifd(ExifTags.IFD.GPSInfo)
    return path


def log_in(world: World) -> dict[str, Any]:
    """Each SDK's own login: v2 code only, v1 its login (v1 has no code-only login)."""
    report = world.run("login_code_only" if world.sdk == "v2" else "login")
    assert report.outcome == "success", report
    assert report.session
    return report.session


def answer_of(report: StepReport) -> tuple[int, dict[str, Any]]:
    assert report.outcome == "success", report
    data = report.result["data"]
    return report.result["statusCode"], data if isinstance(data, dict) else json.loads(data)


def assert_refused(report: StepReport, status: int, reason: str) -> None:
    got, body = answer_of(report)
    assert got == status, report
    assert (body[MAGIC], body["reason"]) == (1, reason), body


def user_info(world: World, stored: dict[str, Any]) -> dict[str, Any]:
    report = world.run("request")
    assert report.outcome == "success", report
    [exchange] = report.requests
    check_credentials(world, exchange, stored)
    info: dict[str, Any] = report.result["data"]["data"]["userInfo"]
    return info


def test_fill_in_with_each_sdk(world: World, tmp_path: Path) -> None:
    stored = log_in(world)
    openid = world.openid

    named = world.run("profile", extra=["--data", json.dumps({"nickName": " 小绿 "})])
    status, body = answer_of(named)
    assert status == 200 and body["code"] == 0, named
    assert body["data"]["userInfo"]["nickName"] == "小绿"
    [exchange] = named.requests
    check_credentials(world, exchange, stored)
    assert user_info(world, stored)["nickName"] == "小绿"

    uploaded = world.run("upload", extra=["--file", str(photo_with_gps(tmp_path / "tmp.jpg"))])
    status, body = answer_of(uploaded)
    assert status == 200 and body["code"] == 0, uploaded
    [exchange] = uploaded.requests
    check_credentials(world, exchange, stored)
    url = body["data"]["avatarUrl"]
    assert url.startswith(world.server_url + AVATAR_PATH)

    info = user_info(world, stored)
    assert (info["openId"], info["nickName"], info["avatarUrl"]) == (openid, "小绿", url)
    image = requests.get(url, timeout=10)
    assert image.status_code == 200 and image.headers["Content-Type"] == "image/jpeg"
    assert image.headers["X-Content-Type-Options"] == "nosniff"
    assert b"SecretCam" not in image.content
    with PILImage.open(io.BytesIO(image.content)) as served:
        served.load()
        assert served.size == (96, 96)
        assert not served.getexif() and "exif" not in served.info


def test_refusals_with_each_sdk_store_nothing(world: World, tmp_path: Path) -> None:
    stored = log_in(world)
    openid = world.openid
    before = world.auth.store.get_user(openid)
    entries = world.auth.store.stats(time.time()).entries

    big = tmp_path / "big.jpg"
    big.write_bytes(b"\xff\xd8\xff" + b"\x00" * (5 * 1024 * 1024))
    assert_refused(world.run("upload", extra=["--file", str(big)]), 413, "body_too_large")

    text = tmp_path / "avatar.jpg"  # named like an image, typed by wx as a file: it is text
    text.write_text("not a picture at all\n" * 50)
    assert_refused(world.run("upload", extra=["--file", str(text)]), 415, "unsupported_image")

    long_name = json.dumps({"nickName": "长" * 200})
    assert_refused(world.run("profile", extra=["--data", long_name]), 400, "invalid_profile")

    photo = str(photo_with_gps(tmp_path / "tmp.jpg"))
    for step, extra in (
        ("upload", ["--file", photo]),
        ("profile", ["--data", '{"nickName": "x"}']),
    ):
        report = world.run(step, extra=[*extra, "--no-session"])
        got, body = answer_of(report)
        assert got == 401 and body["error"] == "ERR_INVALID_SESSION", report
        assert "X-WX-Skey" not in report.requests[0]["header"]

    assert world.auth.store.get_user(openid) == before
    assert world.auth.store.stats(time.time()).entries == entries
    assert user_info(world, stored)["nickName"] == before.nickname  # type: ignore[union-attr]
