package redisrate

import (
	"crypto/sha1"
	"encoding/hex"
)

// script is GCRA on one bucket, run atomically by Redis in one round trip.
//
// KEYS[1] holds the bucket's theoretical arrival time (TAT): the time at
// which the bucket will be full again, in microseconds since scriptEpoch
// (2023-11-14T22:13:20Z, Unix time 1.7e9 s),
// as a decimal string (a Lua number is a double: counted from scriptEpoch,
// its resolution is 1/16 µs or finer until about 2041). A missing key is a full
// bucket. Taking n tokens at now moves the TAT to max(TAT, now) + n × T
// and is allowed if the new TAT is at most tau after now; the key then
// expires when the bucket is full again, so an idle bucket costs Redis
// nothing.
//
// ARGV: T = 1/Rate (µs, a decimal), tau = Burst × T (µs), n (1 ≤ n ≤
// Burst, checked by the caller), and maxwait (µs): take the tokens if they
// are in the bucket within maxwait (0 for now only; Wait passes the time
// left before its deadline).
//
// It returns {1, wait} if it took the tokens, to be used after wait µs (0
// for now), or {0, wait} if not, wait being the time until they would be
// in the bucket. Waits are rounded up to the microsecond, so a caller that
// comes back after the hint finds the tokens (redis-cell rounds to whole
// seconds, down, and refuses its own hints: its issue 56).
//
// Time is Redis's own (TIME), so the clocks of the processes sharing the
// bucket do not matter. TIME makes the script non-deterministic: Redis 5
// and later replicate the script's effects (the SET), not the script, and
// 7.0 does nothing else; redis.replicate_commands asks Redis 3.2 and 4 for
// the same, and is a no-op since.
const script = `if redis.replicate_commands then redis.replicate_commands() end
local interval = tonumber(ARGV[1])
local tau = tonumber(ARGV[2])
local n = tonumber(ARGV[3])
local maxwait = tonumber(ARGV[4])
local t = redis.call('TIME')
local now = (tonumber(t[1]) - 1700000000) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', KEYS[1]))
if not tat or tat < now then
  tat = now
end
local new = tat + n * interval
local wait = new - tau - now
if wait > maxwait then
  return {0, math.ceil(wait)}
end
if wait < 0 then
  wait = 0
end
redis.call('SET', KEYS[1], string.format('%.17g', new), 'PX', math.ceil((new - now) / 1000))
return {1, math.ceil(wait)}
`

// scriptSHA is the SHA-1 digest of script, by which EVALSHA names it.
var scriptSHA = func() string {
	h := sha1.Sum([]byte(script))
	return hex.EncodeToString(h[:])
}()

// Script returns the Lua script the limiters run, for operators who load
// it into Redis themselves (SCRIPT LOAD) or audit it, and ScriptSHA its
// SHA-1 digest. The limiters call it by digest (EVALSHA) and send it
// whole (EVAL) only when Redis answers NOSCRIPT: after a restart, a
// failover or SCRIPT FLUSH.
func Script() string { return script }

// ScriptSHA returns the SHA-1 digest of [Script], as SCRIPT LOAD returns it.
func ScriptSHA() string { return scriptSHA }
