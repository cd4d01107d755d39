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
// over a sliding 5 s window, retries may be at most 10% of requests, plus a
// floor of 1 per window so that quiet clients can still retry an
// occasional failure, lent only while the client is healthy: while at most
// half of its recent attempts failed ([BudgetConfig], [Budget]). Share one
// [Budget] among the Retry values of a client with [Config.SharedBudget];
// a gRPC-style token bucket is available too.
//
// # What a fleet adds
//
// N callers, each with its own default budget, send R requests a second in
// all to one service.
//
// When the service fails (every caller's attempts mostly fail), every floor
// is off once each caller's window holds the outage: the fleet's retries are
// at most 10% of R, whatever N. Before that, at the start of the outage,
// each caller may still lend its floor once: at most 1 retry per caller
// (one window's floor, [BudgetConfig.MinRetriesPerSecond]), and the window
// lends 10% of the healthy requests of the Window before
// ([BudgetConfig.Window]). At R = 700/s:
//
//   - 8 callers (87.5 requests/s each): at most 70 retries/s (8 × 8.75),
//     after a one-off onset of at most 8 floor retries.
//   - 512 callers (1.37/s each, 6.8 a window, whose 10% is no whole retry):
//     no retries at all, after a one-off onset of at most 512 floor
//     retries within the first window: over a 5 s spike to twice the
//     traffic (7000 requests), at most 1.07×. (A floor of 1 a second, 5 a
//     window, let that onset reach 2560, 1.37×; lent whatever the health,
//     it added 512 retries/s for as long as the outage lasted.)
//
// The onset cannot be bounded independently of N if each quiet, healthy
// caller may retry an occasional failure: at the start of an outage each
// of them may spend that retry. It is one retry, once; set NoFloor to have
// none.
//
// While the service mostly succeeds, a floor retry follows a failure of a
// caller at most half of whose recent attempts failed, and is counted as an
// attempt. So the fleet's retries are at most 10% of R + its failures,
// capped by 1 per caller per window: with a failure share f of attempts
// (f ≤ ½), attempts reach at most R/(1-f), 2 × R in the worst case (every
// caller just under half failing). At R = 700/s and 1% of attempts failing
// (7 a second), the floor adds at most about 7 retries/s for 512 callers,
// and 1.6/s (8 per 5 s) for 8.
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
//
// To retry on a value as well as on an error (a job still "pending", a
// 200 with a stale version), use [GetIf]: a value for which its predicate
// holds is retried like a retryable error, and when retries end on one, the
// caller gets that value and an [*Error] wrapping [ErrResult].
package retry
