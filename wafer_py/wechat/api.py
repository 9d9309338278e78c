"""WeChat's server APIs that take the global ``access_token``.

:class:`WeChatAPI` calls them with a token from an
:class:`~wafer_py.wechat.tokens.AccessTokenCache`. When WeChat rejects the token (40001, 40014,
42001) it refreshes it once, through the cache (so concurrent callers share one
refresh), and retries the call once; a second rejection is raised. Nothing loops.

Which calls are retried on a network error or errcode -1:

===============================  ============  =====================================
API                              retried       why
===============================  ============  =====================================
``getuserphonenumber``           no            the code is single-use and may be spent
``checksession``                 yes           a read
``resetusersessionkey``          no            a second reset would fail on the old key
``msg_sec_check`` (v2)           yes           a read
===============================  ============  =====================================

Rate limits (45009 :class:`~wafer_py.exceptions.DailyQuotaExceeded`, 45011
:class:`~wafer_py.exceptions.RateLimited`) are raised at once, never retried.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from ..crypto import hmac_signature
from ..exceptions import InvalidAccessToken, InvalidCode, InvalidSignature, WeChatError
from . import WeChatClient
from .phone import PhoneNumber
from .tokens import AccessTokenCache

__all__ = ["WeChatAPI", "PHONE_NUMBER", "CHECK_SESSION", "RESET_SESSION_KEY", "MSG_SEC_CHECK"]

logger = logging.getLogger("wafer_py")

PHONE_NUMBER = "/wxa/business/getuserphonenumber"
CHECK_SESSION = "/wxa/checksession"
RESET_SESSION_KEY = "/wxa/resetusersessionkey"
MSG_SEC_CHECK = "/wxa/msg_sec_check"
#: msg_sec_check's scenes: 1 profile, 2 comment, 3 forum, 4 social log.
SCENE_PROFILE = 1

T = TypeVar("T")


class WeChatAPI:
    """The token-taking server APIs of one mini-program.

    ``client`` does the HTTP (its AppID is the app); ``tokens`` supplies the token.

    Example::

        client = WeChatClient(appid, secret)
        api = WeChatAPI(client, AccessTokenCache(store, client))
        phone = api.get_phone_number(code)          # PhoneNumber
        ok = api.check_session_key(openid, session_key)
    """

    def __init__(self, client: WeChatClient, tokens: AccessTokenCache) -> None:
        self.client = client
        self.tokens = tokens

    def __repr__(self) -> str:
        return f"WeChatAPI(appid={self.client.appid!r}, tokens={self.tokens!r})"

    def access_token(self) -> str:
        """A valid ``access_token`` from the shared cache."""
        return self.tokens.get()

    def call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
        retry: bool = False,
    ) -> dict[str, Any]:
        """Call any token-taking API ``path``; ``access_token`` is added to the query.

        ``retry`` as in :meth:`WeChatClient.request`: only for calls safe to repeat.
        """

        def send(token: str) -> dict[str, Any]:
            query = {**(params or {}), "access_token": token}
            return self.client.request(method, path, params=query, body=body, retry=retry)

        return self._with_token(path, send)

    def _with_token(self, path: str, send: Callable[[str], T]) -> T:
        token = self.tokens.get()
        sent_at = self.tokens.clock()
        try:
            return send(token)
        except InvalidAccessToken as exc:
            logger.info(
                "wafer_py: WeChat rejected the access_token on %s (errcode %s); "
                "retrying once with a fresh one",
                path,
                exc.errcode,
            )
            fresh = self.tokens.refresh(rejected=token, since=sent_at)
            if fresh == token:
                # WeChat hands back the token it refuses and forced refreshes are
                # backing off: the retry would be refused too.
                raise
        return send(fresh)

    # ------------------------------------------------------------- phone number

    def get_phone_number(self, code: str, openid: str | None = None) -> PhoneNumber:
        """Exchange a ``getPhoneNumber`` code for the user's phone number.

        ``openid``, when given, is sent along so WeChat can tie the code to that user.
        Not retried on -1 or network errors (the code may have been spent); an invalid,
        expired or used code raises :class:`~wafer_py.exceptions.InvalidCode`.
        """
        body = {"code": code} if openid is None else {"code": code, "openid": openid}
        try:
            data = self.call("POST", PHONE_NUMBER, body=body)
        except InvalidCode as exc:
            raise type(exc)(
                exc.errcode,
                exc.errmsg,
                "the phone number code is invalid, expired or already used; "
                "ask the user to tap the phone number button again",
            ) from None
        return PhoneNumber.from_wechat(data.get("phone_info"))

    # -------------------------------------------------------------- session key

    def check_session_key(self, openid: str, session_key: str) -> bool:
        """Whether ``session_key`` is still the user's valid key (``/wxa/checksession``).

        ``False`` when WeChat answers 87009 (the key was rotated or expired).
        """
        try:
            self.call("GET", CHECK_SESSION, params=_signed(openid, session_key), retry=True)
        except InvalidSignature as exc:
            if exc.errcode == 87009:
                return False
            raise
        return True

    def reset_session_key(self, openid: str, session_key: str) -> str:
        """Make WeChat issue a new ``session_key`` for the user; return it.

        ``session_key`` (the current one) signs the request and is invalid afterwards.
        The new key keeps the old one's expiry. Not retried.
        """
        data = self.call("GET", RESET_SESSION_KEY, params=_signed(openid, session_key))
        new_key = data.get("session_key")
        if not isinstance(new_key, str) or not new_key:
            raise WeChatError("WeChat's resetusersessionkey answer has no session_key")
        return new_key

    # ------------------------------------------------------------ content check

    def check_text(self, content: str, openid: str, *, scene: int = SCENE_PROFILE) -> str:
        """WeChat's verdict on user text (``msg_sec_check`` v2): ``"pass"``, ``"review"``
        or ``"risky"``. ``openid`` is the author, who must have used the mini-program in
        the last two hours (else WeChat answers 61010)."""
        body = {"content": content, "version": 2, "scene": scene, "openid": openid}
        data = self.call("POST", MSG_SEC_CHECK, body=body, retry=True)
        result = data.get("result")
        suggest = result.get("suggest") if isinstance(result, dict) else None
        if suggest not in ("pass", "review", "risky"):
            raise WeChatError("WeChat's msg_sec_check answer has no suggest")
        return str(suggest)


def _signed(openid: str, session_key: str) -> dict[str, str]:
    # WeChat's login-state signature of an empty message, keyed by the session_key string.
    return {
        "openid": openid,
        "signature": hmac_signature(session_key, ""),
        "sig_method": "hmac_sha256",
    }
