"""The web login's cookies: the signed web-session cookie, the browser's nonce cookie.

The browser holds who it is (openid, scope, nickname, avatar) and a random web-session id,
signed and timed with itsdangerous under the server's :class:`~wafer_py.crypto.Keyring`
(the newest key signs, every key verifies), so a page needs no store read to know its
user. The OAuth tokens never go in it: they stay sealed in the store.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping
from typing import Any

from itsdangerous import BadData, URLSafeTimedSerializer

from ..crypto import Keyring
from .access import WebUser
from .state import ClockedSigner

__all__ = ["SessionCookie", "WebCookies", "set_cookie"]

#: The cookie's short field names, by the names of :class:`~wafer_py.web.access.WebUser`.
_FIELDS = {
    "session_id": "s",
    "openid": "o",
    "scope": "c",
    "unionid": "u",
    "nickname": "n",
    "avatar": "a",
}
_REQUIRED = ("session_id", "openid", "scope")


class SessionCookie:
    """Encode a web session's fields into a cookie value and back.

    ``max_age`` (seconds) is how old a cookie :meth:`loads` still accepts; ``clock``
    tells the time of signing and checking (tests drive it).
    """

    def __init__(
        self,
        keys: Keyring,
        *,
        max_age: int,
        clock: Callable[[], float] = time.time,
        salt: str = "wafer_py.web-session",
    ) -> None:
        self.max_age = max_age
        self._serializer = URLSafeTimedSerializer(
            keys.oldest_first(),
            salt=salt,
            signer=ClockedSigner,
            signer_kwargs={"clock": clock, "digest_method": hashlib.sha256},
        )

    def __repr__(self) -> str:
        return f"SessionCookie(max_age={self.max_age})"

    def dumps(self, fields: Mapping[str, Any]) -> str:
        """The signed value for ``fields`` (``session_id``, ``openid``, ``scope``,
        ``unionid``, ``nickname``, ``avatar``)."""
        return self._serializer.dumps({short: fields.get(name) for name, short in _FIELDS.items()})

    def loads(self, value: str | None) -> dict[str, Any] | None:
        """The fields of a cookie value, or ``None`` if it is missing, forged, expired or
        malformed (never an exception: a bad cookie is no session)."""
        if not value:
            return None
        try:
            data = self._serializer.loads(value, max_age=self.max_age)
            fields = {name: data.get(short) for name, short in _FIELDS.items()}
        except (BadData, TypeError, AttributeError):
            return None
        if any(fields[name] is None for name in _REQUIRED):
            return None
        return {
            **{name: str(fields[name]) for name in _REQUIRED},
            "unionid": fields["unionid"] or None,
            "nickname": str(fields["nickname"] or ""),
            "avatar": str(fields["avatar"] or ""),
        }


def set_cookie(name: str, value: str, *, max_age: int, secure: bool) -> tuple[str, str]:
    """A ``Set-Cookie`` header: HttpOnly, SameSite=Lax, for the whole site, Secure if asked.
    ``max_age=0`` with an empty value clears the cookie."""
    return (
        "Set-Cookie",
        f"{name}={value}; Max-Age={max_age}; Path=/; HttpOnly; SameSite=Lax"
        + ("; Secure" if secure else ""),
    )


class WebCookies:
    """The ``Set-Cookie`` lines of a web login, and its session cookie read back as a user.

    ``name`` holds the web session; ``name + "_nonce"`` (:attr:`nonce_name`) the random
    nonce of the browser that started a login, kept ``nonce_max_age`` seconds (as long as
    a state lives). ``secure`` None means "if ``public_url`` or the request is https".
    """

    def __init__(
        self,
        keys: Keyring,
        *,
        name: str,
        max_age: int,
        nonce_max_age: int,
        secure: bool | None,
        public_url: str | None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.name = name
        self.nonce_name = name + "_nonce"
        self.max_age = max_age
        self.nonce_max_age = nonce_max_age
        self.secure = secure
        self.public_url = public_url
        self.codec = SessionCookie(keys, max_age=max_age, clock=clock)

    def __repr__(self) -> str:
        return f"WebCookies(name={self.name!r})"

    def read(self, value: str | None) -> WebUser | None:
        """The user a session cookie names (not yet checked against the store)."""
        fields = self.codec.loads(value)
        return None if fields is None else WebUser(**fields)

    def session(self, user: WebUser, secure: bool = False) -> tuple[str, str]:
        """The ``Set-Cookie`` line of ``user``'s web session."""
        value = self.codec.dumps(
            {
                "session_id": user.session_id,
                "openid": user.openid,
                "scope": user.scope,
                "unionid": user.unionid,
                "nickname": user.nickname,
                "avatar": user.avatar,
            }
        )
        return set_cookie(self.name, value, max_age=self.max_age, secure=self._secure(secure))

    def clear(self, secure: bool = False) -> tuple[str, str]:
        """The ``Set-Cookie`` line that removes the session cookie."""
        return set_cookie(self.name, "", max_age=0, secure=self._secure(secure))

    def nonce(self, nonce: str, secure: bool = False) -> tuple[str, str]:
        """The ``Set-Cookie`` line of the browser's nonce (a callback after it lapses
        fails as expired anyway)."""
        max_age, secure = self.nonce_max_age, self._secure(secure)
        return set_cookie(self.nonce_name, nonce, max_age=max_age, secure=secure)

    def _secure(self, secure: bool) -> bool:
        if self.secure is not None:
            return self.secure
        return secure or (self.public_url is not None and self.public_url.startswith("https://"))
