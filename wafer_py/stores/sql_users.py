"""The SQL store's users: one row per openid, the profile as JSON text.

:class:`SQLUsers` is a part of :class:`~.sql.SQLStore` (the users half of
:class:`~wafer_py.stores.SessionStore`); :func:`user_of` reads the user's columns, which
the login query (:mod:`.sql_sessions`) selects too.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from ..models import User
from .sql_connections import SQLConnections

__all__ = ["SQLUsers", "user_of"]


def user_of(row: Sequence[Any] | None) -> User | None:
    """The user in a row of the user's columns, or ``None`` for no row."""
    if row is None:
        return None
    return User(row[0], row[1], json.loads(row[2]), row[3], row[4], row[5])


class SQLUsers(SQLConnections):
    """The user operations of :class:`~.sql.SQLStore`."""

    def ensure_user(
        self, openid: str, *, unionid: str | None, profile: dict[str, Any], now: float
    ) -> User:
        args = {
            "openid": openid,
            "unionid": unionid or None,
            "profile": json.dumps(profile, ensure_ascii=False),
            "now": now,
        }
        with self._cursor() as cur:
            cur.execute(self._q["ensure_user"], args)
            row = cur.fetchone() if self.dialect.returning else None
            if row is None:
                cur.execute(self._q["get_user"], args)
                row = cur.fetchone()
        user = user_of(row)
        assert user is not None
        return user

    def update_profile(
        self, openid: str, profile: dict[str, Any], *, now: float, unionid: str | None = None
    ) -> User | None:
        with self._transaction() as cur:
            cur.execute(self._q["lock_user"], {"openid": openid})
            user = user_of(cur.fetchone())
            if user is None:
                return None
            user = user.with_profile(profile, now=now, unionid=unionid)
            cur.execute(
                self._q["set_profile"],
                {
                    "openid": openid,
                    "unionid": user.unionid,
                    "profile": json.dumps(user.profile, ensure_ascii=False),
                    "now": now,
                },
            )
        return user

    def update_phone(self, openid: str, phone: str | None, *, now: float) -> User | None:
        args = {"openid": openid, "phone": phone, "now": now}
        with self._cursor() as cur:
            cur.execute(self._q["set_phone"], args)
            if self.dialect.returning:
                return user_of(cur.fetchone())
            cur.execute(self._q["get_user"], args)
            return user_of(cur.fetchone())

    def get_user(self, openid: str) -> User | None:
        return user_of(self._one("get_user", {"openid": openid}))

    def find_users_by_unionid(self, unionid: str) -> list[User]:
        with self._cursor() as cur:
            cur.execute(self._q["users_by_unionid"], {"unionid": unionid})
            rows = cur.fetchall()
        return [u for u in map(user_of, rows) if u is not None]
