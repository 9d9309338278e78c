"""The SQL store's sessions: the login lookup and its touch (validation's hot path, on
the event loop too), the session writes, the purge of what expired, the counts.

:class:`SQLSessions` is a part of :class:`~.sql.SQLStore` (the sessions half of
:class:`~wafer_py.stores.SessionStore`). The login lookup is one query joining the user;
looked up by skey hashes, its ``IN`` list's SQL is made once per list length.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..models import Session, User
from .base import StoreStats
from .sql_connections import SQLConnections
from .sql_users import user_of

__all__ = ["SQLSessions"]


def _login(rows: Sequence[Sequence[Any]], hashes: list[str]) -> tuple[Session, User | None] | None:
    """A session and its user from the login query's rows (when several skey hashes
    matched, the first in ``hashes`` wins)."""
    if not rows:
        return None
    row = min(rows, key=lambda r: hashes.index(r[2])) if len(rows) > 1 else rows[0]
    return Session(*row[:7]), user_of(row[7:]) if row[7] is not None else None


def _session(row: Sequence[Any] | None) -> Session | None:
    return None if row is None else Session(*row)


class SQLSessions(SQLConnections):
    """The session operations of :class:`~.sql.SQLStore`."""

    #: The login query by ``n`` skey hashes, by ``n``.
    _by_hashes: dict[int, str]

    def create_session(self, session: Session) -> None:
        self._count(
            "create_session",
            {
                "id": session.id,
                "openid": session.openid,
                "skey_hash": session.skey_hash,
                "sealed_session_key": session.sealed_session_key,
                "created_at": session.created_at,
                "last_seen": session.last_seen,
                "expires_at": session.expires_at,
            },
        )

    def get_session(self, session_id: str) -> Session | None:
        return _session(self._one("get_session", {"id": session_id}))

    def find_session(self, skey_hash: str) -> Session | None:
        return _session(self._one("find_session", {"skey_hash": skey_hash}))

    def find_login(
        self, *, session_id: str | None = None, skey_hashes: Sequence[str] = ()
    ) -> tuple[Session, User | None] | None:
        """The session and its user in one query: by id, or by any of the skey hashes
        (``IN``; when several match, the first in ``skey_hashes`` wins)."""
        hashes = list(skey_hashes)
        query = self._login_query(session_id, hashes)
        if query is None:
            return None
        with self._cursor() as cur:
            cur.execute(*query)
            rows = cur.fetchall()
        return _login(rows, hashes)

    async def afind_login(
        self, *, session_id: str | None = None, skey_hashes: Sequence[str] = ()
    ) -> tuple[Session, User | None] | None:
        """:meth:`find_login` on the event loop; it blocks for MySQL without its asyncio
        driver (the ASGI middleware calls it from a worker thread then)."""
        if self._async_pools is None:
            return self.find_login(session_id=session_id, skey_hashes=skey_hashes)
        hashes = list(skey_hashes)
        query = self._login_query(session_id, hashes)
        if query is None:
            return None
        pool = await self._async_pools.get()
        try:
            rows = await pool.fetch(*query)
        except self._errors as exc:
            raise self._unavailable("query failed", exc) from None
        return _login(rows, hashes)

    def _login_query(
        self, session_id: str | None, hashes: list[str]
    ) -> tuple[str, dict[str, Any]] | None:
        if session_id is not None:
            return self._q["login_by_id"], {"id": session_id}
        if not hashes:
            return None
        sql = self._by_hashes.get(len(hashes)) or self._login_by_hashes(len(hashes))
        return sql, {f"h{i}": h for i, h in enumerate(hashes)}

    def _login_by_hashes(self, n: int) -> str:
        sql = self._q["login_by_id"].replace(
            "s.id = %(id)s", "s.skey_hash IN (" + ", ".join(f"%(h{i})s" for i in range(n)) + ")"
        )
        self._by_hashes[n] = sql
        return sql

    def touch_session(self, session_id: str, *, last_seen: float, expires_at: float) -> None:
        self._count(
            "touch_session", {"id": session_id, "last_seen": last_seen, "expires_at": expires_at}
        )

    def supersede_sessions(
        self, openid: str, session_ids: Sequence[str], *, expires_at: float, now: float
    ) -> int:
        if not session_ids:
            return 0
        ids = {f"i{n}": session_id for n, session_id in enumerate(session_ids)}
        marks = ", ".join(f"%({name})s" for name in ids)
        sql = self._q["supersede"].replace("%(ids)s", marks)
        with self._cursor() as cur:
            cur.execute(sql, {"openid": openid, "expires_at": expires_at, **ids})
            return int(cur.rowcount)

    def reseal_session(self, session_id: str, sealed_session_key: str, *, openid: str) -> bool:
        args = {"id": session_id, "openid": openid, "sealed": sealed_session_key}
        return self._count("reseal_session", args) > 0

    async def atouch_session(self, session_id: str, *, last_seen: float, expires_at: float) -> None:
        if self._async_pools is None:
            self.touch_session(session_id, last_seen=last_seen, expires_at=expires_at)
            return
        args = {"id": session_id, "last_seen": last_seen, "expires_at": expires_at}
        pool = await self._async_pools.get()
        try:
            await pool.execute(self._q["touch_session"], args)
        except self._errors as exc:
            raise self._unavailable("query failed", exc) from None

    def revoke_session(self, session_id: str) -> bool:
        return self._count("revoke_session", {"id": session_id}) > 0

    def revoke_user(self, openid: str) -> int:
        return self._count("revoke_user", {"openid": openid})

    def list_sessions(self, openid: str) -> list[Session]:
        with self._cursor() as cur:
            cur.execute(self._q["list_sessions"], {"openid": openid})
            return [Session(*row) for row in cur.fetchall()]

    def purge_expired(self, now: float, *, limit: int | None = None) -> int:
        """Delete what expired by ``now``, each statement its own transaction.

        With ``limit``, at most that many sessions go; expired entries and lapsed locks
        all go, ``limit`` rows at a time.
        """
        with self._cursor() as cur:
            for table in ("entries", "locks"):
                if limit is None:
                    cur.execute(self._q["purge_all_" + table], {"now": now})
                    continue
                while True:
                    cur.execute(self._q["purge_" + table], {"now": now, "limit": limit})
                    if cur.rowcount < limit:
                        break
            if limit is None:
                cur.execute(self._q["purge_all_sessions"], {"now": now})
            else:
                cur.execute(self._q["purge_sessions"], {"now": now, "limit": limit})
            return int(cur.rowcount)

    def stats(self, now: float) -> StoreStats:
        row = self._one("stats", {"now": now})
        return StoreStats(*(int(n) for n in row))
