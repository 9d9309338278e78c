"""The Lua scripts of :class:`~wafer_py.stores.redis.RedisStore`, and the calls it sends.

Each script runs by its SHA1 (``EVALSHA``) and is sent whole (``EVAL``) when Redis lacks
it: no ``SCRIPT LOAD``, which proxies refuse. The key layout they work on is described in
:mod:`wafer_py.stores.redis_keys`. On a standalone server the lookup, touch, revocation and
listing scripts follow pointers to keys they were not given; on Redis Cluster every
script touches one slot, and behind a proxy (:mod:`wafer_py.stores.redis_proxy`) only
the keys it is given, all of one hash tag.
"""

from __future__ import annotations

import hashlib
from collections.abc import Generator, Sequence
from typing import Any, NamedTuple, TypeVar

__all__ = [
    "Script",
    "Call",
    "Plan",
    "cmd",
    "script",
    "LOOKUP",
    "CREATE",
    "TOUCH",
    "SUPERSEDE",
    "RESEAL",
    "DROP",
    "REVOKE_USER",
    "LIST",
    "ENSURE_USER",
    "UPDATE_USER",
    "DROP_ENTRY",
    "ACQUIRE",
    "RELEASE",
]

T = TypeVar("T")


class Script:
    """A Lua script, run by its SHA1 (``EVALSHA``; sent whole once if Redis lacks it)."""

    __slots__ = ("sha", "source")

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()  # noqa: S324 - Redis's name


class Call(NamedTuple):
    """One command, or one script with its keys, to send."""

    command: str | Script
    args: tuple[Any, ...]
    keys: int = 0

    def wire(self, whole: bool = False) -> tuple[Any, ...]:
        if isinstance(self.command, str):
            return (self.command, *self.args)
        if whole:
            return ("EVAL", self.command.source, self.keys, *self.args)
        return ("EVALSHA", self.command.sha, self.keys, *self.args)


def cmd(command: str, *args: Any) -> Call:
    """A command (its keys are among ``args``)."""
    return Call(command, args)


def script(source: Script, keys: Sequence[str], *args: Any) -> Call:
    """A script call: ``keys`` (every key it touches, except on a standalone server),
    then ``args``."""
    return Call(source, (*keys, *args), len(keys))


#: A store operation as a generator: it yields the calls of each round trip and receives
#: their replies, so one plan runs on the sync and the async client alike.
Plan = Generator[list[Call], list[Any], T]


# The record key is ``P{u:OPENID}:s:ID``: everything up to the first "}" is the user's
# base (the prefix and the escaped openid hold none), and ID follows ":s:".
_BASE = "local function base(r) return string.sub(r, 1, string.find(r, '}', 1, true)) end\n"
# Records are JSON objects whose values are all strings, so cjson.decode and encode in
# the scripts that change them lose nothing; the lookup returns them as they are.

LOOKUP = Script(
    "#!lua flags=no-writes\n"
    + _BASE
    + """
-- A session and its user, as JSON [session, user or null]; false if none. With ARGV[1]
-- == '1', KEYS are id or skey pointers, followed to the first that names a session;
-- else KEYS[1] is the session record and KEYS[2] its user.
if ARGV[1] ~= '1' then
  local session = redis.call('GET', KEYS[1])
  if not session then return false end
  return '[' .. session .. ',' .. (redis.call('GET', KEYS[2]) or 'null') .. ']'
end
for _, key in ipairs(KEYS) do
  local r = redis.call('GET', key)
  local session = r and redis.call('GET', r)
  if session then
    return '[' .. session .. ',' .. (redis.call('GET', base(r) .. ':user') or 'null') .. ']'
  end
end
return false
"""
)

CREATE = Script("""#!lua
-- A new session record (KEYS[1]) in its user's index (KEYS[2]); with ARGV[5] == '1' also
-- its skey and id pointers (KEYS[3], KEYS[4]) and its place in the expiry index (KEYS[5]).
-- ARGV: id, created_at, expires_at, ttl in ms, full, the record.
redis.call('SET', KEYS[1], ARGV[6], 'PX', ARGV[4])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
if redis.call('PTTL', KEYS[2]) < tonumber(ARGV[4]) then redis.call('PEXPIRE', KEYS[2], ARGV[4]) end
if ARGV[5] == '1' then
  redis.call('SET', KEYS[3], KEYS[1], 'PX', ARGV[4])
  redis.call('SET', KEYS[4], KEYS[1], 'PX', ARGV[4])
  redis.call('ZADD', KEYS[5], ARGV[3], KEYS[1])
end
return 1
""")

