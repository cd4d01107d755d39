// Package redisrate provides rate limiters shared by a fleet of processes
// through Redis: a [Limiter] for one bucket, and [Keyed] for one bucket per
// key (client, tenant, route). When a dependency takes 1000 requests a
// second in total, whether its callers run as 1 process or 40, a limiter in
// each process cannot hold that limit; one bucket in Redis, which every
// process asks, can.
//
// It is its own Go module, so that users of the local limiters of package
// ratelimit never get go-redis in their module graph.
//
// # Algorithm
//
// A bucket is GCRA, as in ratelimit.Limiter: its whole state is its
// theoretical arrival time (TAT), the time at which it will be full again.
// A Lua script ([Script]) reads it, decides and writes it back atomically
// in one round trip, on Redis's own clock (TIME), so the processes' clocks
// do not matter. The script is called by its SHA-1 digest (EVALSHA), and
// sent whole (EVAL) only when Redis answers NOSCRIPT, having lost its
// script cache to a restart, a failover or SCRIPT FLUSH. Its answer
// carries the exact wait, rounded up to the microsecond, so a caller that
// waits out a refusal's retry-after hint finds its tokens.
//
// Asking for more tokens than the burst is an error, not a refusal to
// retry: no wait could grant them.
//
// # Keys
//
// The bucket of key k is the Redis string Prefix + "{" + k + "}", Prefix
// being "seawall:rl:" by default: the key is the hash tag, so on Redis
// Cluster each bucket lives in the slot of its key, and the buckets of
// many keys spread over the cluster. The script touches only that one key,
// so any slot will do. A bucket expires (PEXPIRE, set by the script) when
// it has refilled: an idle key costs Redis no memory, and a key never
// seen, or expired, is a full bucket. Keys are 1 to [MaxKeyLen] (512)
// bytes; a longer or empty key is refused before anything is sent.
//
// The limiters take a redis.UniversalClient: a *redis.Client for one node
// or for Sentinel (redis.NewFailoverClient), a *redis.ClusterClient, or a
// *redis.Ring.
//
// # Failure behaviour
//
// Every call to Redis is bounded by Config.Timeout (default 5ms), and the
// calls go through a circuit breaker (Config.Breaker: by default 3
// consecutive failures open it for 1s, then one probe tries Redis again, and
// shared limiting resumes as soon as one succeeds). While Redis is
// unavailable (the breaker is open, or the call failed or timed out),
// Config.Fallback decides:
//
//	mode           while Redis is unavailable          the fleet admits at most
//	FallbackLocal  a local bucket of this instance's   about Rate (Rate/Instances each,
//	(default)      share: Rate/Instances tokens/s,     bursts of ceil(Burst/Instances))
//	               ceil(Burst/Instances) tokens
//	FailClosed     refuse: ErrUnavailable              nothing
//	FailOpen       admit                               everything
//
// A full-size local limit in each process would let Instances times the
// limit through during an outage, which is what Config.Instances is for.
// While the breaker is open the limiter does not call Redis at all, so an
// outage adds no timeout to the calls, and the fallback path allocates
// nothing. [Limiter.Metrics] counts the decisions of each mode, Redis's
// errors and timeouts, the script reloads, and the round trips' times.
//
// # Timeouts and replays
//
// A call that timed out or lost its connection may have run: the script may
// have taken the tokens before the answer was lost. The limiters never send
// it again, and stop go-redis from doing so: go-redis retries such
// failures (MaxRetries, 3 by default), and the limiters send each command
// marked NoRetry, which every go-redis client honours, whatever its
// MaxRetries. (Cluster's MOVED and ASK redirects, which mean the command
// did not run, are still followed.) The failed call is decided by the
// fallback.
//
// go-redis applies a context's deadline to its socket only if the client
// has ContextTimeoutEnabled; otherwise it waits for ReadTimeout (5s by
// default). [New] and [NewKeyed] therefore refuse a *redis.Client,
// *redis.ClusterClient or *redis.Ring that has ContextTimeoutEnabled false
// and a ReadTimeout or WriteTimeout above Config.Timeout, or no socket
// deadlines at all. A client of another type (a wrapper) must honour
// context deadlines itself.
//
// # Cost
//
// A call on the shared bucket costs one round trip to Redis (tens of
// microseconds on one host), a context with its timeout and a few small
// allocations (go-redis's command); the fallback path costs tens of
// nanoseconds and allocates nothing. Use a shared limit where a fleet-wide
// number matters, such as the capacity of a dependency, and a local one
// where a per-process number will do. The benchmarks module measures both
// against go-redis/redis_rate and a plain EVALSHA of the same script
// (BenchmarkRedisLimiter).
//
// While Redis is down, a call the breaker lets through costs up to the
// whole Timeout even when the connection is refused at once: go-redis
// retries the dial until the context ends. Only the calls that trip the
// breaker, and its half-open probes, pay it.
//
// # Registry
//
// A registry (package registry) takes a Limiter as a rate limiter
// (registry.KindRateLimit) and a Keyed as a keyed one: their snapshots,
// metrics (package otelseawall) and status-page rows count every decision,
// and say which were the fallback's, Redis's errors, and the state of the
// breaker in front of Redis. To log that breaker's transitions, register
// it too ([Limiter.Breaker]), as name+".breaker" say.
package redisrate
