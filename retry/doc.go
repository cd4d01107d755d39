// Package retry runs an operation again when it fails, without becoming the
// retry storm that keeps a struggling dependency down.
//
// A [Retry] makes up to MaxAttempts attempts (the first included), waiting
// between them with exponential delays and jitter (or constant delays, a
// function, or any github.com/cenkalti/backoff/v4 policy through
// [Config.BackOff]). It honours a server's retry-after hint
// (seawall.RetryAfter): it waits at least the hint, capped at MaxHint, and
// gives up at once when the hint would outlast the context's deadline. It
// never sleeps past the deadline: a retry whose delay would pass it is not
// made. A cancelled context ends a wait promptly.
//
// Backoff alone does not bound how much retries multiply the load when many
// callers fail at once; a retry budget does. Every Retry has one by default:
// over a sliding 5 s window, retries may be at most 10% of requests, plus 1
// a second so that quiet clients can still retry ([BudgetConfig]). Share one
// [Budget] among the Retry values of a client with [Config.SharedBudget];
// a gRPC-style token bucket is available too.
//
// What is retried is decided by [Config.Retryable] ([DefaultRetryable]: not
// context errors, not local rejections without a hint); errors marked
// seawall.Permanent are never retried. When retries end without success,
// the error is an [*Error] that says how many attempts were made and wraps
// the last attempt's error, and the reason retries stopped early
// ([ErrBudgetExhausted], [ErrDeadline], or the context's error).
//
// Use [Retry.Do], which satisfies seawall.Policy, or the loop form
// [Retry.Loop], which keeps the call in your function, with no closure;
// neither allocates on the success path:
//
//	l := r.Loop(ctx)
//	for l.Next() {
//		resp, err = client.Get(l.Context(), id)
//		l.Record(err)
//	}
//	err = l.Err()
package retry