RESEAL = Script(
    "#!lua\n"
    + """
-- Replace the sealed session_key of the session record KEYS[1], keeping its expiry.
-- ARGV: the new sealed key. Returns 1, or 0 if there is no such record.
local text = redis.call('GET', KEYS[1])
if not text then return 0 end
local s = cjson.decode(text)
s.sealed_session_key = ARGV[1]
redis.call('SET', KEYS[1], cjson.encode(s), 'KEEPTTL')
return 1
"""
)

TOUCH = Script(
    "#!lua\n"
    + _BASE
    + """
-- Move a session's sliding expiry. With ARGV[5] == '1', KEYS[1] is its id pointer and
-- KEYS[2] the expiry index, and the pointers and index move too; else KEYS[1] is its
-- record and KEYS[2] its user's index. ARGV: last_seen, expires_at, ttl in ms, prefix,
-- full. Returns the skey hash, or false.
local full = ARGV[5] == '1'
local r = KEYS[1]
if full then r = redis.call('GET', KEYS[1]) end
local text = r and redis.call('GET', r)
if not text then return false end
local s = cjson.decode(text)
s.last_seen, s.expires_at = ARGV[1], ARGV[2]
redis.call('SET', r, cjson.encode(s), 'PX', ARGV[3])
local index = KEYS[2]
if full then index = base(r) .. ':sessions' end
if redis.call('PTTL', index) < tonumber(ARGV[3]) then redis.call('PEXPIRE', index, ARGV[3]) end
if full then
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  redis.call('PEXPIRE', ARGV[4] .. '{k:' .. s.skey_hash .. '}', ARGV[3])
  redis.call('ZADD', KEYS[2], ARGV[2], r)
end
return s.skey_hash
"""
)

SUPERSEDE = Script(
    "#!lua\n"
    + """
-- Lower the expiry of the session records KEYS (one user's) to ARGV[1] where it is later,
-- with Redis's own expiry: ARGV[2] ms. With ARGV[4] == '1', the pointers (prefix ARGV[3])
-- and the expiry index (ARGV[5]) follow. Returns {id, skey_hash, ...} of those changed.
local full = ARGV[4] == '1'
local out = {}
for _, r in ipairs(KEYS) do
  local text = redis.call('GET', r)
  local s = text and cjson.decode(text)
  if s and tonumber(s.expires_at) > tonumber(ARGV[1]) then
    s.expires_at = ARGV[1]
    redis.call('SET', r, cjson.encode(s), 'PX', ARGV[2])
    if full then
      redis.call('PEXPIRE', ARGV[3] .. '{i:' .. s.id .. '}', ARGV[2])
      redis.call('PEXPIRE', ARGV[3] .. '{k:' .. s.skey_hash .. '}', ARGV[2])
      redis.call('ZADD', ARGV[5], ARGV[1], r)
    end
    out[#out + 1] = s.id
    out[#out + 1] = s.skey_hash
  end
end
return out
"""
)

DROP = Script(
    "#!lua\n"
    + _BASE
    + """
-- Delete a session record and its id in its user's index. KEYS[1]: the record, or with
-- ARGV[2] == '1' its id pointer. With ARGV[3] == '1', KEYS[2] is the expiry index and the
-- pointers and index entry go too; else KEYS[2] is the user's index. ARGV[4]: '' or a
-- time: delete only if expired by then.
-- Returns {1, id, skey_hash} (deleted), {2, id} (record already gone), {0, expires_at}
-- (not expired), or false (no pointer).
local cleanup, before = ARGV[3] == '1', tonumber(ARGV[4])
local r = KEYS[1]
if ARGV[2] == '1' then r = redis.call('GET', KEYS[1]) end
if not r then return false end
local b = base(r)
local id = string.sub(r, #b + 4)
local text = redis.call('GET', r)
local s = text and cjson.decode(text)
if s and before and tonumber(s.expires_at) > before then
  if cleanup then redis.call('ZADD', KEYS[2], s.expires_at, r) end
  return {0, s.expires_at}
end
redis.call('DEL', r)
if cleanup then
  redis.call('ZREM', b .. ':sessions', id)
  redis.call('ZREM', KEYS[2], r)
  redis.call('DEL', ARGV[1] .. '{i:' .. id .. '}')
  if s then redis.call('DEL', ARGV[1] .. '{k:' .. s.skey_hash .. '}') end
else
  redis.call('ZREM', KEYS[2], id)
end
if s then return {1, id, s.skey_hash} end
return {2, id}
"""
)

