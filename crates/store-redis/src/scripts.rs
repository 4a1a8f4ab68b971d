//! The Lua scripts behind the read-modify-write primitives: each one runs as one atomic step on
//! the server (EVALSHA, loaded on first use by `redis::Script`).
//!
//! Time inside a script is the server's `TIME`, in whole milliseconds for leases and deadlines
//! and in nanoseconds for GCRA. Lua numbers are doubles, exact up to 2^53: milliseconds since
//! the epoch fit, nanoseconds do not, so the GCRA script splits its timestamps into seconds and
//! nanoseconds and only ever does arithmetic on offsets from now.

use std::sync::LazyLock;

use redis::Script;

/// The server's now in ms, as the local `now`.
macro_rules! now_ms {
    () => {
        "local t = redis.call('TIME')\n\
         local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    };
}

/// `INCRBY`, then a TTL of `ARGV[2]` ms if the key has none (it was just created, or somehow
/// lost its TTL); the count and the ms left.
pub(crate) static INCR_WINDOW: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local n = redis.call('INCRBY', KEYS[1], ARGV[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  ttl = tonumber(ARGV[2])
end
return {n, ttl}
",
    )
});

/// All-or-nothing increments: `ARGV` holds (delta, limit, ttl ms) per key. `{0, index, current}`
/// when bump `index` (0-based) would pass its limit, else `{1, value...}`.
pub(crate) static BOUNDED_INCR: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
for i = 1, #KEYS do
  local v = redis.call('GET', KEYS[i])
  local current = 0
  if v then
    if not string.match(v, '^-?%d+$') then return redis.error_reply('NOTINT ' .. KEYS[i]) end
    current = tonumber(v)
  end
  if current + tonumber(ARGV[3 * i - 2]) > tonumber(ARGV[3 * i - 1]) then
    return {0, i - 1, current}
  end
end
local out = {1}
for i = 1, #KEYS do
  local existed = redis.call('EXISTS', KEYS[i])
  out[i + 1] = redis.call('INCRBY', KEYS[i], ARGV[3 * i - 2])
  if existed == 0 then redis.call('PEXPIRE', KEYS[i], ARGV[3 * i]) end
end
return out
",
    )
});

/// Compare-and-set: `ARGV` = (has expected: '1'/'0', expected, new, ttl ms or '0' for none).
pub(crate) static COMPARE_AND_SET: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local current = redis.call('GET', KEYS[1])
if ARGV[1] == '1' then
  if current ~= ARGV[2] then return 0 end
elseif current then
  return 0
end
if ARGV[4] == '0' then
  redis.call('SET', KEYS[1], ARGV[3])
else
  redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[4])
end
return 1
",
    )
});

/// A write fenced by a guard: `KEYS` = (guard, key), `ARGV` = (expected guard, value, ttl ms
/// or '0' for none). Sets the key only if the guard exists and equals the expected value (a
/// missing key's `GET` is false, which equals no string); 1 if it was set.
pub(crate) static SET_GUARDED: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[3] == '0' then
  redis.call('SET', KEYS[2], ARGV[2])
else
  redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
end
return 1
",
    )
});

/// One GCRA step at the server's `TIME`: `ARGV` = (interval ns, tolerance ns = burst *
/// interval). The TAT is stored as decimal ns; `{admitted, tat, now}` as decimal strings.
pub(crate) static GCRA: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local t = redis.call('TIME')
local now_s = tonumber(t[1])
local now_n = tonumber(t[2]) * 1000
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local stored = redis.call('GET', KEYS[1])
local ahead = 0
if stored then
  if not string.match(stored, '^%d+$') then return redis.error_reply('NOTINT ' .. KEYS[1]) end
  local len = #stored
  local hi, lo = 0, tonumber(stored)
  if len > 9 then
    hi = tonumber(string.sub(stored, 1, len - 9))
    lo = tonumber(string.sub(stored, len - 8))
  end
  ahead = (hi - now_s) * 1e9 + (lo - now_n)
  if ahead < 0 then ahead = 0 end
end
local now_str = string.format('%d%09d', now_s, now_n)
local next_ahead = ahead + interval
if next_ahead > tolerance then
  return {0, stored or now_str, now_str}
end
local secs = math.floor(next_ahead / 1e9)
local tat_s = now_s + secs
local tat_n = now_n + (next_ahead - secs * 1e9)
if tat_n >= 1e9 then
  tat_s = tat_s + 1
  tat_n = tat_n - 1e9
