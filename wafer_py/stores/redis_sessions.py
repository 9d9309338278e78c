"""The session operations of :class:`~wafer_py.stores.redis.RedisStore`: create, look
up, touch, supersede, reseal, revoke and list, on the key layout of :mod:`.redis_keys`.

On a standalone server each is one script (or one call), which follows the pointers
itself. On Redis Cluster, or behind a proxy, a script touches one slot: the steps in
other slots (the pointers, the expiry index) are separate calls, made after the record
is written, so a pointer never names a record not yet there. The lookup and the touch
are plans (:data:`~.redis_scripts.Plan`), which the store runs on its sync client or on
the event loop's async client; the others run on the sync client.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from ..models import Session, User
from . import redis_proxy
from . import redis_scripts as lua
from .redis_keys import GRACE, RedisKeys, session_of, session_record, text, ttl_ms, user_of
from .redis_scripts import Call, Plan, cmd, script

if TYPE_CHECKING:
    from .loops import PerLoop
    from .redis_clients import AnyAsyncClient

__all__ = ["RedisSessions"]

T = TypeVar("T")


class RedisSessions(RedisKeys):
    """Sessions in Redis: a base of :class:`~wafer_py.stores.redis.RedisStore`, which runs
    the calls (its ``_do``, ``_run`` and ``_arun``)."""

    if TYPE_CHECKING:
        _async_clients: PerLoop[AnyAsyncClient] | None

        def _do(self, *calls: Call) -> list[Any]: ...
        def _run(self, plan: Plan[T]) -> T: ...
        async def _arun(self, plan: Plan[T]) -> T: ...

    def create_session(self, session: Session) -> None:
        record = self._record(session)
        ttl = ttl_ms(session.expires_at - session.last_seen + GRACE)
        keys = [record, self._base(session.openid) + ":sessions"]
        pointers = [self._skey_pointer(session.skey_hash), self._id_pointer(session.id)]
        full = "0" if self._cluster else "1"
        if not self._cluster:
            keys += [*pointers, self._sessions]
        args = (session.id, session.created_at, session.expires_at, ttl, full)
        self._do(script(lua.CREATE, keys, *args, session_record(session)))
        if self._cluster:
            # After the record: a pointer is never followed to a record not yet written.
            self._do(
                *(cmd("SET", p, record, "PX", ttl) for p in pointers),
                cmd("ZADD", self._sessions, session.expires_at, record),
            )

    def _lookup(self, pointers: Sequence[str]) -> Plan[tuple[Session, User | None] | None]:
        """The first session the pointers name, and its user."""
        if not pointers:
            return None
        if self._cluster:
            records = yield [cmd("GET", p) for p in pointers]
            found = [text(r) for r in records if r is not None]
            calls = [[script(lua.LOOKUP, [r, self._owner(r) + ":user"], "0")] for r in found]
        else:
            calls = [[script(lua.LOOKUP, pointers, "1")]]
        for call in calls:
            (reply,) = yield call
            if reply is not None:
                session, user = json.loads(reply)
                return session_of(session), user_of(user)
        return None

    def _login_pointers(self, session_id: str | None, skey_hashes: Sequence[str]) -> list[str]:
        if session_id is not None:
            return [self._id_pointer(session_id)]
        return [self._skey_pointer(h) for h in skey_hashes]

    def find_login(
        self, *, session_id: str | None = None, skey_hashes: Sequence[str] = ()
    ) -> tuple[Session, User | None] | None:
        return self._run(self._lookup(self._login_pointers(session_id, skey_hashes)))

    async def afind_login(
        self, *, session_id: str | None = None, skey_hashes: Sequence[str] = ()
    ) -> tuple[Session, User | None] | None:
        plan = self._lookup(self._login_pointers(session_id, skey_hashes))
        if self._async_clients is None:
            from ..plans import offload  # wafer_py's one thread offload (no import cycle)

            return await offload(self._run, plan)
        return await self._arun(plan)

    def get_session(self, session_id: str) -> Session | None:
        found = self.find_login(session_id=session_id)
        return None if found is None else found[0]

    def find_session(self, skey_hash: str) -> Session | None:
        found = self.find_login(skey_hashes=[skey_hash])
        return None if found is None else found[0]

    def _touch(self, session_id: str, last_seen: float, expires_at: float) -> Plan[None]:
        ttl = ttl_ms(expires_at - last_seen + GRACE)
        pointer = self._id_pointer(session_id)
        args = (last_seen, expires_at, ttl, self.prefix)
        if not self._cluster:
            yield [script(lua.TOUCH, [pointer, self._sessions], *args, "1")]
            return
        (record,) = yield [cmd("GET", pointer)]
        if record is None:
            return
        keys = [text(record), self._owner(text(record)) + ":sessions"]
        (skey_hash,) = yield [script(lua.TOUCH, keys, *args, "0")]
        if skey_hash is not None:
            yield [
                cmd("PEXPIRE", pointer, ttl),
                cmd("PEXPIRE", self._skey_pointer(text(skey_hash)), ttl),
                cmd("ZADD", self._sessions, expires_at, record),
            ]

    def touch_session(self, session_id: str, *, last_seen: float, expires_at: float) -> None:
        self._run(self._touch(session_id, last_seen, expires_at))

    def supersede_sessions(
        self, openid: str, session_ids: Sequence[str], *, expires_at: float, now: float
    ) -> int:
        """One script on the user's records (all in its hash tag); on a cluster or behind
        a proxy the pointers and the expiry index, in other slots, follow."""
        if not session_ids:
            return 0
        base = self._base(openid)
        records = [f"{base}:s:{session_id}" for session_id in session_ids]
        ttl = ttl_ms(expires_at - now + GRACE)
        full = "0" if self._cluster else "1"
        args = (expires_at, ttl, self.prefix, full, self._sessions)
        (reply,) = self._do(script(lua.SUPERSEDE, records, *args))
        changed = [text(x) for x in reply or []]
        if self._cluster and changed:
            follow: list[Call] = []
            for session_id, skey_hash in zip(changed[::2], changed[1::2], strict=True):
                follow += [
                    cmd("PEXPIRE", self._id_pointer(session_id), ttl),
                    cmd("PEXPIRE", self._skey_pointer(skey_hash), ttl),
                    cmd("ZADD", self._sessions, expires_at, f"{base}:s:{session_id}"),
                ]
            self._do(*follow)
        return len(changed) // 2

    def reseal_session(self, session_id: str, sealed_session_key: str, *, openid: str) -> bool:
        record = f"{self._base(openid)}:s:{session_id}"
        (done,) = self._do(script(lua.RESEAL, [record], sealed_session_key))
        return bool(done)

    async def atouch_session(self, session_id: str, *, last_seen: float, expires_at: float) -> None:
        plan = self._touch(session_id, last_seen, expires_at)
        if self._async_clients is None:
            from ..plans import offload  # wafer_py's one thread offload (no import cycle)

            await offload(self._run, plan)
        else:
            await self._arun(plan)

    def _drop_calls(self, records: Sequence[str], before: float | str) -> list[Call]:
        """Calls of :data:`~.redis_scripts.DROP` deleting session records (only those expired by
        ``before``, unless it is ''). On a standalone server they clean up everything."""
        if self._cluster:
            return [
                script(lua.DROP, [r, self._owner(r) + ":sessions"], self.prefix, "0", "0", before)
                for r in records
            ]
        return [
            script(lua.DROP, [r, self._sessions], self.prefix, "0", "1", before) for r in records
        ]

    def _drop_cleanup(self, records: Sequence[str], replies: Sequence[Any]) -> list[Call]:
        """On a cluster: the calls that finish :meth:`_drop_calls` in the other slots."""
        cleanup: list[Call] = []
        for record, reply in zip(records, replies, strict=True):
            if reply is None:
                continue
            status, *rest = (text(x) for x in reply)
            if status == "0":  # not expired after all: keep its place in the index right
                cleanup.append(cmd("ZADD", self._sessions, rest[0], record))
                continue
            cleanup += [
                cmd("ZREM", self._sessions, record),
                cmd("DEL", self._id_pointer(rest[0])),
            ]
            if status == "1":
                cleanup.append(cmd("DEL", self._skey_pointer(rest[1])))
        return cleanup

    def _revoke(self, session_id: str) -> Plan[bool]:
        pointer = self._id_pointer(session_id)
        if not self._cluster:
            (reply,) = yield [
                script(lua.DROP, [pointer, self._sessions], self.prefix, "1", "1", "")
            ]
        else:
            (record,) = yield [cmd("GET", pointer)]
            if record is None:
                return False
            records = [text(record)]
            (reply,) = yield self._drop_calls(records, "")
            cleanup = self._drop_cleanup(records, [reply])
            if cleanup:
                yield cleanup
        return reply is not None and text(reply[0]) == "1"

    def revoke_session(self, session_id: str) -> bool:
        return self._run(self._revoke(session_id))

    def revoke_user(self, openid: str) -> int:
        if self._proxy:
            return self._run(redis_proxy.revoke_user(self, openid))
        index = self._base(openid) + ":sessions"
        if not self._cluster:
            (reply,) = self._do(script(lua.REVOKE_USER, [index, self._sessions], self.prefix, "1"))
            return int(reply[0])
        # The revocation is one script in the user's slot; the pointers and the expiry
        # index live in other slots and follow.
        (reply,) = self._do(script(lua.REVOKE_USER, [index], self.prefix, "0"))
        cleanup = self._revoked_cleanup(openid, [text(x) for x in reply[1:]])
        if cleanup:
            self._do(*cleanup)
        return int(reply[0])

    def _revoked_cleanup(self, openid: str, done: Sequence[str]) -> list[Call]:
        """On a cluster: after a user's sessions are deleted (``done``: id, skey hash,
        ...), the calls that drop their pointers and their place in the expiry index."""
        base = self._base(openid)
        cleanup: list[Call] = []
        for session_id, skey_hash in zip(done[::2], done[1::2], strict=True):
            cleanup += [
                cmd("DEL", self._id_pointer(session_id)),
                cmd("DEL", self._skey_pointer(skey_hash)),
                cmd("ZREM", self._sessions, f"{base}:s:{session_id}"),
            ]
        return cleanup

    def list_sessions(self, openid: str) -> list[Session]:
        if self._proxy:
            reply = self._run(redis_proxy.list_sessions(self, openid))
        else:
            (reply,) = self._do(script(lua.LIST, [self._base(openid) + ":sessions"]))
        return sorted(map(session_of, json.loads(reply)), key=lambda s: (s.created_at, s.id))
