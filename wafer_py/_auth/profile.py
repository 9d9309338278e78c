"""What a user tells about themselves, stored on the user: the profile inside
``encryptedData`` (the seed flow), a nickname and avatar filled in, a phone number.
"""

from __future__ import annotations

from typing import Any

from ..exceptions import InvalidSession, MalformedEncryptedData, WeChatError
from ..plans import Plan, StoreCall, run
from ..wechat.phone import PhoneNumber
from .identity import Authenticated
from .sessionkey import SessionKeys

__all__ = ["Profiles"]


class Profiles(SessionKeys):
    """The seed flow (:meth:`update_profile`), :meth:`set_profile` and the phone number."""

    # -- profiles ---------------------------------------------------------------
    def update_profile(self, who: Authenticated, encrypted_data: str, iv: str) -> Authenticated:
        """The seed flow: store the profile inside ``encryptedData``; return the new identity."""
        return run(self.profile_update(who, encrypted_data, iv))

    def profile_update(
        self, who: Authenticated, encrypted_data: str, iv: str
    ) -> Plan[Authenticated]:
        """:meth:`update_profile` as a plan (:mod:`wafer_py.plans`)."""
        data = self.decrypt(who, encrypted_data, iv)
        found = data.get("unionId")
        unionid = found if isinstance(found, str) and found else None
        profile = self.real_profile(data)
        if not profile and (unionid is None or who.user.unionid):
            return who  # an anonymous profile: nothing to store
        user = yield StoreCall(
            self.store,
            "update_profile",
            (who.openid, profile),
            {"now": self.clock(), "unionid": unionid},
        )
        self._forget("user", who.openid)
        if user is None:
            raise InvalidSession()
        return Authenticated(user, who.session, who.generation)

    def set_profile(
        self,
        who: Authenticated,
        nickname: str | None = None,
        avatar_url: str | None = None,
        *,
        own_avatar_prefix: str | None = None,
    ) -> Authenticated:
        """Store what the user filled in (a nickname, an avatar URL); return the new identity.

        Checked first (:mod:`wafer_py.fillin`): a nickname of 1-64 characters once
        trimmed, no control characters; an https avatar URL or one starting with
        ``own_avatar_prefix`` (this server's avatar route). ``InvalidProfile`` (400) and
        nothing stored otherwise. With ``config.check_nicknames`` the nickname also goes
        to WeChat's content check: ``ContentRejected`` (400) if it is judged risky.
        """
        from ..exceptions import ContentRejected
        from ..fillin import check_avatar_url, clean_nickname

        profile: dict[str, Any] = {}
        if nickname is not None:
            profile["nickName"] = clean_nickname(nickname)
        if avatar_url is not None:
            profile["avatarUrl"] = check_avatar_url(avatar_url, own_prefix=own_avatar_prefix)
        if not profile:
            return who
        # "review" is WeChat's "not sure": kept, as there is no one here to review it
        if (
            "nickName" in profile
            and self.config.check_nicknames
            and self.wechat_api.check_text(profile["nickName"], who.openid) == "risky"
        ):
            raise ContentRejected()
        now = self.clock()
        user = run(StoreCall.plan(self.store, "update_profile", who.openid, profile, now=now))
        self._forget("user", who.openid)
        if user is None:
            raise InvalidSession()
        return Authenticated(user, who.session, who.generation)

    # -- phone numbers ----------------------------------------------------------
    def fetch_phone_number(self, who: Authenticated, code: str) -> PhoneNumber:
        """Exchange a ``getPhoneNumber`` code for the user's number and store it on the user.

        The code goes to WeChat with the session's openid; raises
        :class:`~wafer_py.exceptions.InvalidCode` for a bad, used or expired code.
        """
        phone = self.wechat_api.get_phone_number(code, openid=who.openid)
        self.set_phone_number(who, phone)
        return phone

    def decrypt_phone_number(self, who: Authenticated, encrypted_data: str, iv: str) -> PhoneNumber:
        """The legacy flow: the phone number inside ``encryptedData`` (not stored)."""
        data = self.decrypt(who, encrypted_data, iv)
        try:
            return PhoneNumber.from_wechat(data)
        except WeChatError:
            raise MalformedEncryptedData("encryptedData holds no phone number") from None

    def set_phone_number(self, who: Authenticated, phone: PhoneNumber | None) -> Authenticated:
        """Store (or with ``None`` clear) the user's phone number; return the new identity."""
        user = run(
            StoreCall.plan(
                self.store,
                "update_phone",
                who.openid,
                None if phone is None else phone.e164,
                now=self.clock(),
            )
        )
        self._forget("user", who.openid)
        if user is None:
            raise InvalidSession()
        return Authenticated(user, who.session, who.generation)
