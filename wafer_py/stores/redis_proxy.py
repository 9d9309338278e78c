"""Redis behind a proxy that shards by hash tag (``?cluster=proxy``): twemproxy, and the
managed "cluster" editions that are a proxy in front of shards (Tencent Cloud, Aliyun).

Such a proxy looks like one server but sends each command to the shard of its (first)
key, and runs a script on the shard of its first key. The managed ones refuse a script
that touches a key it was not given in ``KEYS``, or keys of several slots; twemproxy
checks nothing and a stray key is read from, or written to, the wrong shard. So in
this mode :class:`~wafer_py.stores.redis.RedisStore` takes the steps of Redis Cluster
(one hash tag per script; the pointers and the indexes of other tags are separate
commands, pipelined), and every script is given every key it touches: the lookup, the
touch and the drop get the user's record or index, and the two scripts that walk a
user's sessions (:func:`revoke_user`, :func:`list_sessions`) get their records, read
from the index first. Nothing needs ``SCRIPT LOAD`` (``EVALSHA``, then ``EVAL`` on
``NOSCRIPT``), ``KEYS``, ``SCAN``, ``MULTI`` or ``SELECT``.

A client for twemproxy must not send what it refuses by closing the connection: redis-py's
``HELLO`` (RESP3) and ``CLIENT SETINFO`` on connect. :data:`CLIENT_OPTIONS` turns them
off; :meth:`~wafer_py.stores.redis.RedisStore.from_url` uses them, a client passed in
with ``proxy=True`` should be made with them.
"""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING, Any, Literal

from . import redis_scripts as lua
from .redis_scripts import Call, Plan, Script, cmd, script

if TYPE_CHECKING:
    from .redis_sessions import RedisSessions

__all__ = ["CLIENT_OPTIONS", "REVOKE_GIVEN", "cluster_mode", "revoke_user", "list_sessions"]


def _client_options() -> dict[str, Any]:
    # Newer redis-py takes driver_info, and warns that lib_name and lib_version go away.
    if importlib.util.find_spec("redis.driver_info") is not None:
        return {"protocol": 2, "driver_info": None}
    return {"protocol": 2, "lib_name": None, "lib_version": None}


#: redis-py options for a client of a proxy: RESP2 (no ``HELLO``), no ``CLIENT SETINFO``.
CLIENT_OPTIONS: dict[str, Any] = _client_options()

_MODES: dict[str, Literal["standalone", "cluster", "proxy"]] = {
    "": "standalone",
    "0": "standalone",
    "false": "standalone",
    "no": "standalone",
    "1": "cluster",
    "true": "cluster",
    "yes": "cluster",
    "proxy": "proxy",
}


REVOKE_GIVEN = Script("""#!lua
-- Delete the given sessions of a user, touching only the keys given (behind a proxy).
-- KEYS[1]: the user's index; KEYS[2..]: session records. Ids in the index whose record
-- was not given are kept, and returned for the next call.
-- Returns {count, {id, skey_hash, ...} of the deleted, {id, ...} not given}.
local b = string.sub(KEYS[1], 1, #KEYS[1] - #':sessions')
local given = {}
for i = 2, #KEYS do given[KEYS[i]] = true end
local count, deleted, missing = 0, {}, {}
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local r = b .. ':s:' .. id
  if given[r] then
    local text = redis.call('GET', r)
    if text then
      redis.call('DEL', r)
      count = count + 1
      deleted[#deleted + 1] = id
      deleted[#deleted + 1] = cjson.decode(text).skey_hash
    end
    redis.call('ZREM', KEYS[1], id)
  else
    missing[#missing + 1] = id
  end
end
return {count, deleted, missing}
""")


def cluster_mode(value: str) -> Literal["standalone", "cluster", "proxy"]:
    """What the URL's ``?cluster=`` asks for; an unknown value is a ``ValueError``."""
    mode = _MODES.get(value.strip().lower())
    if mode is None:
        raise ValueError(
            f"the Redis URL's ?cluster= must be true (Redis Cluster), proxy (a proxy in "
            f"front of shards) or false, not {value!r}"
        )
    return mode


def revoke_user(store: RedisSessions, openid: str) -> Plan[int]:
    """Delete every session of ``openid``; how many there were.

    Each call deletes, in one script on the user's tag, the sessions it names and returns
    the ids of the index it was not given (the first call names none; a session made
    meanwhile shows up in the next), until none is left. A record goes before its
    pointers, so a revocation cut short leaves pointers to nothing: refused, never valid.
    """
    base = store._base(openid)
    index = base + ":sessions"
    count, ids, cleanup = 0, list[str](), list[Call]()
    while True:
        records = [f"{base}:s:{session_id}" for session_id in ids]
        reply, *_ = yield [script(REVOKE_GIVEN, [index, *records]), *cleanup]
        done, missing = reply[1] or [], reply[2] or []
        count += int(reply[0])
        cleanup = store._revoked_cleanup(openid, [_text(x) for x in done])
        ids = [_text(x) for x in missing]
        if not ids:
            break
    if cleanup:
        yield cleanup
    return count


def list_sessions(store: RedisSessions, openid: str) -> Plan[str]:
    """The user's sessions as a JSON array: the index read first, then the records named
    in the script's keys."""
    base = store._base(openid)
    index = base + ":sessions"
    (ids,) = yield [cmd("ZRANGE", index, 0, -1)]
    if not ids:
        return "[]"
    records = [f"{base}:s:{_text(session_id)}" for session_id in ids]
    (reply,) = yield [script(lua.LIST, [index, *records])]
    return _text(reply)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
