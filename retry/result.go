package retry

import (
	"context"
	"errors"
)

// ErrResult is the error of an attempt whose value was not acceptable: the
// retryIf predicate of [GetIf] held for it. When retries end on such an
// attempt, GetIf returns that value with an [*Error] whose Err is
// ErrResult, so errors.Is(err, ErrResult) tells a value that was never
// good enough from an attempt that failed.
//
// In the loop form, Record(ErrResult) records such an attempt: it is
// retried whatever Config.Retryable says (the caller has classified it),
// and counted like any failed attempt by the budget, the attempts and
// the metrics.
var ErrResult = errors.New("retry: result not accepted")

// GetIf runs op under r and returns its value, making another attempt,
// as for a retryable error, while op succeeds with a value for which
// retryIf returns true (a "pending" status, an empty page, a stale
// version): retrying on a result, as failsafe-go's HandleResult,
// resilience4j's retryOnResult and Polly's HandleResult do. Attempts
// that fail with an error are retried as [Retry.Do] retries them. A nil
// retryIf accepts every value: GetIf is then seawall.Get(ctx, r, op)
// without its closure.
//
// GetIf returns the value of the last attempt made, with nil when op
// returned a nil error and retryIf accepted it. Otherwise the error is an
// [*Error], as Do's: when retries end on a value retryIf rejected
// (MaxAttempts made, the budget spent, the deadline near, the context
// ended during the wait), that value is returned with an *Error wrapping
// [ErrResult] (and the reason retries stopped early, if one), so the
// caller has both the last value and the fact it was not good enough.
// (failsafe-go returns an ExceededError and the zero value by default, or
// the last value and a nil error with ReturnLastFailure; a nil error would
// let a caller mistake the rejected value for a good one.)
//
// Retries on a value pass through the same Loop as any other: they wait
// the backoff, never past the deadline, and the budget counts them. On
// the success path (the first value accepted) GetIf allocates nothing
// unless AttemptTimeout is set.
func GetIf[T any](ctx context.Context, r *Retry, op func(context.Context) (T, error), retryIf func(T) bool) (T, error) {
	if !r.fast {
		l := r.Loop(ctx)
		var zero T
		return getIf(&l, op, retryIf, zero)
	}
	// The first attempt made directly, as in Do: the Loop stays off this
	// stack frame on the success path.
	v, err := op(ctx)
	if err == nil {
		if retryIf == nil || !retryIf(v) {
			r.countSuccess()
			return v, nil
		}
		err = ErrResult
	}
	return getIfAfterFirst(ctx, r, op, retryIf, v, err)
}

// getIfAfterFirst continues GetIf after a fast first attempt returned v
// and err (ErrResult for a rejected value).
func getIfAfterFirst[T any](ctx context.Context, r *Retry, op func(context.Context) (T, error), retryIf func(T) bool, v T, err error) (T, error) {
	l := r.afterFirst(ctx, err)
	if l.done {
		return v, l.Err()
	}
	return getIf(&l, op, retryIf, v)
}

// getIf runs the attempts of loop l; v is the last attempt's value so far.
func getIf[T any](l *Loop, op func(context.Context) (T, error), retryIf func(T) bool, v T) (T, error) {
	defer l.releaseAttempt() // if op panics
	for l.Next() {
		var err error
		v, err = op(l.Context())
		if err == nil && retryIf != nil && retryIf(v) {
			err = ErrResult
		}
		l.Record(err)
	}
	return v, l.Err()
}
