"""The avatar/nickname fill-in flow: the rules (wafer_py.fillin), the images
(wafer_py.avatars), the stores of avatars, and both example apps over real HTTP."""

from __future__ import annotations

import asyncio
import io
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import ExifTags
from PIL import Image as PILImage

from tests.support import services
from tests.support.constants import FRAMEWORKS
from tests.support.servers import serve_example
from wafer_py import Credentials, WaferAuth, WaferConfig
from wafer_py.avatars import (
    AVATAR_PATH,
    AvatarStore,
    EntryAvatarStore,
    FolderAvatarStore,
    clean_image,
    is_avatar_key,
)
from wafer_py.body import MAX_AVATAR_BODY, CappedReader, acapped
from wafer_py.config import DEMO_APPID
from wafer_py.exceptions import (
    AvatarNotFound,
    BodyTooLarge,
    ContentRejected,
    ImagesUnavailable,
    InvalidProfile,
    UnsupportedImage,
)
from wafer_py.fakewechat import FakeWeChat
from wafer_py.fillin import check_avatar_url, clean_nickname
from wafer_py.protocol import MAGIC_ID
from wafer_py.stores.memory import MemoryStore
from wafer_py.wechat.api import MSG_SEC_CHECK

GPS = {1: "N", 2: (39.0, 54.0, 27.0), 3: "E", 4: (116.0, 23.0, 50.0)}


def jpeg_with_gps(size: tuple[int, int] = (80, 60)) -> bytes:
    """A JPEG carrying EXIF with a camera make, a GPS position and a comment."""
    img = PILImage.new("RGB", size, (200, 40, 40))
    exif = PILImage.Exif()
    exif[ExifTags.Base.Make] = "SecretCam"
    exif[ExifTags.Base.GPSInfo] = GPS
    out = io.BytesIO()
    img.save(out, "JPEG", exif=exif, comment=b"taken at home")
    data = out.getvalue()
    with PILImage.open(io.BytesIO(data)) as check:  # the original does carry it all
        assert check.getexif().get_ifd(ExifTags.IFD.GPSInfo)
    return data


def png(size: tuple[int, int] = (32, 32), mode: str = "RGBA") -> bytes:
    out = io.BytesIO()
    PILImage.new(mode, size).save(out, "PNG")
    return out.getvalue()


def assert_clean(data: bytes) -> None:
    """The image decodes and carries no EXIF, GPS, comment or text chunk."""
    assert b"SecretCam" not in data and b"taken at home" not in data
    with PILImage.open(io.BytesIO(data)) as img:
        img.load()
        assert not img.getexif()
        assert not img.getexif().get_ifd(ExifTags.IFD.GPSInfo)
        assert not {"exif", "comment", "icc_profile", "xmp"} & set(img.info)


# ------------------------------------------------------------------ rules


def test_nicknames_are_trimmed_and_checked() -> None:
    assert clean_nickname("  小明 ") == "小明"
    assert clean_nickname("x" * 64) == "x" * 64
    assert clean_nickname("👩‍💻 dev") == "👩‍💻 dev"  # a ZWJ emoji sequence is a name
    for bad in ("", "   ", "x" * 65, "a\x00b", "a\nb", "a\u2028b", "\x1b[31mred", None, 5):
        with pytest.raises(InvalidProfile):
            clean_nickname(bad)


def test_avatar_urls_are_https_or_our_own() -> None:
    own = "http://127.0.0.1:8000/weapp/avatar/"
    key = "A" * 22
    assert check_avatar_url("https://cdn.example.com/a.png") == "https://cdn.example.com/a.png"
    assert check_avatar_url(own + key, own_prefix=own) == own + key
    for bad in (
        "http://cdn.example.com/a.png",
        "javascript:alert(1)",
        "data:image/png;base64,AAAA",
        "https://user:pw@example.com/a.png",
        "https:///a.png",
        "https://example.com/a b.png",
        own + key,  # without own_prefix it is plain http
        "https://x/" + "a" * 1100,
        5,
    ):
        with pytest.raises(InvalidProfile):
            check_avatar_url(bad)
    for bad in (own + "../../etc/passwd", own + key + "/x", own + "short"):
        with pytest.raises(InvalidProfile):
            check_avatar_url(bad, own_prefix=own)


