// Package timeout provides a timeout policy: a deadline for a call, or, inside
// a retry, for each attempt.
//
//	t, err := timeout.New(timeout.Config{Timeout: 2 * time.Second})
//	...
//	err = t.Do(ctx, func(ctx context.Context) error {
//		return client.Call(ctx, req) // ctx ends 2s from now, or earlier with the caller's
//	})
//	if errors.Is(err, timeout.ErrTimeout) { // also matches context.DeadlineExceeded
//		...
//	}
//
// # The contract
//
//   - The operation gets a context derived from the caller's, with a
//     deadline of Config.Timeout from the start of the call, or the
//     caller's deadline if that is earlier.
//   - The operation succeeds: Do returns nil, even if it finished after the
//     deadline.
//   - The timeout expired first: Do returns an [*Error] carrying the
//     configured timeout, which matches [ErrTimeout] and
//     context.DeadlineExceeded with errors.Is (and unwraps to the
//     operation's error). Expiry is read from the clock against the derived
//     deadline as well as from the derived context, so an operation that
//     reports the deadline before the context's own timer fires (a server
//     answering DEADLINE_EXCEEDED) counts as timed out.
//   - The caller's context ended first (cancelled, or its own, earlier,
//     deadline passed): Do returns ctx.Err() unchanged. The caller's
//     deadline is the caller's, never reported as ErrTimeout.
//   - Any other error of the operation is returned unchanged.
//
// By default Do waits for the operation to return, on the caller's
// goroutine: it starts no goroutine and allocates nothing beyond what
// context.WithTimeout allocates. An operation that ignores its context keeps
// the caller waiting; for such an operation [Config.Abandon] makes Do return
// at once on expiry and leave the operation running on a goroutine that Do
// started, until it returns (it leaks until then; [Timeout.Metrics] counts it).
//
// # Placement
//
// In a seawall.Pipeline the first policy is the outermost. A Timeout before
// a retry bounds the whole call, attempts and waits included: when it
// expires the retry stops (its context has ended) and Do returns the
// [*Error]. A Timeout after a retry bounds each attempt, and retry's
// DefaultRetryable retries an attempt that timed out, as long as the
// caller's context is alive: the [*Error] is told apart from the caller's
// own context.DeadlineExceeded, which is not retried. A breaker counts a
// timeout as a failure (it is not a rejection).
//
//	seawall.Pipeline(total, r, perAttempt) // total: 5s, r: a retry, perAttempt: 1s
//
// # Metrics
//
// [Timeout.Metrics] counts calls and timeouts (and, in Abandon mode,
// abandoned and still-running operations). The call count is a per-P
// counter, a few nanoseconds without contention, beside the hundreds that
// context.WithTimeout costs; the others are counted off the success path.
package timeout
