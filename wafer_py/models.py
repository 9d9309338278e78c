"""The records wafer_py keeps: users and sessions.

Both are plain frozen dataclasses, shared by every store. A :class:`Session` holds only
the *keyed hash* of its skey and a *sealed* ``session_key``; neither appears in its repr.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

__all__ = ["User", "Session", "PROFILE_FIELDS", "PLACEHOLDER_NICKNAMES", "PLACEHOLDER_AVATARS"]

#: The profile fields kept from WeChat's user info (``wx.getUserInfo`` and friends).
PROFILE_FIELDS = ("nickName", "avatarUrl", "gender", "language", "city", "province", "country")


@dataclass(frozen=True, slots=True)
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


#: The nickname WeChat gives instead of the user's since 2021-04 (getUserInfo) and
#: 2022-11 (getUserProfile).
PLACEHOLDER_NICKNAMES = frozenset({"微信用户"})
#: WeChat's grey default avatar: the one anonymous profiles carry (compared in its
#: ``/0`` size; WeChat serves it at ``/132``) and the one of WeChat's sample code.
PLACEHOLDER_AVATARS = frozenset(
    {
        "https://thirdwx.qlogo.cn/mmopen/vi_32/POgEwh4mIHO4nibH0KlMECNjjGxQUq24ZEaGT4poC6icRicc"
        "VGKSyXwibcPq4BWmiaIGuG1icwxaQX6grC9VemZoJ8rg/0",
        "https://mmbiz.qpic.cn/mmbiz/icTdbqWNOwNRna42FI242Lcia07jQodd2FJGIYQfG0LAJGFxM4FbnQP6y"
        "fMxBgJ0F3YRqJCJ1aPAK2dQagdusBZg/0",
    }
)


def real_profile(
    profile: dict[str, Any],
    *,
    nicknames: frozenset[str] = PLACEHOLDER_NICKNAMES,
    avatars: frozenset[str] = PLACEHOLDER_AVATARS,
) -> dict[str, Any]:
    """The fields of ``profile`` that say something about the user.

    WeChat's anonymous profile (nickname "微信用户", the grey avatar, gender 0, empty
    region) is what every client gets today: its values are placeholders, not the user's,
    and must never overwrite a nickname or avatar the user set. They are dropped here, as
    are empty or zero values (``nicknames`` and ``avatars`` are the placeholders to drop;
    the configured defaults join WeChat's). ``language`` is kept: it is never a placeholder.
    """
    kept: dict[str, Any] = {}
    for name, value in profile.items():
        if value is None or value == "" or (name == "gender" and value == 0):
            continue
        if isinstance(value, str):
            if name == "nickName" and value.strip() in nicknames:
                continue
            if name == "avatarUrl" and avatar_key(value) in avatars:
                continue
        kept[name] = value
    return kept


def avatar_key(url: str) -> str:
    """The form in which avatar URLs are compared."""
    # WeChat serves the same avatar over http and https and with a size suffix
    # (/0, /46, /64, /96, /132): compare the https, /0 form.
    url = url.strip()
    if url.startswith("http://"):
        url = "https://" + url[len("http://") :]
    head, _, size = url.rpartition("/")
    if size in ("0", "46", "64", "96", "132"):
        url = head + "/0"
    return url


@dataclass(frozen=True, slots=True)
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