def test_set_profile_checks_before_storing(
    make_auth: Callable[..., WaferAuth], fake: FakeWeChat
) -> None:
    auth = make_auth()
    result = auth.login(fake.login(DEMO_APPID, "dora")["code"])
    who = auth.validate(Credentials(skey=result.skey))
    before = auth.store.get_user(who.openid)
    for nickname, url in (("x" * 200, None), ("ok", "http://evil.example/a.png"), ("\x07", None)):
        with pytest.raises(InvalidProfile):
            auth.set_profile(who, nickname, url)
        assert auth.store.get_user(who.openid) == before
    who = auth.set_profile(who, " Dora ", "https://cdn.example.com/d.png")
    assert who.user.profile["nickName"] == "Dora"
    assert auth.store.get_user(who.openid).userinfo()["avatarUrl"] == (  # type: ignore[union-attr]
        "https://cdn.example.com/d.png"
    )


# ------------------------------------------------------------------ images


def test_a_jpeg_loses_its_metadata_and_keeps_its_pixels() -> None:
    image = clean_image(jpeg_with_gps())
    assert image.content_type == "image/jpeg"
    assert_clean(image.data)
    with PILImage.open(io.BytesIO(image.data)) as img:
        assert img.size == (80, 60)
        red, green, _ = img.convert("RGB").getpixel((40, 30))  # type: ignore[misc]
        assert red > 150 and green < 100


@pytest.mark.parametrize("fmt", ["PNG", "WEBP", "GIF"])
def test_other_formats_become_a_clean_png(fmt: str) -> None:
    out = io.BytesIO()
    img = PILImage.new("RGB", (1200, 300), (0, 0, 255))
    exif = PILImage.Exif()
    exif[ExifTags.Base.Make] = "SecretCam"
    img.save(out, fmt, exif=exif) if fmt != "GIF" else img.save(out, fmt, comment=b"SecretCam")
    image = clean_image(out.getvalue())
    assert image.content_type == "image/png"
    assert_clean(image.data)
    with PILImage.open(io.BytesIO(image.data)) as small:
        assert small.size == (640, 160)  # shrunk to an avatar's size


