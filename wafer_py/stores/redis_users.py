"""The user operations of :class:`~wafer_py.stores.redis.RedisStore`: one JSON record per
user (its profile merged field by field in Lua, so a concurrent update of another field
is kept), and the sets that index users, written in the same pipeline as the record:
every openid (for stats) and the openids of each unionid.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from ..models import User
from . import redis_scripts as lua
from .redis_keys import RedisKeys, loads, profile_texts, user_of
from .redis_scripts import Call, cmd, script

__all__ = ["RedisUsers"]


class RedisUsers(RedisKeys):
    """Users in Redis: a base of :class:`~wafer_py.stores.redis.RedisStore`, which sends
    the calls (its ``_do``)."""

    if TYPE_CHECKING:

        def _do(self, *calls: Call) -> list[Any]: ...

    def ensure_user(
        self, openid: str, *, unionid: str | None, profile: dict[str, Any], now: float
    ) -> User:
        record: dict[str, Any] = {"openid": openid, "created_at": repr(now)}
        record["updated_at"] = record["created_at"]
        if unionid:
            record["unionid"] = unionid
        record["profile"] = profile_texts(profile)
        new = json.dumps(record, ensure_ascii=False, separators=(",", ":"))
        key = self._base(openid) + ":user"
        calls = [
            script(lua.ENSURE_USER, [key], new, unionid or "", now),
            cmd("SADD", self._users, openid),
        ]
        if unionid:
            calls.append(cmd("SADD", self._unionid_key(unionid), openid))
        reply = self._do(*calls)[0]
        user = user_of(json.loads(reply))
        assert user is not None
        return user

    def _update_user(
        self,
        openid: str,
        now: float,
        *,
        unionid: str | None = None,
        phone: tuple[str, str] = ("keep", ""),
        profile: dict[str, Any] | None = None,
    ) -> User | None:
        merge = json.dumps(profile_texts(profile or {}), ensure_ascii=False)
        key = self._base(openid) + ":user"
        (reply,) = self._do(script(lua.UPDATE_USER, [key], now, unionid or "", *phone, merge))
        return user_of(loads(reply))

    def update_profile(
        self, openid: str, profile: dict[str, Any], *, now: float, unionid: str | None = None
    ) -> User | None:
        user = self._update_user(openid, now, unionid=unionid, profile=profile)
        if user is not None and unionid and user.unionid:
            self._do(cmd("SADD", self._unionid_key(user.unionid), openid))
        return user

    def find_users_by_unionid(self, unionid: str) -> list[User]:
        (openids,) = self._do(cmd("SMEMBERS", self._unionid_key(unionid)))
        if not openids:
            return []
        names = sorted(o.decode() if isinstance(o, bytes) else str(o) for o in openids)
        replies = self._do(*(cmd("GET", self._base(o) + ":user") for o in names))
        users = [u for u in (user_of(loads(r)) for r in replies) if u and u.unionid == unionid]
        return sorted(users, key=lambda u: (u.created_at, u.openid))

    def update_phone(self, openid: str, phone: str | None, *, now: float) -> User | None:
        return self._update_user(
            openid, now, phone=("clear", "") if phone is None else ("set", phone)
        )

    def get_user(self, openid: str) -> User | None:
        (reply,) = self._do(cmd("GET", self._base(openid) + ":user"))
        return user_of(loads(reply))
