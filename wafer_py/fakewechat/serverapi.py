"""Server APIs around login that take an ``access_token``: phone numbers, session keys.

* ``POST /wxa/business/getuserphonenumber?access_token=`` ``{"code", "openid"?}``: a
  phone code (minted by :meth:`ServerAPI.phone_code`, the fake's ``getPhoneNumber``
  button) is single-use and valid 5 minutes; unknown, used, expired or other-app codes
  answer 40029. An ``openid`` that is not the code's user answers 40003 (WeChat does not
  document this check; the fake makes it so that tests can rely on the server sending
  the session's openid).
* ``GET /wxa/checksession?access_token&openid&signature&sig_method=hmac_sha256``:
  ``signature`` is HMAC-SHA256 of ``""`` keyed by the session_key; 0 if it is the user's
  current key, else 87009; another ``sig_method`` answers 87008.
* ``GET /wxa/resetusersessionkey`` (same query): a new session_key, the old one invalid
  at once.
* ``POST /wxa/msg_sec_check?access_token=`` ``{"content", "version": 2, "scene", "openid"}``:
  ``suggest`` is ``"risky"`` for text holding one of :attr:`ServerAPI.risky_words`,
  ``"review"`` for one of :attr:`ServerAPI.review_words`, else ``"pass"``; an openid not of
  the app answers 40003, a body that is not v2 47001.

Every call's token is checked first (41001 missing, 40001 unknown or retired, 42001
expired); the token's app is the app of the call.

Control endpoints: ``POST /_fake/phone_code`` ``{"appid", "user", "phoneNumber"?,
"countryCode"?}`` and ``POST /_fake/expire_tokens`` ``{"appid"?}``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
from dataclasses import dataclass
from typing import Any

from ..crypto import hmac_signature
from . import tokens
from .control import PREFIX, _json_endpoint, _string
from .server import Request, Response, Router
from .state import CODE_TTL, WeChatState
from .tokens import TokenAuthority, fail

__all__ = [
    "PHONE_NUMBER",
    "CHECK_SESSION",
    "RESET_SESSION_KEY",
    "MSG_SEC_CHECK",
    "PhoneCode",
    "ServerAPI",
    "register",
]

PHONE_NUMBER = "/wxa/business/getuserphonenumber"
CHECK_SESSION = "/wxa/checksession"
RESET_SESSION_KEY = "/wxa/resetusersessionkey"
MSG_SEC_CHECK = "/wxa/msg_sec_check"

_ALPHABET = string.ascii_letters + string.digits


@dataclass
class PhoneCode:
    """A ``getPhoneNumber`` code, bound to an app, a user and the number shared."""

    code: str
    appid: str
    handle: str
    pure_phone_number: str
    country_code: str
    issued_at: float
    used: bool = False


def default_phone(handle: str) -> str:
    """A stable, plausible mainland number for a user handle (``13`` + 9 digits)."""
    digest = int.from_bytes(hashlib.sha256(f"phone\x1f{handle}".encode()).digest()[:8], "big")
    return f"13{digest % 10**9:09d}"


class ServerAPI:
    """The fake's token-taking APIs; :attr:`tokens` issues and checks the tokens."""

    def __init__(self, state: WeChatState) -> None:
        self.state = state
        self.tokens = TokenAuthority(state)
        self._codes: dict[str, PhoneCode] = {}
        self._phones: dict[tuple[str, str], tuple[str, str]] = {}
        #: Words msg_sec_check judges risky, and words it sends to review.
        self.risky_words: set[str] = {"违禁词", "risky-word"}
        self.review_words: set[str] = {"待审词", "review-word"}
        state.on_reset(self.reset)

    def reset(self) -> None:
        """Forget phone codes and numbers (the token authority resets itself)."""
        with self.state.lock:
            self._codes.clear()
            self._phones.clear()

    def phone_code(
        self,
        appid: str,
        user: str = "alice",
        phone_number: str | None = None,
        country_code: str = "86",
    ) -> dict[str, str]:
        """What tapping the ``getPhoneNumber`` button yields: a code for the user's number.

        ``phone_number`` (digits, without the country code) becomes the user's number;
        by default each user has a stable made-up one. Returns ``{"code", "openid",
        "phoneNumber", "purePhoneNumber", "countryCode"}``.
        """
        if phone_number is not None and not (
            phone_number.isdigit() and 5 <= len(phone_number) <= 15
        ):
            raise ValueError("phoneNumber must be 5 to 15 digits, without the country code")
        if not (country_code.isdigit() and 1 <= len(country_code) <= 4):
            raise ValueError("countryCode must be 1 to 4 digits")
        with self.state.lock:
            account = self.state.user(appid, user)
            if phone_number is not None:
                self._phones[(appid, user)] = (phone_number, country_code)
            pure, country = self._phones.setdefault(
                (appid, user), (default_phone(user), country_code)
            )
            code = "".join(secrets.choice(_ALPHABET) for _ in range(32))
            self._codes[code] = PhoneCode(code, appid, user, pure, country, self.state.now())
            return {"code": code, "openid": account.openid, **_numbers(pure, country)}

    # ----------------------------------------------------------------- handlers

    def get_phone_number(self, request: Request) -> Response:
        now = self.state.now()
        appid = self.tokens.check(request.query.get("access_token", ""))
        if isinstance(appid, int):
            return fail(appid, now)
        try:
            body = request.json()
        except ValueError:
            return fail(47001, now)
        code = body.get("code") if isinstance(body, dict) else None
        if not isinstance(body, dict) or (code is not None and not isinstance(code, str)):
            return fail(47001, now)
        if not code:
            return fail(41008, now)
        with self.state.lock:
            found = self._codes.get(code)
            if (
                found is None
                or found.appid != appid
                or found.used
                or now - found.issued_at > CODE_TTL
            ):
                return fail(40029, now)
            openid = body.get("openid")
            if openid is not None and openid != self.state.user(appid, found.handle).openid:
                return fail(40003, now)
            found.used = True
        info: dict[str, Any] = _numbers(found.pure_phone_number, found.country_code)
        info["countryCode"] = int(found.country_code)  # a number here, a string elsewhere
        info["watermark"] = {"timestamp": int(now), "appid": appid}
        return Response.json({"errcode": 0, "errmsg": "ok", "phone_info": info})

    def _signed_user(self, request: Request) -> tuple[str, str] | int:
        """``(appid, handle)`` of a correctly signed session-key request, or the errcode."""
        query = request.query
        appid = self.tokens.check(query.get("access_token", ""))
        if isinstance(appid, int):
            return appid
        if query.get("sig_method") != "hmac_sha256":
            return 87008
        try:
            account = self.state.user_by_openid(appid, query.get("openid", ""))
        except KeyError:
            return 40003
        expected = hmac_signature(account.session_key, "")
        if not hmac.compare_digest(expected.encode(), query.get("signature", "").encode()):
            return 87009
        return appid, account.handle

    def check_session(self, request: Request) -> Response:
        with self.state.lock:
            found = self._signed_user(request)
        if isinstance(found, int):
            return fail(found, self.state.now())
        return Response.json({"errcode": 0, "errmsg": "ok"})

    def reset_session_key(self, request: Request) -> Response:
        with self.state.lock:
            found = self._signed_user(request)
            if isinstance(found, int):
                return fail(found, self.state.now())
            appid, handle = found
            new_key = self.state.rotate_session_key(appid, handle)
            openid = self.state.user(appid, handle).openid
        return Response.json(
            {"errcode": 0, "errmsg": "ok", "openid": openid, "session_key": new_key}
        )

    def msg_sec_check(self, request: Request) -> Response:
        now = self.state.now()
        appid = self.tokens.check(request.query.get("access_token", ""))
        if isinstance(appid, int):
            return fail(appid, now)
        try:
            body = request.json()
        except ValueError:
            return fail(47001, now)
        if (
            not isinstance(body, dict)
            or not isinstance(body.get("content"), str)
            or body.get("version") != 2
            or body.get("scene") not in (1, 2, 3, 4)
            or not isinstance(body.get("openid"), str)
        ):
            return fail(47001, now)
        with self.state.lock:
            try:
                self.state.user_by_openid(appid, body["openid"])
            except KeyError:
                return fail(40003, now)
        content = body["content"]
        if any(word in content for word in self.risky_words):
            suggest, label = "risky", 20001
        elif any(word in content for word in self.review_words):
            suggest, label = "review", 21000
        else:
            suggest, label = "pass", 100
        return Response.json(
            {
                "errcode": 0,
                "errmsg": "ok",
                "result": {"suggest": suggest, "label": label},
                "detail": [
                    {"strategy": "content_model", "errcode": 0, "suggest": suggest, "label": label}
                ],
                "trace_id": secrets.token_hex(12),
            }
        )