@pytest.mark.parametrize(
    "data",
    [
        b"hello, I am a text file\n" * 10,
        b"<svg xmlns='http://www.w3.org/2000/svg'/>",
        b"BM" + b"\x00" * 100,  # a BMP: decodable, but not a format we take
        b"\x89PNG\r\n\x1a\n" + b"\x00" * 50,  # a PNG signature and nothing behind it
        jpeg_with_gps()[:200],  # a truncated JPEG
    ],
)
def test_anything_but_a_whole_image_is_refused(data: bytes) -> None:
    with pytest.raises(UnsupportedImage):
        clean_image(data)


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from([b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF89a", b"RIFF\0\0\0\0WEBP"]),
    st.binary(max_size=400),
)
def test_broken_images_are_a_415_never_a_crash(signature: bytes, rest: bytes) -> None:
    try:
        image = clean_image(signature + rest)
    except UnsupportedImage:
        return
    assert image.content_type in ("image/png", "image/jpeg")  # it was an image after all


@pytest.mark.parametrize("mode", ["I;16", "CMYK", "LA", "P", "1", "L"])
def test_every_pixel_mode_comes_out_clean(mode: str) -> None:
    out = io.BytesIO()
    PILImage.new(mode, (40, 30)).save(out, "JPEG" if mode in ("CMYK", "L") else "PNG")
    assert_clean(clean_image(out.getvalue()).data)


def test_a_decompression_bomb_is_refused_before_decoding() -> None:
    # 20000 x 20000 of one colour: a few hundred kB of PNG, 1.6 GB of pixels.
    out = io.BytesIO()
    PILImage.new("1", (20000, 20000)).save(out, "PNG")
    assert len(out.getvalue()) < MAX_AVATAR_BODY
    with pytest.raises(UnsupportedImage, match="pixels"):
        clean_image(out.getvalue())


def test_without_pillow_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    data = png()
    monkeypatch.setitem(sys.modules, "PIL", None)
    with pytest.raises(ImagesUnavailable, match=r"wafer-session\[images\]"):
        clean_image(data)


# ------------------------------------------------------------------ stores and caps


@pytest.fixture(params=["folder", "entries"])
def avatar_store(request: pytest.FixtureRequest, tmp_path: Path) -> AvatarStore:
    if request.param == "folder":
        return FolderAvatarStore(tmp_path / "avatars")
    return EntryAvatarStore(MemoryStore())


def test_avatar_stores_keep_what_they_are_given(avatar_store: AvatarStore) -> None:
    assert isinstance(avatar_store, AvatarStore)
    data = clean_image(png()).data
    key = avatar_store.put(data, "image/png")
    other = avatar_store.put(b"\xff\xd8\xff", "image/jpeg")
    assert is_avatar_key(key) and key != other
    assert avatar_store.get(key) == (data, "image/png")
    assert avatar_store.get(other) == (b"\xff\xd8\xff", "image/jpeg")
    for missing in ("A" * 22, "../" * 8, "", key + ".png", "."):
        with pytest.raises(AvatarNotFound):
            avatar_store.get(missing)


def test_entry_avatars_expire_only_after_their_ttl() -> None:
    now = [1000.0]
    store = EntryAvatarStore(MemoryStore(), ttl=60, clock=lambda: now[0])
    key = store.put(b"x", "image/png")
    now[0] += 59
    assert store.get(key) == (b"x", "image/png")
    now[0] += 2
    with pytest.raises(AvatarNotFound):
        store.get(key)


def test_the_capped_reader_stops_one_byte_past_the_limit() -> None:
    source = io.BytesIO(b"x" * 1000)
    reader = CappedReader(source, 100)
    assert reader.read(60) == b"x" * 60
    with pytest.raises(BodyTooLarge):
        reader.read(60)
    assert source.tell() == 101  # never more than one byte past the limit was taken
    assert CappedReader(io.BytesIO(b"abc"), 3).read() == b"abc"


def test_the_async_cap_stops_at_the_limit() -> None:
    async def body() -> Any:
        for _ in range(10):
            yield b"x" * 100

    async def drain() -> list[bytes]:
        got: list[bytes] = []
        with pytest.raises(BodyTooLarge):
            async for chunk in acapped(body(), 250):
                got.append(chunk)
        return got

    assert len(asyncio.run(drain())) == 2


# ------------------------------------------------------------------ every example over HTTP


@pytest.fixture(params=FRAMEWORKS)
def served(
    request: pytest.FixtureRequest, make_auth: Callable[..., WaferAuth]
) -> Iterator[tuple[str, WaferAuth]]:
    auth = make_auth()
    with serve_example(str(request.param), auth) as url:
        yield url, auth


def log_in(base: str, fake: FakeWeChat, name: str) -> tuple[str, str]:
    code = fake.login(DEMO_APPID, name)
    answer = requests.get(f"{base}/weapp/login", headers={"X-WX-Code": code["code"]}, timeout=10)
    assert answer.json()["data"]["userinfo"]["openId"] == code["openid"]
    return answer.json()["data"]["skey"], code["openid"]


def upload(base: str, skey: str | None, data: bytes, **options: Any) -> requests.Response:
    headers = {"X-WX-Skey": skey} if skey else {}
    files = {"avatar": ("tmp_avatar.jpg", data, "image/jpeg")}
    return requests.post(
        f"{base}/weapp/avatar", files=files, headers=headers, timeout=30, **options
    )


def assert_error(answer: requests.Response, status: int, reason: str) -> None:
    assert answer.status_code == status, answer.text
    body = answer.json()
    code = -1 if body["error"] == "ERR_INVALID_SESSION" else status  # -1: log in again
    assert (body[MAGIC_ID], body["reason"], body["code"]) == (1, reason, code), body


def entries(auth: WaferAuth) -> int:
    return auth.store.stats(time.time()).entries


def test_fill_in_end_to_end(served: tuple[str, WaferAuth], fake: FakeWeChat) -> None:
    base, auth = served
    skey, openid = log_in(base, fake, "erin")
    headers = {"X-WX-Skey": skey}
    first = auth.store.get_user(openid)
    assert first is not None

    answer = requests.post(
        f"{base}/weapp/profile", json={"nickName": "  小红 "}, headers=headers, timeout=10
    )
    assert answer.status_code == 200, answer.text
    # the login answer's userinfo, with the nickname filled in
    named = {**first.userinfo(), "nickName": "小红"}
    assert answer.json() == {"code": 0, "data": {"userInfo": named}}

    uploaded = upload(base, skey, jpeg_with_gps())
    assert uploaded.status_code == 200, uploaded.text
    url = uploaded.json()["data"]["avatarUrl"]
    assert url.startswith(base + AVATAR_PATH) and is_avatar_key(url.rsplit("/", 1)[1])

    user = requests.get(f"{base}/weapp/user", headers=headers, timeout=10).json()
    assert user["data"]["userInfo"] == {**named, "avatarUrl": url}

    served_image = requests.get(url, timeout=10)  # no session needed: <image src> sends none
    assert served_image.status_code == 200
    assert served_image.headers["Content-Type"] == "image/jpeg"
    assert served_image.headers["X-Content-Type-Options"] == "nosniff"
    assert "max-age" in served_image.headers["Cache-Control"]
    assert_clean(served_image.content)

    # the uploaded URL may be sent back with the nickname (the form submit)
    again = requests.post(
        f"{base}/weapp/profile",
        json={"nickName": "小红", "avatarUrl": url},
        headers=headers,
        timeout=10,
    )
    assert again.status_code == 200, again.text
    assert_error(
        requests.get(f"{base}{AVATAR_PATH}{'B' * 22}", timeout=10), 404, "avatar_not_found"
    )
    assert_error(requests.get(f"{base}{AVATAR_PATH}....", timeout=10), 404, "avatar_not_found")
    # a path out of the folder is no key: the router or the store answers 404
    assert requests.get(f"{base}{AVATAR_PATH}..%2F..%2Fx", timeout=10).status_code == 404


@pytest.mark.parametrize(
    ("send", "status", "reason"),
    [
        ({"json": {"nickName": "x" * 200}}, 400, "invalid_profile"),
        ({"json": {"nickName": "a\u0000b"}}, 400, "invalid_profile"),
        (
            {"json": {"nickName": "ok", "avatarUrl": "http://evil.example/a.png"}},
            400,
            "invalid_profile",
        ),
        ({"json": {"avatarUrl": "https://cdn.example.com/a.png"}}, 400, "invalid_profile"),
        ({"data": b"nickName=x"}, 400, "bad_body"),
        ({"data": b'{"nickName": "' + b"x" * 5000 + b'"}'}, 413, "body_too_large"),
    ],
)
def test_a_bad_profile_changes_nothing(
    served: tuple[str, WaferAuth], fake: FakeWeChat, send: dict[str, Any], status: int, reason: str
) -> None:
    base, auth = served
    skey, openid = log_in(base, fake, "finn")
    before = auth.store.get_user(openid)
    answer = requests.post(f"{base}/weapp/profile", headers={"X-WX-Skey": skey}, timeout=10, **send)
    assert_error(answer, status, reason)
    assert auth.store.get_user(openid) == before


def test_bad_uploads_store_nothing(served: tuple[str, WaferAuth], fake: FakeWeChat) -> None:
    base, auth = served
    skey, openid = log_in(base, fake, "gwen")
    before = auth.store.get_user(openid)
    stored = entries(auth)

    big = b"\xff\xd8\xff" + b"\x00" * (5 * 1024 * 1024)
    assert_error(upload(base, skey, big), 413, "body_too_large")

    def chunked() -> Iterator[bytes]:  # no Content-Length: refused while streaming
        boundary = b"--b0undary\r\n"
        yield boundary + b'Content-Disposition: form-data; name="avatar"; filename="a.jpg"\r\n'
        yield b"Content-Type: image/jpeg\r\n\r\n"
        for _ in range(5 * 16):
            yield b"\x00" * 65536
        yield b"\r\n--b0undary--\r\n"

    answer = requests.post(
        f"{base}/weapp/avatar",
        data=chunked(),
        headers={"X-WX-Skey": skey, "Content-Type": "multipart/form-data; boundary=b0undary"},
        timeout=30,
    )
    assert_error(answer, 413, "body_too_large")

    assert_error(upload(base, skey, b"just some text\n" * 20), 415, "unsupported_image")
    assert_error(upload(base, None, jpeg_with_gps()), 401, "missing_session")
    plain = requests.post(
        f"{base}/weapp/avatar", data=jpeg_with_gps(), headers={"X-WX-Skey": skey}, timeout=10
    )
    assert_error(plain, 400, "bad_body")
    wrong_field = requests.post(
        f"{base}/weapp/avatar",
        files={"file": ("a.jpg", jpeg_with_gps(), "image/jpeg")},
        headers={"X-WX-Skey": skey},
        timeout=10,
    )
    assert_error(wrong_field, 400, "bad_body")
    assert auth.store.get_user(openid) == before
    assert entries(auth) == stored


def test_fill_in_routes_need_a_session(served: tuple[str, WaferAuth], fake: FakeWeChat) -> None:
    base, auth = served
    answer = requests.post(f"{base}/weapp/profile", json={"nickName": "x"}, timeout=10)
    assert answer.status_code == 401
    assert answer.json()["error"] == "ERR_INVALID_SESSION"
    bad_skey = requests.post(
        f"{base}/weapp/profile", json={"nickName": "x"}, headers={"X-WX-Skey": "x" * 43}, timeout=10
    )
    assert bad_skey.status_code == 401 and bad_skey.json()["error"] == "ERR_INVALID_SESSION"
    assert auth.store.stats(time.time()).users == 0


def test_without_python_multipart_starlette_answers_501(
    make_auth: Callable[..., WaferAuth], fake: FakeWeChat, monkeypatch: pytest.MonkeyPatch
) -> None:
    auth = make_auth()
    with serve_example("starlette", auth) as base:
        skey, openid = log_in(base, fake, "ines")
        before = auth.store.get_user(openid)
        data = jpeg_with_gps()
        monkeypatch.setitem(sys.modules, "python_multipart", None)
        answer = upload(base, skey, data)
    assert_error(answer, 501, "images_unavailable")
    assert "python-multipart" in answer.json()["message"]
    assert auth.store.get_user(openid) == before


def test_without_pillow_the_upload_answers_501(
    served: tuple[str, WaferAuth], fake: FakeWeChat, monkeypatch: pytest.MonkeyPatch
) -> None:
    base, auth = served
    skey, openid = log_in(base, fake, "hana")
    before = auth.store.get_user(openid)
    data = jpeg_with_gps()
    monkeypatch.setitem(sys.modules, "PIL", None)  # the servers run in this process
    answer = upload(base, skey, data)
    assert_error(answer, 501, "images_unavailable")
    assert "wafer-session[images]" in answer.json()["message"]
    assert auth.store.get_user(openid) == before


@pytest.mark.parametrize("kind", ["redis", "postgres", "mysql"])
def test_every_server_on_a_shared_store_serves_every_avatar(
    kind: str, make_auth: Callable[..., WaferAuth], fake: FakeWeChat
) -> None:
    """Two servers (Flask, Starlette) on one shared store: an avatar uploaded to one is
    served by the other, and by the store itself (EntryAvatarStore)."""
    with services.fresh_store_url(kind) as store_url:
        first, second = make_auth(store_url=store_url), make_auth(store_url=store_url)
        with serve_example("flask", first) as one, serve_example("starlette", second) as two:
            skey, _ = log_in(one, fake, "ivan")
            uploaded = upload(one, skey, jpeg_with_gps())
            assert uploaded.status_code == 200, uploaded.text
            url = uploaded.json()["data"]["avatarUrl"]
            key = url.rsplit("/", 1)[1]
            from_one = requests.get(url, timeout=10)
            from_two = requests.get(f"{two}{AVATAR_PATH}{key}", timeout=10)
            assert from_two.status_code == 200 and from_two.content == from_one.content
            assert_clean(from_two.content)
            assert EntryAvatarStore(second.store).get(key) == (from_one.content, "image/jpeg")
            user = requests.get(f"{two}/weapp/user", headers={"X-WX-Skey": skey}, timeout=10)
            assert user.json()["data"]["userInfo"]["avatarUrl"] == url


# ------------------------------------------------------------------ WeChat's content check


def test_nicknames_go_to_wechats_content_check_only_when_asked(
    make_auth: Callable[..., WaferAuth], fake: FakeWeChat
) -> None:
    quiet = make_auth()
    who = quiet.validate(Credentials(skey=quiet.login(fake.login(DEMO_APPID, "jo")["code"]).skey))
    assert quiet.set_profile(who, "含违禁词的名字").user.nickname == "含违禁词的名字"
    assert fake.calls[MSG_SEC_CHECK] == 0  # off by default

    auth = make_auth(check_nicknames=True)
    who = auth.validate(Credentials(skey=auth.login(fake.login(DEMO_APPID, "kim")["code"]).skey))
    before = auth.store.get_user(who.openid)
    with pytest.raises(ContentRejected):
        auth.set_profile(who, "含违禁词的名字", "https://cdn.example.com/k.png")
    assert auth.store.get_user(who.openid) == before
    assert auth.set_profile(who, "待审词 Kim").user.nickname == "待审词 Kim"  # review: kept
    assert auth.set_profile(who, "Kim").user.nickname == "Kim"
    assert auth.set_profile(who, avatar_url="https://cdn.example.com/k.png").user.nickname == "Kim"
    assert fake.calls[MSG_SEC_CHECK] == 3  # nicknames only, after the local rules
    with pytest.raises(InvalidProfile):
        auth.set_profile(who, "x" * 65)
    assert fake.calls[MSG_SEC_CHECK] == 3


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_a_risky_nickname_is_refused_over_http(
    framework: str, make_auth: Callable[..., WaferAuth], fake: FakeWeChat
) -> None:
    auth = make_auth(check_nicknames=True)
    with serve_example(framework, auth) as base:
        skey, openid = log_in(base, fake, "lee")
        before = auth.store.get_user(openid)
        answer = requests.post(
            f"{base}/weapp/profile",
            json={"nickName": "risky-word"},
            headers={"X-WX-Skey": skey},
            timeout=10,
        )
    assert_error(answer, 400, "content_rejected")
    assert auth.store.get_user(openid) == before


def test_the_content_check_switch_is_read_from_the_environment() -> None:
    env = {"WAFER_APPID": "wx1", "WAFER_APP_SECRET": "s"}
    assert WaferConfig.from_env(env).check_nicknames is False
    assert WaferConfig.from_env({**env, "WAFER_CHECK_NICKNAMES": "true"}).check_nicknames
    with pytest.raises(ValueError, match="WAFER_CHECK_NICKNAMES"):
        WaferConfig.from_env({**env, "WAFER_CHECK_NICKNAMES": "maybe"})
