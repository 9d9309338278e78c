"""Mini-program login: what ``wx.login`` and ``wx.getUserInfo`` do, and ``jscode2session``.

* :func:`login` mints a code the way ``wx.login`` does (rotating the session_key first,
  as WeChat may on every login).
* :func:`user_info` builds what ``wx.getUserInfo`` returns, encrypted under the user's
  *current* session_key.
* :func:`jscode2session` is ``GET /sns/jscode2session``, with WeChat's errcodes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

from ..crypto import encrypt_data
from .errors import error_response
from .server import Request, Response, Router
from .state import WeChatState

__all__ = [
    "JSCODE2SESSION",
    "PROFILE_FIELDS",
    "ANONYMOUS_PROFILE",
    "anonymous_profile",
    "default_profile",
    "jscode2session",
    "login",
    "register",
    "user_info",
]

JSCODE2SESSION = "/sns/jscode2session"

#: The fields of a ``wx.getUserInfo`` profile (``userInfo`` / ``rawData``), in WeChat's order.
PROFILE_FIELDS = ("nickName", "gender", "language", "city", "province", "country", "avatarUrl")

_AVATAR_BASE = "https://thirdwx.qlogo.cn/mmopen/vi_32/"


def default_profile(handle: str) -> dict[str, Any]:
    """The profile of a user nobody customised: nickname from the handle, no gender/region.

    Gender and region are 0 and "" as WeChat has returned them since 2021-10.
    """
    digest = hashlib.sha512(f"avatar\x1f{handle}".encode()).digest()
    avatar = base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")
    return {
        "nickName": handle[:1].upper() + handle[1:],
        "gender": 0,
        "language": "zh_CN",
        "city": "",
        "province": "",
        "country": "",
        "avatarUrl": f"{_AVATAR_BASE}{avatar}/132",
    }


#: What ``wx.getUserInfo`` and ``wx.getUserProfile`` give every user since 2022-11
#: (WeChat's anonymous profile: the placeholder nickname, the grey avatar, no gender,
#: language or region).
ANONYMOUS_PROFILE: dict[str, Any] = {
    "nickName": "微信用户",
    "gender": 0,
    "language": "",
    "city": "",
    "province": "",
    "country": "",
    "avatarUrl": (
        "https://thirdwx.qlogo.cn/mmopen/vi_32/POgEwh4mIHO4nibH0KlMECNjjGxQUq24ZEaGT4poC6icRicc"
        "VGKSyXwibcPq4BWmiaIGuG1icwxaQX6grC9VemZoJ8rg/132"
    ),
}


def anonymous_profile() -> dict[str, Any]:
    """A copy of :data:`ANONYMOUS_PROFILE`."""
    return dict(ANONYMOUS_PROFILE)


def _check_overrides(overrides: dict[str, Any]) -> None:
    for name, value in overrides.items():
        if name not in PROFILE_FIELDS:
            raise ValueError(f"unknown profile field {name!r}; expected one of {PROFILE_FIELDS}")
        if name == "gender":
            if not isinstance(value, int) or isinstance(value, bool):
                raise ValueError("gender must be an integer (0 unknown, 1 male, 2 female)")
        elif not isinstance(value, str):
            raise ValueError(f"{name} must be a string")


def login(
    state: WeChatState, appid: str, user: str = "alice", rotate: bool = True
) -> dict[str, str]:
    """What ``wx.login`` does: return ``{"code", "openid"}`` for ``user`` of ``appid``.

    With ``rotate`` the user's session_key changes first, so data encrypted before this
    login no longer decrypts under the key the new code yields.
    """
    with state.lock:
        if rotate:
            state.rotate_session_key(appid, user)
        code = state.mint_code(appid, user)
        return {"code": code.code, "openid": state.user(appid, user).openid}


def user_info(
    state: WeChatState,
    appid: str,
    user: str = "alice",
    *,
    legacy: bool = False,
    **overrides: Any,
) -> dict[str, Any]:
    """What ``wx.getUserInfo`` returns, encrypted under the user's current session_key.

    The profile is WeChat's anonymous one, or with ``state.real_profiles`` the user's
    own (:func:`default_profile`). ``overrides`` replace fields of it for this call only
    (a test that names a nickname gets that nickname in either mode). Returns
    ``encryptedData``, ``iv``, ``rawData``, ``signature`` (sha1 of rawData + session_key)
    and ``userInfo``. With ``legacy`` it is the 2016 result instead: ``encryptData``
    (AES-128-CBC with IV = key, no separate IV, as ``qcloud-weapp-client-sdk`` 0.7.x reads
    it), ``rawData``, ``signature`` and ``userInfo``.
    """
    if not isinstance(legacy, bool):
        raise ValueError("legacy must be true or false")
    _check_overrides(overrides)
    with state.lock:
        account = state.user(appid, user)
        session_key = account.session_key
        openid, unionid = account.openid, account.unionid
        now = state.now()
        real = state.real_profiles
    profile = default_profile(user) if real else anonymous_profile()
    profile.update(overrides)
    raw_data = json.dumps(profile, ensure_ascii=False, separators=(",", ":"))
    payload = {"openId": openid, **profile, "unionId": unionid}
    # sha1 is WeChat's choice for this signature, not ours.
    signature = hashlib.sha1(
        (raw_data + session_key).encode("utf-8"), usedforsecurity=False
    ).hexdigest()
    if legacy:
        key = base64.b64decode(session_key)
        old, _ = encrypt_data(session_key, payload, appid=appid, timestamp=int(now), iv=key)
        return {
            "encryptData": old,
            "rawData": raw_data,
            "signature": signature,
            "userInfo": profile,
        }
    encrypted, iv = encrypt_data(session_key, payload, appid=appid, timestamp=int(now))
    return {
        "encryptedData": encrypted,
        "iv": iv,
        "rawData": raw_data,
        "signature": signature,
        "userInfo": profile,
    }


def jscode2session(state: WeChatState, request: Request) -> Response:
    """``GET /sns/jscode2session?appid&secret&js_code&grant_type=authorization_code``.

    Unknown query parameters (such as ``access_token``) are ignored, as WeChat does.
    """
    query = request.query
    appid = query.get("appid", "")
    secret = query.get("secret", "")
    js_code = query.get("js_code", "")
    now = state.now()
    if not appid:
        return error_response(41002, now=now)
    if not secret:
        return error_response(41004, now=now)
    if not js_code:
        return error_response(41008, now=now)
    if query.get("grant_type") != "authorization_code":
        return error_response(40002, now=now)
    app = state.apps.get(appid)
    if app is None:
        return error_response(40013, now=now)
    if not hmac.compare_digest(secret.encode(), app.secret.encode()):
        return error_response(40125, now=now)
    with state.lock:
        found = state.redeem_code(appid, js_code)
        if isinstance(found, int):
            return error_response(found, now=now)
        account = state.user(appid, found.handle)
        body = {
            "session_key": found.session_key,
            "openid": account.openid,
            "unionid": account.unionid,
        }
    return Response.json(body)


def register(router: Router, state: WeChatState) -> None:
    """Add the mini-program login endpoints to ``router``."""
    router.add("GET", JSCODE2SESSION, lambda request: jscode2session(state, request))
