// Package hedge provides hedging for idempotent calls: when an attempt is
// slow, start another alongside it, take whichever answers first, and
// cancel the rest. It cuts the tail latency that a few slow replicas,
// garbage-collection pauses or lost packets add, for a few percent more
// attempts. It follows gRPC's hedging design (gRFC A6):
//
//	t=0      attempt 1 ──────────────────────────────▶ (cancelled)
//	t=delay        no answer yet: attempt 2 ─────▶ answers first: returned
//	t=2·delay                    (attempt 3, if MaxAttempts allows)
//
// The delay is fixed ([Config.Delay]) or, by default, the 95th percentile
// of recent attempts' latencies ([Config.Percentile]), so that only the
// slowest few percent of calls are hedged, whatever the dependency's speed.
// A non-fatal error ([Config.NonFatal]) starts the next hedge at once, or
// after the retry-after hint it carries (seawall.RetryAfter: a gRPC
// pushback, an HTTP Retry-After); one marked [StopHedging] starts no
// more; any other error cancels every attempt and is returned. If every
// attempt fails, the first attempt's error is returned.
//
// Hedges are extra load. Each one asks the [Config.Budget] (a
// *retry.Budget shared with the retries of the same dependency keeps both
// within one budget) and the [Config.Gate] (e.g. "this target's breaker is
// not open") before it starts; a refusal never cancels an attempt already
// running.
//
// # Two layers
//
// [Get] runs an operation with a value, and hands the values of the
// attempts that lost to a release function, so that nothing leaks:
//
//	resp, err := hedge.Get(ctx, h, func(ctx context.Context) (*http.Response, error) {
//		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
//		return client.Do(req)
//	}, func(r *http.Response) { r.Body.Close() })
//
// [Hedge.Do] runs an operation without one and satisfies seawall.Policy,
// so a Hedge composes with other policies in a seawall.Pipeline: put it
// inside the retry and outside each attempt's timeout and the breaker.
//
// # Cost
//
// The first attempt runs on the caller's goroutine; a timer is armed for
// the delay, and a hedge runs on the timer's goroutine only if it fires.
// A call whose first attempt answers in time, the common case, starts no
// goroutine and allocates only what any hedging must: the attempt's
// context (context.WithCancel's context and cancel func) and the timer;
// it reuses the state of an earlier such call of the Hedge, for the same
// value type. Operations must honour their context: a call returns when
// its first attempt does.
package hedge
