"""The Lua scripts of :mod:`async_reduce.contrib.redis_fleet`.

Each runs atomically on the Redis server; every key it touches shares the
call's hash tag, so the scripts are valid on Redis Cluster.
"""

from __future__ import annotations

__all__ = ["CLAIM", "FINISH", "RELEASE", "RENEW"]

# KEYS: lock, out, followers.
# ARGV: token, lease_ms, share_ms, since_ms, channel, grace_ms, accepted...
# The stored outcome is the server time it was produced (13 digits, ms) then
# the message.  It is taken when younger than share_ms, produced less than
# since_ms ago (after this caller arrived), or by an accepted token.
# Returns {role, token, remaining_ms, message}; role 2: outcome, 1: leader,
# 0: follower of token (its channel now among the followers).
CLAIM = """
local out = redis.call('GET', KEYS[2])
if out then
  local message = string.sub(out, 14)
  local producer = string.sub(message, 2, 33)
  local now = redis.call('TIME')
  local stamp = tonumber(string.sub(out, 1, 13))
  local age = now[1] * 1000 + math.floor(now[2] / 1000) - stamp
  local ok = age < tonumber(ARGV[3]) or age <= tonumber(ARGV[4])
  if not ok then
    for i = 7, #ARGV do
      if ARGV[i] == producer then ok = true break end
    end
  end
  if ok then return {2, producer, 0, message} end
end
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return {1, ARGV[1], 0, ''}
end
local remaining = redis.call('PTTL', KEYS[1])
redis.call('SADD', KEYS[3], ARGV[5])
redis.call('PEXPIRE', KEYS[3], math.max(remaining, 0) + tonumber(ARGV[6]))
return {0, redis.call('GET', KEYS[1]) or '', remaining, ''}
"""

# KEYS: lock.  ARGV: token, lease_ms.
RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

# KEYS: lock, out, followers.  ARGV: token, message, keep_ms, digest.
FINISH = """
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then return 0 end
local now = redis.call('TIME')
local stamp = string.format('%013d', now[1] * 1000 + math.floor(now[2] / 1000))
redis.call('SET', KEYS[2], stamp .. ARGV[2], 'PX', ARGV[3])
if holder then redis.call('DEL', KEYS[1]) end
for _, channel in ipairs(redis.call('SMEMBERS', KEYS[3])) do
  redis.call('PUBLISH', channel, ARGV[4] .. ARGV[2])
end
redis.call('DEL', KEYS[3])
return 1
"""

# KEYS: lock, followers.  ARGV: token, message, digest.
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  for _, channel in ipairs(redis.call('SMEMBERS', KEYS[2])) do
    redis.call('PUBLISH', channel, ARGV[3] .. ARGV[2])
  end
  redis.call('DEL', KEYS[2])
  return 1
end
return 0
"""