end
local tat_str = string.format('%d%09d', tat_s, tat_n)
local ttl = math.max(1, math.ceil(next_ahead / 1e6))
redis.call('SET', KEYS[1], tat_str, 'PX', string.format('%d', ttl))
return {1, tat_str, now_str}
",
    )
});

/// Slot acquire on a ZSET scored by lease deadline (ms): `ARGV` = (member, lease ms, limit).
/// `{outcome, held}` with outcome 0 acquired, 1 renewed, 2 full. The set lives as long as its
/// longest lease.
pub(crate) static SLOT_ACQUIRE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        now_ms!(),
        r"
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local lease_end = string.format('%d', now + tonumber(ARGV[2]))
local outcome = 2
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  redis.call('ZADD', KEYS[1], lease_end, ARGV[1])
  outcome = 1
elseif redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[3]) then
  redis.call('ZADD', KEYS[1], lease_end, ARGV[1])
  outcome = 0
end
local held = redis.call('ZCARD', KEYS[1])
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if last[2] then
  redis.call('PEXPIRE', KEYS[1], string.format('%d', math.max(1, tonumber(last[2]) - now)))
end
return {outcome, held}
"
    ))
});

/// Removes `ARGV[1]`; 1 if its lease was still running.
pub(crate) static SLOT_RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        now_ms!(),
        r"
local lease_end = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not lease_end then return 0 end
redis.call('ZREM', KEYS[1], ARGV[1])
if tonumber(lease_end) > now then return 1 end
return 0
"
    ))
});

/// How many members' leases are still running.
pub(crate) static SLOT_COUNT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        now_ms!(),
        "return redis.call('ZCOUNT', KEYS[1], string.format('(%d', now), '+inf')\n"
    ))
});

/// Drops the expired members; ms until the earliest live lease ends, or -1 when none is live.
pub(crate) static SLOT_NEXT_EXPIRY: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        now_ms!(),
        r"
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if not first[2] then return -1 end
return tonumber(first[2]) - now
"
    ))
});

/// `KEYS` = (id counter, ready list, task hash); `ARGV[1]` the payload. The new id.
pub(crate) static ENQUEUE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local id = redis.call('INCR', KEYS[1])
redis.call('HSET', KEYS[3], 'p' .. id, ARGV[1], 'a' .. id, 0)
redis.call('RPUSH', KEYS[2], id)
return id
",
    )
});

/// `KEYS` = (ready list, in-flight zset, task hash); `ARGV[1]` the visibility in ms. Moves the
/// head task in flight until now + visibility; `{id, payload, attempt}` or nil.
pub(crate) static RESERVE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        r"
local id = redis.call('LPOP', KEYS[1])
if not id then return false end
",
        now_ms!(),
        r"
local attempt = redis.call('HINCRBY', KEYS[3], 'a' .. id, 1)
redis.call('ZADD', KEYS[2], string.format('%d', now + tonumber(ARGV[1])), id)
local payload = redis.call('HGET', KEYS[3], 'p' .. id)
return {tonumber(id), payload, attempt}
"
    ))
});

/// `KEYS` = (in-flight zset, task hash); `ARGV[1]` the id. 1 if it was in flight.
pub(crate) static ACK: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('HDEL', KEYS[2], 'p' .. ARGV[1], 'a' .. ARGV[1])
return 1
",
    )
});

/// `KEYS` = (in-flight zset, ready list). Every task whose deadline has passed goes back to the
/// head of the list, lowest id first; how many.
pub(crate) static REQUEUE_EXPIRED: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        now_ms!(),
        r"
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
if #ids == 0 then return 0 end
local sorted = {}
for i, id in ipairs(ids) do sorted[i] = tonumber(id) end
table.sort(sorted)
for i = #sorted, 1, -1 do
  redis.call('LPUSH', KEYS[2], string.format('%d', sorted[i]))
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
return #sorted
"
    ))
});

/// `KEYS` = (ready list, in-flight zset): `{ready, in_flight}` read at one instant.
pub(crate) static QUEUE_DEPTH: LazyLock<Script> =
    LazyLock::new(|| Script::new("return {redis.call('LLEN', KEYS[1]), redis.call('ZCARD', KEYS[2])}\n"));
