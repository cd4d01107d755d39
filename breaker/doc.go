// Package breaker provides a lock-free circuit breaker.
//
// A circuit breaker stops calling a dependency that is failing, so the
// dependency gets a quiet moment to recover and callers fail fast instead of
// piling up on timeouts:
//
//	closed ──trip rule──▶ open ──open duration──▶ half-open ──enough successful probes──▶ closed
//	                        ▲                         │
//	                        └────── a failed probe ───┘
//
// Trip rules combine: N consecutive failures; a failure rate, or a slow-call
// rate, over a count window (the last N calls) or a time window (the last T,
// in buckets), once the window holds a minimum number of calls. The open
// duration is fixed or grows exponentially, with optional jitter, over
// consecutive trips. Operators can force a breaker open, disable it (admit
// everything, keep counting), or reset it. See [Config].
//
// # Two layers
//
// The primitive, for hot paths, takes no lock and allocates nothing:
//
//	p, err := b.Allow()
//	if err != nil {
//		return err // errors.Is(err, breaker.ErrOpen), and seawall.ErrRejected
//	}
//	resp, err := call()
//	p.Done(err)
//
// The convenience, [Breaker.Do], wraps a function and satisfies
// seawall.Policy, so it composes with other policies in a seawall.Pipeline.
//
// # Errors and classification
//
// A rejection matches [ErrOpen] and seawall.ErrRejected; after a trip it
// carries a retry-after hint (seawall.RetryAfter): while open, the time left
// until probes are admitted; while half-open with every probe slot taken,
// the open duration a failed probe would start. What counts as a failure is
// decided by [Config.Classify]; by default an error wrapping
// context.Canceled is ignored and any other error is a failure. A panic in
// Do is a failure, and continues.
//
// # Observability
//
// [Breaker.Metrics] returns counters read from atomics, and
// [Config.OnStateChange] reports each transition exactly once, outside any
// lock, as a [StateChange]: its [Cause] (the rule that tripped, a probe's
// outcome, an operator's override) and the [Counts] the rules judged, which
// the transition resets. [Breaker.State] is true when it is read, without a background
// goroutine: an open breaker whose open period has passed reads half-open,
// though no call has yet made the transition.
//
// # Many dependencies
//
// A [Group] holds one breaker per key (host, method, tenant), created on
// first use, bounded in number.
//
// # Cost
//
// On the success path a call reads one shared word and increments a counter
// owned by the P (scheduler processor) it runs on, so goroutines on
// different cores never write the same cache line; it takes no lock,
// allocates nothing and, without a time window or a slow-call rule, reads no
// clock. Failures and transitions take a slower path; a time window reads
// the clock once per call, and the slow-call rule twice (at Allow and at
// Done). Measured costs, against peer libraries, are in the repository's
// BENCHMARKS.md.
package breaker
