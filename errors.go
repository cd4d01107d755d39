package seawall

import (
	"errors"
	"time"
)

// ErrRejected is matched, with errors.Is, by every rejection of every seawall
// policy: an open circuit breaker, a full bulkhead, a rate limiter that
// refuses, a spent retry budget. Each rejection also keeps its own sentinel
// (breaker.ErrOpen, …), and may carry a retry-after hint ([RetryAfter]).
//
// A rejection means the operation did not run, so it is always safe to retry
// later, and it says nothing about the health of the dependency itself.
var ErrRejected = errors.New("seawall: rejected")

// NewRejection returns a new sentinel error with the given message that
// matches [ErrRejected] with errors.Is. Policies use it for their own
// rejection sentinels, e.g.
//
//	var ErrOpen = seawall.NewRejection("breaker: open")
//
// Each call returns a distinct error, so errors.Is(err, ErrOpen) still tells
// one policy's rejection from another's.
func NewRejection(msg string) error { return &rejection{msg: msg} }

type rejection struct{ msg string }

func (r *rejection) Error() string        { return r.msg }
func (r *rejection) Is(target error) bool { return target == ErrRejected }

// ErrCircuitOpen is matched, with errors.Is, by the rejection of a local
// circuit breaker that is open (breaker.ErrOpen): the dependency behind it
// is failing, and the breaker lets no call through until its open period
// ends. It also matches [ErrRejected].
//
// A retry does not wait out an open breaker by default (retry's
// DefaultRetryable refuses it, hint or no hint): every caller that did
// would sleep to the same half-open instant and probe together. A retry
// whose Retryable accepts it waits the breaker's hint, as for any other
// rejection.
var ErrCircuitOpen = errors.New("seawall: circuit open")

// RetryAfterError is implemented by errors that carry a retry-after hint: how
// long the caller should wait before trying again. Any error type, including a
// transport's, can implement it; [RetryAfter] finds it anywhere in an error's
// tree. A negative duration means "no hint".
type RetryAfterError interface {
	error
	RetryAfter() time.Duration
}

// WithRetryAfter returns err annotated with the retry-after hint d. The result
// wraps err, so errors.Is and errors.As see through it. WithRetryAfter(nil, d)
// is nil; a negative d is taken as zero ("retry now").
func WithRetryAfter(err error, d time.Duration) error {
	if err == nil {
		return nil
	}
	return &retryAfterError{err: err, after: max(d, 0)}
}

type retryAfterError struct {
	err   error
	after time.Duration
}

func (e *retryAfterError) Error() string             { return e.err.Error() }
func (e *retryAfterError) Unwrap() error             { return e.err }
func (e *retryAfterError) RetryAfter() time.Duration { return e.after }

// RetryAfter reports the retry-after hint carried by err: that of the first
// error in err's tree, in the order errors.Is visits it, that implements
// [RetryAfterError] with a non-negative hint. An error whose hint is negative
// ("none") does not hide a hint wrapped inside it.
func RetryAfter(err error) (time.Duration, bool) {
	for err != nil {
		if h, ok := err.(RetryAfterError); ok {
			if d := h.RetryAfter(); d >= 0 {
				return d, true
			}
		}
		switch u := err.(type) {
		case interface{ Unwrap() error }:
			err = u.Unwrap()
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				if d, ok := RetryAfter(e); ok {
					return d, true
				}
			}
			return 0, false
		default:
			return 0, false
		}
	}
	return 0, false
}

// WithPushback returns err annotated with a server's pushback, as gRPC's
// grpc-retry-pushback-ms trailer carries it (gRFC A6): the next retry waits
// exactly d (capped by the retry's MaxHint) in place of its backoff delay,
// where a retry-after hint ([WithRetryAfter]) is only the least wait. A
// pushback is a retry-after hint too, so [RetryAfter] finds it. The result
// wraps err. WithPushback(nil, d) is nil; a negative d is taken as zero.
func WithPushback(err error, d time.Duration) error {
	if err == nil {
		return nil
	}
	return &pushbackError{retryAfterError{err: err, after: max(d, 0)}}
}

type pushbackError struct{ retryAfterError }

// Pushback reports the pushback carried by err ([WithPushback]): that of
// the first pushback in err's tree.
func Pushback(err error) (time.Duration, bool) {
	if p, ok := errors.AsType[*pushbackError](err); ok {
		return p.after, true
	}
	return 0, false
}

// Permanent marks err as permanent: no seawall retry will repeat an operation
// that returned it. The result wraps err, so errors.Is and errors.As see
// through it. Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err: err}
}

type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// IsPermanent reports whether err, or any error in its tree, was marked with
// [Permanent].
func IsPermanent(err error) bool {
	_, ok := errors.AsType[*permanentError](err)
	return ok
}

// IsOverload reports whether err is a refusal of work that the dependency
// could not take on now and that says when to come back: an error that
// matches [ErrRejected] and carries a retry-after hint ([RetryAfter]), and
// is not a local breaker's [ErrCircuitOpen]. Over HTTP that is a 429, or a
// 503 with Retry-After; over gRPC a RESOURCE_EXHAUSTED, or an UNAVAILABLE
// with pushback (httpmw and grpcmw turn those into such errors).
//
// seawall keeps one rule for these: a service that sheds load it cannot
// serve is healthy, not failing. An overload refusal feeds a client-side
// throttle and the retry's wait, and is not a breaker failure; errors,
// timeouts and 5xx answers without a hint are.
func IsOverload(err error) bool {
	if !errors.Is(err, ErrRejected) || errors.Is(err, ErrCircuitOpen) {
		return false
	}
	_, hinted := RetryAfter(err)
	return hinted
}
