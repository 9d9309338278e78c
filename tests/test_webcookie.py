"""The web-session cookie's codec: round trip, key rotation, expiry, forgery."""

from __future__ import annotations

from wafer_py.crypto import Keyring
from wafer_py.web.cookie import SessionCookie, set_cookie

OLD, NEW = "o" * 32, "n" * 32
FIELDS = {
    "session_id": "sid",
    "openid": "oABC",
    "scope": "snsapi_userinfo",
    "unionid": None,
    "nickname": "小明",
    "avatar": "https://a/b",
}


def test_round_trip_and_rotation() -> None:
    now = [1000.0]
    old = SessionCookie(Keyring([OLD]), max_age=60, clock=lambda: now[0])
    value = old.dumps(FIELDS)
    assert old.loads(value) == FIELDS
    rotated = SessionCookie(Keyring([NEW, OLD]), max_age=60, clock=lambda: now[0])
    assert rotated.loads(value) == FIELDS  # an old key still verifies
    assert SessionCookie(Keyring([NEW]), max_age=60).loads(value) is None  # dropped key
    assert old.loads(rotated.dumps(FIELDS)) is None  # the newest key signs
    now[0] += 61
    assert rotated.loads(value) is None  # expired


def test_bad_values_are_no_session() -> None:
    codec = SessionCookie(Keyring([OLD]), max_age=60)
    value = codec.dumps(FIELDS)
    for bad in (None, "", "x", value[:-2] + "AA", codec.dumps({"openid": "o"})):
        assert codec.loads(bad) is None
    assert "o" * 8 not in repr(codec)


def test_set_cookie() -> None:
    assert set_cookie("w", "v", max_age=5, secure=True) == (
        "Set-Cookie",
        "w=v; Max-Age=5; Path=/; HttpOnly; SameSite=Lax; Secure",
    )
    assert (
        set_cookie("w", "", max_age=0, secure=False)[1]
        == "w=; Max-Age=0; Path=/; HttpOnly; SameSite=Lax"
    )
