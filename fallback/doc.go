// Package fallback provides a fallback: when a call fails, an alternative
// answer in its place, such as a cached or stale value, a default, or a
// secondary region's answer.
//
//	call ──▶ op(ctx) ── nil error ──────────────────────▶ op's value
//	                 └─ error ── Handles(err)? ── no ───▶ op's value and error
//	                                  └─ yes ──▶ Fallback(ctx, err) ──▶ its value and error
//
// A [Fallback] is generic over the call's result: [Fallback.Get] returns
// either op's value or the fallback's. A [Policy] is the error-only form, a
// seawall.Policy (and seawall.ChainPolicy) for calls that return only an
// error, whose fallback returns only an error (nil to turn the failure into
// a success).
//
// # Which errors fall back
//
// By default ([DefaultHandles]) every error does, except a cancelled
// context (context.Canceled): a caller that gave up wants no answer. A
// passed deadline (context.DeadlineExceeded) does fall back, whether a
// timeout policy's or the caller's own: a stale value returned at once is
// the classic answer to a call that ran out of time. Rejections by other
// policies (seawall.ErrRejected: an open breaker, a full bulkhead, a spent
// retry budget) fall back too; that is a main use. Config.Handles replaces
// the classification.
//
// # Composition
//
// A seawall.Pipeline's policies return only an error; to put a Fallback[T]
// around a pipeline, run the pipeline with seawall.Get inside Get:
//
//	v, err := fb.Get(ctx, func(ctx context.Context) (T, error) {
//		return seawall.Get(ctx, pipeline, op)
//	})
//
// A fallback goes outermost, so that it sees the pipeline's final outcome
// (after retries, with the breaker's rejection).
//
// # Panics
//
// A panic in op, or in the fallback function, is not recovered: it
// continues to the caller. (A panicking fallback function counts as a
// failed fallback.)
//
// # Observability and cost
//
// [Fallback.Metrics] counts the calls that fell back and the fallbacks that
// failed. The success path (op returns a nil error) costs one call of op and
// a comparison: no allocation, no clock read and no shared write; only calls
// that fall back are counted.
package fallback
