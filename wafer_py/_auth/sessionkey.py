"""The session's ``session_key``, sealed in the store: encrypted data from the client
decrypted with it, and WeChat asked whether it is still valid or to issue a new one.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ..crypto import decrypt_data
from ..exceptions import InvalidSignature, StaleSessionKey
from ..models import Session
from ..plans import StoreCall, run
from .base import AuthBase
from .identity import Authenticated

__all__ = ["SessionKeys"]


class SessionKeys(AuthBase):
    """:meth:`decrypt`, :meth:`check_session_key` and :meth:`reset_session_key`."""

    # -- encrypted data ---------------------------------------------------------
    def decrypt(self, who: Authenticated, encrypted_data: str, iv: str) -> dict[str, Any]:
        """Decrypt ``encryptedData`` with the session's stored ``session_key`` and check it.

        Checks the watermark's appid and that any ``openId`` inside is the session's user.
        """
        return decrypt_data(
            self._session_key(who),
            encrypted_data,
            iv,
            appid=self.config.appid,
            openid=who.openid,
            max_age=self.config.watermark_max_age,
            now=self.clock(),
        )

    def check_session_key(self, who: Authenticated) -> bool:
        """Ask WeChat whether the session's stored ``session_key`` is still valid.

        ``False`` means encrypted data from the client will not decrypt: log in again.
        """
        return self.wechat_api.check_session_key(who.openid, self._session_key(who))

    def reset_session_key(self, who: Authenticated) -> Authenticated:
        """Have WeChat issue a new ``session_key`` for the user (``resetusersessionkey``,
        signed with the session's current key) and write it into every live session of
        the user; return the identity with the new key.

        WeChat invalidates the old key at once, so every session of the user is resealed
        under the new one (one store write per live session), not just this one. Raises
        :class:`~wafer_py.exceptions.StaleSessionKey` if the session's key is no longer
        the user's current one (WeChat refuses the signature): log in again.
        """
        try:
            new_key = self.wechat_api.reset_session_key(who.openid, self._session_key(who))
        except InvalidSignature as exc:
            if exc.errcode == 87009:  # the signature: the key is not the current one
                raise StaleSessionKey("this session's key is stale; log in again") from None
            raise
        now = self.clock()
        session = who.session
        listed: list[Session] = run(StoreCall.plan(self.store, "list_sessions", who.openid))
        for live in listed:
            if live.is_expired(now):
                continue
            sealed = self.secrets.seal(new_key, context=who.openid)
            plan = StoreCall.plan(self.store, "reseal_session", live.id, sealed, openid=who.openid)
            if run(plan) and live.id == session.id:
                session = replace(session, sealed_session_key=sealed)
        self._forget("user", who.openid)
        return Authenticated(who.user, session, who.generation)

    def _session_key(self, who: Authenticated) -> str:
        try:
            return self.secrets.unseal(who.session.sealed_session_key, context=who.session.openid)
        except ValueError:
            # Sealed under a key no longer configured: the data cannot be opened.
            raise StaleSessionKey("this session's key cannot be opened; log in again") from None
