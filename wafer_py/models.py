"""The records wafer_py keeps: users and sessions.

Both are plain frozen dataclasses, shared by every store. A :class:`Session` holds only
the *keyed hash* of its skey and a *sealed* ``session_key``; neither appears in its repr.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

__all__ = ["User", "Session", "PROFILE_FIELDS"]

#: The profile fields kept from WeChat's user info (``wx.getUserInfo`` and friends).
PROFILE_FIELDS = ("nickName", "avatarUrl", "gender", "language", "city", "province", "country")


@dataclass(frozen=True)
class User:
    """A mini-program user, keyed by ``openid``.

    ``phone`` is the phone number the user shared (E.164, ``+8613800138000``), or
    ``None``. It is personal data: not part of :meth:`userinfo` (so not of the login
    answer), nor of ``repr``.
    """

    openid: str
    unionid: str | None = None
    profile: dict[str, Any] = field(default_factory=dict)
    created_at: float = 0.0
    updated_at: float = 0.0
    phone: str | None = field(default=None, repr=False)

    @property
    def nickname(self) -> str:
        return str(self.profile.get("nickName", ""))

    def userinfo(self) -> dict[str, Any]:
        """The user as the Wafer clients expect it (WeChat's camelCase field names)."""
        info: dict[str, Any] = {"openId": self.openid}
        info.update(self.profile)
        if self.unionid:
            info["unionId"] = self.unionid
        return info

    def with_profile(
        self, profile: dict[str, Any], *, now: float, unionid: str | None = None
    ) -> User:
        merged = dict(self.profile)
        merged.update(profile)
        return replace(self, profile=merged, updated_at=now, unionid=unionid or self.unionid)


def clean_profile(data: dict[str, Any]) -> dict[str, Any]:
    """Keep the profile fields of decrypted user info (drops ids and the watermark)."""
    return {k: data[k] for k in PROFILE_FIELDS if k in data}


@dataclass(frozen=True)
class Session:
    """One login of one user.

    ``skey_hash`` is the keyed hash of the skey handed to the client and
    ``sealed_session_key`` the WeChat ``session_key`` sealed under the server's key; the
    store never sees either in the clear. ``expires_at`` is the sliding expiry, never
    later than ``created_at`` plus the configured maximum age.
    """

    id: str
    openid: str
    skey_hash: str = field(repr=False)
    sealed_session_key: str = field(repr=False)
    created_at: float
    last_seen: float
    expires_at: float

    def is_expired(self, now: float) -> bool:
        return now >= self.expires_at
