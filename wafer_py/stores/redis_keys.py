"""The key layout of :class:`~wafer_py.stores.redis.RedisStore`, its records' JSON, and
how long Redis keeps each key.

Key layout (``P`` is the prefix, ``wafer:`` by default; ``{...}`` is a Redis Cluster hash
tag: keys with the same tag are in one slot)::

    P{u:OPENID}:user        string: the user, JSON {openid, unionid?, phone?, created_at,
                            updated_at, profile: {field: JSON text of its value}}
    P{u:OPENID}:sessions    zset: the user's session ids, by created_at
    P{u:OPENID}:s:ID        string: one session, JSON {id, openid, skey_hash,
                            sealed_session_key, created_at, last_seen, expires_at}
    P{i:ID}                 string: the key of session ID's record
    P{k:SKEY_HASH}          string: the key of the record with that skey hash
    P{x}:sessions           zset: every session record key, by expires_at
    P{x}:entries            zset: every entry key, by expires_at
    P{x}:users              set: every openid (for stats)
    P{n:UNIONID}:users      set: the openids of the users with that unionid (written with
                            the user; a user written before this index existed joins it
                            at its next login)
    P{e:KEY}                hash: an entry: v (value), t (expires_at)
    P{l:NAME}               hash: a lock: o (owner), t (lapses at)

Every value in the JSON records is a string (times as Python writes floats), so scripts
that change a record decode and encode it without loss. ``OPENID`` has ``%``, ``{`` and
``}`` percent-escaped, so the tag ends where the openid does. A user and all its sessions
share one slot: :meth:`~wafer_py.stores.redis.RedisStore.revoke_user` is one script there.

Times are the caller's logical clock (``now``), compared in Lua; Redis's own expiry only
collects garbage, relative to that clock:

* a session record and its pointers live ``expires_at - last_seen`` plus :data:`GRACE`
  seconds from each create or touch, so Redis never drops a session before its logical
  expiry while the clock runs in step with real time (lookups return expired sessions
  too; the caller decides);
* a lock lives ``ttl`` plus :data:`GRACE`;
* an entry has no "now" when it is set: it lives until its ``expires_at`` read as wall
  clock, plus :data:`ENTRY_GC` (a day), so only a clock a day behind real time could see
  it vanish early. :meth:`~wafer_py.stores.redis.RedisStore.purge_expired` removes
  expired ones by the logical clock.
"""

from __future__ import annotations

import json
import math
from typing import Any

from ..models import Session, User

__all__ = [
    "GRACE",
    "ENTRY_GC",
    "RedisKeys",
    "ttl_ms",
    "tag",
    "text",
    "loads",
    "session_of",
    "session_record",
    "user_of",
    "profile_texts",
]

#: Seconds Redis keeps a session or lock past its logical expiry (clock skew between
#: servers, and lookups that tell "expired" from "unknown").
GRACE = 60.0
#: Seconds an entry outlives its ``expires_at`` (read as wall clock) before Redis drops it.
ENTRY_GC = 86_400.0
#: The longest expiry set (about 35 000 years): Redis refuses larger ones.
_MAX_TTL_MS = 2**50


class RedisKeys:
    """The keys of a store under ``prefix``, and how it must call Redis: ``cluster`` when
    each script and command may touch one slot only (Redis Cluster, or a proxy), and
    ``proxy`` when a script must also be given every key it touches. The base of the
    store's operations (:class:`~wafer_py.stores.redis.RedisStore`)."""

    def __init__(self, prefix: str, *, cluster: bool, proxy: bool) -> None:
        if "{" in prefix or "}" in prefix:
            raise ValueError("a Redis key prefix cannot hold '{' or '}' (hash tag marks)")
        self.prefix = prefix
        # A proxy takes the cluster's steps (one hash tag per call) and also wants every
        # key a script touches in its KEYS.
        self._proxy = proxy
        self._cluster = cluster
        self._sessions = f"{prefix}{{x}}:sessions"
        self._entries = f"{prefix}{{x}}:entries"
        self._users = f"{prefix}{{x}}:users"

    def _base(self, openid: str) -> str:
        return f"{self.prefix}{{u:{tag(openid)}}}"

    def _record(self, session: Session) -> str:
        return f"{self._base(session.openid)}:s:{session.id}"

    @staticmethod
    def _owner(record: str) -> str:
        """The user's base of a session record key (up to the first ``}``, its tag's end:
        the prefix holds none)."""
        return record[: record.index("}") + 1]

    def _id_pointer(self, session_id: str) -> str:
        return f"{self.prefix}{{i:{session_id}}}"

    def _skey_pointer(self, skey_hash: str) -> str:
        return f"{self.prefix}{{k:{skey_hash}}}"

    def _unionid_key(self, unionid: str) -> str:
        return f"{self.prefix}{{n:{tag(unionid)}}}:users"

    def _entry(self, key: str) -> str:
        return f"{self.prefix}{{e:{key}}}"

    def _lock(self, name: str) -> str:
        return f"{self.prefix}{{l:{name}}}"


def ttl_ms(seconds: float) -> int:
    """Redis's expiry in milliseconds: at least 1, at most :data:`_MAX_TTL_MS`."""
    if not math.isfinite(seconds) or seconds * 1000 >= _MAX_TTL_MS:
        return _MAX_TTL_MS
    return max(1, math.ceil(seconds * 1000))


def tag(value: str) -> str:
    """``value`` for inside a hash tag: no ``{`` or ``}`` (nor a ``%`` left ambiguous)."""
    return value.replace("%", "%25").replace("{", "%7B").replace("}", "%7D")


def text(value: Any) -> str:
    """A reply as text (redis-py answers bytes unless told to decode)."""
    return value.decode() if isinstance(value, bytes) else str(value)


def loads(reply: Any) -> Any:
    """A JSON reply, or ``None`` for none."""
    return None if reply is None else json.loads(reply)


def session_of(f: dict[str, str]) -> Session:
    """A session from its record (a JSON object of strings)."""
    return Session(
        f["id"],
        f["openid"],
        f["skey_hash"],
        f["sealed_session_key"],
        float(f["created_at"]),
        float(f["last_seen"]),
        float(f["expires_at"]),
    )


def session_record(session: Session) -> str:
    """A session's record: the JSON :func:`session_of` reads."""
    return json.dumps(
        {
            "id": session.id,
            "openid": session.openid,
            "skey_hash": session.skey_hash,
            "sealed_session_key": session.sealed_session_key,
            "created_at": repr(session.created_at),
            "last_seen": repr(session.last_seen),
            "expires_at": repr(session.expires_at),
        },
        separators=(",", ":"),
    )


def user_of(f: dict[str, Any] | None) -> User | None:
    """A user from its record: a JSON object of strings, and ``profile``, an object of
    JSON texts (merged field by field in Lua, so never parsed there)."""
    if f is None:
        return None
    return User(
        openid=f["openid"],
        unionid=f.get("unionid"),
        profile={k: json.loads(v) for k, v in f["profile"].items()},
        created_at=float(f["created_at"]),
        updated_at=float(f["updated_at"]),
        phone=f.get("phone"),
    )


def profile_texts(profile: dict[str, Any]) -> dict[str, str]:
    """A profile as the user record holds it: each value a JSON text."""
    return {k: json.dumps(v, ensure_ascii=False) for k, v in profile.items()}