REVOKE_USER = Script("""#!lua
-- Delete every session of a user. KEYS[1]: the user's index; with ARGV[2] == '1', KEYS[2]
-- is the expiry index and the pointers go too. ARGV[1]: prefix.
-- Returns {count, id, skey_hash, id, skey_hash, ...} of the deleted sessions.
local cleanup = ARGV[2] == '1'
local b = string.sub(KEYS[1], 1, #KEYS[1] - #':sessions')
local out = {0}
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local r = b .. ':s:' .. id
  local text = redis.call('GET', r)
  local skey_hash = text and cjson.decode(text).skey_hash
  if skey_hash then
    redis.call('DEL', r)
    out[1] = out[1] + 1
    out[#out + 1] = id
    out[#out + 1] = skey_hash
  end
  if cleanup then
    redis.call('ZREM', KEYS[2], r)
    redis.call('DEL', ARGV[1] .. '{i:' .. id .. '}')
    if skey_hash then redis.call('DEL', ARGV[1] .. '{k:' .. skey_hash .. '}') end
  end
end
redis.call('DEL', KEYS[1])
return out
""")

LIST = Script("""#!lua
-- The user's sessions (KEYS[1] is the index) as a JSON array, oldest first; ids whose
-- record Redis has expired leave the index. KEYS[2..], if given, are the records to read
-- (behind a proxy, a script reads only the keys it is given); else the index's.
local b = string.sub(KEYS[1], 1, #KEYS[1] - #':sessions')
local ids = {}
if #KEYS > 1 then
  for i = 2, #KEYS do ids[#ids + 1] = string.sub(KEYS[i], #b + 4) end
else
  ids = redis.call('ZRANGE', KEYS[1], 0, -1)
end
local out = {}
for _, id in ipairs(ids) do
  local session = redis.call('GET', b .. ':s:' .. id)
  if session then out[#out + 1] = session else redis.call('ZREM', KEYS[1], id) end
end
return '[' .. table.concat(out, ',') .. ']'
""")

ENSURE_USER = Script("""#!lua
-- The user KEYS[1], stored as ARGV[1] if there is none; a missing unionid is filled in
-- with ARGV[2] (unless ''), at time ARGV[3].
local text = redis.call('GET', KEYS[1])
if not text then
  redis.call('SET', KEYS[1], ARGV[1])
  return ARGV[1]
end
if ARGV[2] ~= '' then
  local u = cjson.decode(text)
  if not u.unionid then
    u.unionid, u.updated_at = ARGV[2], ARGV[3]
    text = cjson.encode(u)
    redis.call('SET', KEYS[1], text)
  end
end
return text
""")

UPDATE_USER = Script("""#!lua
-- Update the user KEYS[1] and return it; false if there is none. ARGV: now, unionid (''
-- keeps it), phone action ('keep', 'clear' or 'set'), phone, profile fields to merge (a
-- JSON object of JSON texts).
local text = redis.call('GET', KEYS[1])
if not text then return false end
local u = cjson.decode(text)
u.updated_at = ARGV[1]
if ARGV[2] ~= '' then u.unionid = ARGV[2] end
if ARGV[3] == 'set' then u.phone = ARGV[4] elseif ARGV[3] == 'clear' then u.phone = nil end
for name, value in pairs(cjson.decode(ARGV[5])) do u.profile[name] = value end
text = cjson.encode(u)
redis.call('SET', KEYS[1], text)
return text
""")

DROP_ENTRY = Script("""#!lua
-- Delete the entry KEYS[1] if it expired by ARGV[1]; with ARGV[2] == '1' also from the
-- entry index KEYS[2]. Returns false when deleted, else its expires_at.
local t = redis.call('HGET', KEYS[1], 't')
if t and tonumber(t) > tonumber(ARGV[1]) then
  if ARGV[2] == '1' then redis.call('ZADD', KEYS[2], t, KEYS[1]) end
  return t
end
redis.call('DEL', KEYS[1])
if ARGV[2] == '1' then redis.call('ZREM', KEYS[2], KEYS[1]) end
return false
""")

ACQUIRE = Script("""#!lua
-- Take the lock KEYS[1] unless another owner holds it unlapsed.
-- ARGV: owner, now, lapses at, ttl in ms. Returns 1 if taken.
local held = redis.call('HMGET', KEYS[1], 'o', 't')
if held[1] and held[1] ~= ARGV[1] and tonumber(held[2]) > tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], 'o', ARGV[1], 't', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1
""")

RELEASE = Script("""#!lua
-- Delete the lock KEYS[1] if ARGV[1] holds it. Returns 1 if it did.
if redis.call('HGET', KEYS[1], 'o') == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
""")
