"""Logins: a ``wx.login`` code exchanged with WeChat, the user registered or updated, a
session opened.

Each login passes a gate first (:mod:`wafer_py.logingate`: a per-process cap, a bounded
queue, a deadline), then runs as one plan for both runners. Opening a session keeps the
user's count bounded (``max_sessions_per_user``) and shortens the sessions it supersedes
(``superseded_ttl``).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..crypto import decrypt_data, new_session_id, new_skey
from ..exceptions import LoginAbandoned, LoginQueueTimeout
from ..logingate import AsyncLoginGate, ThreadLoginGate
from ..models import Session
from ..plans import Plan, StoreCall, WeChatLogin, arun, run
from .base import AuthBase
from .identity import LoginResult

if TYPE_CHECKING:
    from ..wechat.client import Code2Session

__all__ = ["LoginFlow"]


class LoginFlow(AuthBase):
    """:meth:`login`, :meth:`alogin` and :meth:`complete_login`."""

    _thread_gate: ThreadLoginGate
    _login_gate: tuple[asyncio.AbstractEventLoop, AsyncLoginGate] | None

    def login(
        self,
        code: str,
        encrypted_data: str | None = None,
        iv: str | None = None,
        *,
        legacy: bool = False,
        connected: Callable[[], bool] | None = None,
    ) -> LoginResult:
        """Exchange a ``wx.login`` code, register or update the user, open a session.

        With ``encrypted_data`` and ``iv`` (or ``legacy=True`` and no IV: the 2016 format),
        the profile inside is checked against this login's ``session_key`` and stored.
        Without them a user never seen before is registered with the default nickname and
        avatar.

        At most ``config.max_concurrent_logins`` run at once in a process and
        ``config.max_queued_logins`` more wait for a slot; beyond, or once the login's
        time (``login_timeout``) is up, it is refused with
        :class:`~wafer_py.exceptions.LoginsBusy`. WeChat gets the time that is left.
        ``connected`` says whether the client is still there: if not, WeChat is not called.
        """
        deadline = time.monotonic() + self.login_timeout
        self._thread_gate.acquire(deadline)
        try:
            if connected is not None and not connected():
                raise LoginAbandoned()
            plan = self._login(code, encrypted_data, iv, legacy, deadline, time.monotonic)
            return run(plan)
        finally:
            self._thread_gate.release()

    @property
    def login_timeout(self) -> float:
        """Seconds a login may take from its arrival (``login_timeout``, else
        ``wechat_timeout``)."""
        return self.config.login_timeout or self.config.wechat_timeout

    async def alogin(
        self,
        code: str,
        encrypted_data: str | None = None,
        iv: str | None = None,
        *,
        legacy: bool = False,
        gone: asyncio.Future[None] | None = None,
    ) -> LoginResult:
        """:meth:`login` for async callers: WeChat is called on the event loop where the
        client can (no thread waits on it), the store in a worker thread if it blocks.

        At most ``config.max_concurrent_logins`` run at once on one event loop; others
        wait for a slot. Without the cap, a burst of logins gets WeChat's answers back
        all together, and handling them in one go stalls every other request on the loop.
        The wait is bounded as in :meth:`login`; ``gone`` is done when the client hangs
        up, which ends the wait (:class:`~wafer_py.exceptions.LoginAbandoned`) and keeps
        the login from calling WeChat.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.login_timeout
        gate = self._login_slots()
        await gate.acquire(deadline, gone)
        try:
            if gone is not None and gone.done():
                raise LoginAbandoned()
            return await arun(self._login(code, encrypted_data, iv, legacy, deadline, loop.time))
        finally:
            gate.release()

    def _login_slots(self) -> AsyncLoginGate:
        """The running loop's login gate (its futures belong to one loop)."""
        loop = asyncio.get_running_loop()
        gate = self._login_gate
        if gate is None or gate[0] is not loop:
            slots = AsyncLoginGate(
                self.config.max_concurrent_logins, self.config.max_queued_logins, self.observer
            )
            gate = self._login_gate = (loop, slots)
        return gate[1]

    def _login(
        self,
        code: str,
        encrypted_data: str | None,
        iv: str | None,
        legacy: bool,
        deadline: float,
        clock: Callable[[], float],
    ) -> Plan[LoginResult]:
        """The login, once for both runners: WeChat gets the time left before ``deadline``."""
        if deadline - clock() <= 0:
            raise LoginQueueTimeout()
        wx = yield WeChatLogin(self.wechat, code, deadline, clock)
        return (yield from self._complete(wx, encrypted_data, iv, legacy))

    def complete_login(
        self,
        wx: Code2Session,
        encrypted_data: str | None = None,
        iv: str | None = None,
        *,
        legacy: bool = False,
    ) -> LoginResult:
        """The part of :meth:`login` after WeChat's answer: check the encrypted profile,
        register or update the user, open a session."""
        return run(self._complete(wx, encrypted_data, iv, legacy))

    def _complete(
        self, wx: Code2Session, encrypted_data: str | None, iv: str | None, legacy: bool
    ) -> Plan[LoginResult]:
        profile: dict[str, Any] | None = None
        unionid = wx.unionid
        if encrypted_data and (iv or legacy):
            data = decrypt_data(
                wx.session_key,
                encrypted_data,
                iv if iv else None,
                appid=self.config.appid,
                openid=wx.openid,
                max_age=self.config.watermark_max_age,
                now=self.clock(),
            )
            profile = self.real_profile(data)
            found = data.get("unionId")
            unionid = unionid or (found if isinstance(found, str) else None)

        now = self.clock()
        defaults = {
            "nickName": self.config.default_nickname,
            "avatarUrl": self.config.default_avatar,
        }
        user = yield StoreCall(
            self.store,
            "ensure_user",
            (wx.openid,),
            {"unionid": unionid, "profile": {**defaults, **(profile or {})}, "now": now},
        )
        created = user.created_at == now
        if not created and user.updated_at == now:  # its unionid was filled in
            self._forget("user", wx.openid)
        if profile and not created:
            updated = yield StoreCall(
                self.store,
                "update_profile",
                (wx.openid, profile),
                {"now": now, "unionid": unionid},
            )
            self._forget("user", wx.openid)
            user = updated or user

        skey = new_skey()
        created_at, superseded = yield from self._prune(wx.openid, now)
        session = Session(
            id=new_session_id(),
            openid=wx.openid,
            skey_hash=self.secrets.hash_skey(skey),
            sealed_session_key=self.secrets.seal(wx.session_key, context=wx.openid),
            created_at=created_at,
            last_seen=now,
            expires_at=now + min(self.config.session_ttl, self.config.session_max_age),
        )
        yield StoreCall(self.store, "create_session", (session,))
        try:
            if superseded:  # after the new session exists: a failed login shortens nothing
                cut = now + self.config.superseded_ttl
                kwargs = {"expires_at": cut, "now": now}
                yield StoreCall(self.store, "supersede_sessions", (wx.openid, superseded), kwargs)
        finally:
            # A login may change the user's other sessions (their expiry cut short once
            # superseded): this process forgets them after the last write of the login.
            self._forget("user", wx.openid)
        return LoginResult(user, session, skey, created)

    def _prune(self, openid: str, now: float) -> Plan[tuple[float, list[str]]]:
        """Make room for a new session of ``openid``; return its creation time and the
        sessions it supersedes.

        v2 clients log in before every ``login: true`` request, so sessions pile up;
        this keeps each user's count bounded without a cron job. It drops the user's
        expired sessions and the oldest live ones beyond ``max_sessions_per_user - 1``
        (oldest by creation time, ties by id) *before* the new session exists, so the
        login's own session is never the one dropped.

        The time returned is ``now``, or just after the user's newest session if that
        is not earlier (a clock that stood still, or stepped back under a second): one
        user's sessions get increasing creation times in login order, so "the oldest"
        is the first logged in even when logins share a timestamp.

        The sessions superseded are the live ones kept that would outlive
        ``superseded_ttl`` from now (none when it is 0): the caller lowers their expiry
        to that once the new session exists. One left behind by a v2 client (it logs in
        before every ``login: true`` request) then ends soon; one that another device
        still uses renews itself at its next touch (``superseded_ttl`` is at least twice
        ``touch_interval``).
        """
        listed = yield StoreCall(self.store, "list_sessions", (openid,))
        sessions: list[Session] = sorted(listed, key=lambda s: (s.created_at, s.id))
        live = [s for s in sessions if not s.is_expired(now)]
        doomed = [s for s in sessions if s.is_expired(now)]
        excess = len(live) - (self.config.max_sessions_per_user - 1)
        if excess > 0:
            doomed.extend(live[:excess])
            live = live[excess:]
        for session in doomed:
            try:
                yield StoreCall(self.store, "revoke_session", (session.id,))
            finally:
                self._forget("session", session.id)
        ttl = self.config.superseded_ttl
        superseded = [s.id for s in live if ttl and s.expires_at > now + ttl]
        if not sessions:
            return now, superseded
        newest = sessions[-1].created_at
        if not now <= newest < now + 1.0:
            return now, superseded
        return max(newest + 1e-6, math.nextafter(newest, math.inf)), superseded
