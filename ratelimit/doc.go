// Package ratelimit provides lock-free token-bucket rate limiters: a
// [Limiter] for one stream of events, and [Keyed] for one bucket per key
// (client, tenant, route) with bounded memory.
//
// A limiter at rate R with burst B is a bucket of B tokens, initially full,
// refilled at R tokens per second; each event takes a token. Over any
// interval of length d it allows at most R × d + B events. It is
// implemented as GCRA (the generic cell rate algorithm): the whole state is
// one atomic word, the time at which the bucket will be full again.
//
// # Two layers
//
// The primitives, for hot paths, take no lock and allocate nothing:
//
//	if !lim.Allow() {
//		return errTooMany // drop the event
//	}
//
// and, to slow down rather than drop, [Limiter.Reserve] (act after a delay)
// and [Limiter.Wait] (block until a token, honouring the context).
//
// The convenience, [Limiter.Do], runs a function if a token is available
// and satisfies seawall.Policy, so it composes with other policies in a
// seawall.Pipeline; it does not wait (see its doc for why).
//
// # Errors
//
// A refusal returned as an error ([Limiter.Try], Do, a Wait whose token
// would come after the context's deadline, [Keyed.Try]) matches
// [ErrLimited] and seawall.ErrRejected, and carries a retry-after hint
// (seawall.RetryAfter): the exact time until enough tokens will be in the
// bucket. seawall's HTTP middleware turns it into 429 + Retry-After.
//
// # Configuration
//
// Limiters are built from a [Config] (Rate, Burst), JSON-taggable, with
// "inf" for no limit; [Limiter.SetRate] and [Limiter.SetBurst] change a
// limiter at run time. [Limiter.Metrics] counts the calls allowed and
// limited, in per-P counters that cost the hot path almost nothing.
//
// # Cost
//
// Allow reads the monotonic clock once, as time.Since of the limiter's
// creation (most of the call's cost), and makes one compare-and-swap; an
// infinite rate reads no clock. Callers on many cores contend for the
// single word, as they would for a mutex, but never block. A Keyed Allow on
// a known key adds one hash and a probe of a table, and takes no lock;
// callers on different keys write different cache lines. BENCHMARKS.md has
// the figures.
package ratelimit