def _numbers(pure: str, country: str) -> dict[str, str]:
    # WeChat's phoneNumber carries the country code only outside mainland China.
    number = pure if country == "86" else f"+{country}{pure}"
    return {"phoneNumber": number, "purePhoneNumber": pure, "countryCode": country}


def register(router: Router, state: WeChatState) -> ServerAPI:
    """Add the token endpoints, these APIs and their control endpoints; return the API."""
    api = ServerAPI(state)
    tokens.register(router, api.tokens)
    router.add("POST", PHONE_NUMBER, api.get_phone_number)
    router.add("GET", CHECK_SESSION, api.check_session)
    router.add("GET", RESET_SESSION_KEY, api.reset_session_key)
    router.add("POST", MSG_SEC_CHECK, api.msg_sec_check)

    def phone_code(body: dict[str, Any]) -> Any:
        number = body.get("phoneNumber")
        if number is not None and not isinstance(number, str):
            raise ValueError("'phoneNumber' must be a string of digits")
        return api.phone_code(
            _string(body, "appid", state.default_appid),
            _string(body, "user", "alice"),
            number,
            _string(body, "countryCode", "86"),
        )

    def expire_tokens(body: dict[str, Any]) -> Any:
        appid = body.get("appid")
        if appid is not None and not isinstance(appid, str):
            raise ValueError("'appid' must be a string")
        return {"ok": True, "expired": api.tokens.expire_all(appid)}

    phone_keys = ("appid", "user", "phoneNumber", "countryCode")
    router.add("POST", f"{PREFIX}/phone_code", _json_endpoint(phone_code, phone_keys))
    router.add("POST", f"{PREFIX}/expire_tokens", _json_endpoint(expire_tokens, ("appid",)))
    return api
