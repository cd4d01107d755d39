package grpcmw

import (
	"context"
	"errors"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/seawall-go/seawall"
	"github.com/seawall-go/seawall/breaker"
	"github.com/seawall-go/seawall/throttle"
)

// What every attempt of a call does, unary or streaming: ask the breaker
// and the throttle, record the outcome, and show the retry loop the error
// it must see.

// overloadError is a server's refusal of work, as the policies see it: a
// RESOURCE_EXHAUSTED, or an UNAVAILABLE with a pushback. It matches
// seawall.ErrRejected and carries a hint (the pushback, or 0), so that
// seawall.IsOverload is true of it. It is its status, GRPCStatus and all,
// so that status.FromError returns the server's status unchanged (an
// error that only wraps one gets its message replaced by its own text).
type overloadError struct {
	err  error
	hint time.Duration
}

func (e *overloadError) Error() string              { return e.err.Error() }
func (e *overloadError) Unwrap() error              { return e.err }
func (e *overloadError) Is(target error) bool       { return target == seawall.ErrRejected }
func (e *overloadError) RetryAfter() time.Duration  { return e.hint }
func (e *overloadError) GRPCStatus() *status.Status { return status.Convert(e.err) }

// answer returns the error of an attempt as the retry, the breaker and the
// throttle see it: a RESOURCE_EXHAUSTED, or an UNAVAILABLE with a pushback
// trailer, as an overload (seawall.IsOverload), with the pushback as its
// hint if it has a valid one (a negative or malformed one is "do not
// retry", which classify makes permanent), else a hint of 0; any other
// error unchanged. The retry's exact wait is classify's: it reads the
// trailer too.
func answer(err error, trailer metadata.MD) error {
	if err == nil || seawall.IsOverload(err) {
		return err
	}
	code := status.Code(err)
	vs := trailer.Get(PushbackKey)
	if code != codes.ResourceExhausted && (code != codes.Unavailable || len(vs) == 0) {
		return err
	}
	d, _ := parsePushback(vs) // 0 if none, or malformed
	return &overloadError{err: err, hint: d}
}

// classify returns the error of an attempt that ended within its attempt
// timeout as the retry loop must see it: permanent unless it is retried,
// with the server's pushback if any.
func (c *Client) classify(s *call, err error, trailer metadata.MD) error {
	if err == nil || seawall.IsPermanent(err) {
		return err
	}
	if !c.userRetryable && !s.codes.has(status.Code(err)) {
		return seawall.Permanent(err)
	}
	vs := trailer.Get(PushbackKey)
	if len(vs) == 0 {
		return err
	}
	d, ok := parsePushback(vs)
	if !ok {
		return seawall.Permanent(err) // the server says: do not retry
	}
	return seawall.WithPushback(err, d)
}

// attemptTimeoutError is the error of an attempt that ran out of its
// attempt timeout while the call's context had not ended, as the retry
// loop sees it: retried whatever the codes say. It keeps the attempt's
// status.
type attemptTimeoutError struct{ err error }

func (e *attemptTimeoutError) Error() string { return "grpcmw: attempt timed out: " + e.err.Error() }
func (e *attemptTimeoutError) Unwrap() error { return e.err }

// rejectedError is a call refused by an open breaker: UNAVAILABLE, and
// matching breaker.ErrOpen.
type rejectedError struct {
	err    error
	status *status.Status
}

func (e *rejectedError) Error() string              { return e.status.Message() }
func (e *rejectedError) Unwrap() error              { return e.err }
func (e *rejectedError) GRPCStatus() *status.Status { return e.status }

// permit asks the breaker for this call, if any.
func (c *Client) permit(cc *grpc.ClientConn, method string) (breaker.Permit, error) {
	if c.breakers == nil {
		return breaker.Permit{}, nil
	}
	key := method
	if c.perTarget {
		key = cc.Target()
	}
	p, err := c.breakers.Get(key).Allow()
	if err != nil {
		msg := "grpcmw: circuit breaker open for " + key
		if d, ok := seawall.RetryAfter(err); ok {
			msg += "; it lets a call through in " + waitText(d)
		}
		return p, &rejectedError{err: err, status: status.New(codes.Unavailable, msg)}
	}
	return p, nil
}

// throttledError is a call rejected by the client's throttle: UNAVAILABLE,
// and matching throttle.ErrThrottled.
type throttledError struct{ status *status.Status }

func (e *throttledError) Error() string              { return e.status.Message() }
func (e *throttledError) Unwrap() error              { return throttle.ErrThrottled }
func (e *throttledError) GRPCStatus() *status.Status { return e.status }

var errThrottled = &throttledError{status.New(codes.Unavailable,
	"grpcmw: throttled locally: the server has been refusing calls (RESOURCE_EXHAUSTED, or UNAVAILABLE with pushback)")}

// record tells the breaker the outcome of an attempt: an overload (see
// answer; a RESOURCE_EXHAUSTED always is one) by the breaker's Classify,
// which ignores it by default; any other by its code.
func record(p breaker.Permit, err error) {
	if err = answer(err, nil); seawall.IsOverload(err) {
		p.Done(err)
		return
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, throttle.ErrThrottled) { // not made
		p.Record(breaker.Ignore)
		return
	}
	switch status.Code(err) {
	case codes.OK:
		p.Record(breaker.Success)
	case codes.Canceled:
		p.Record(breaker.Ignore)
	case codes.Unknown, codes.DeadlineExceeded, codes.Internal, codes.Unavailable, codes.DataLoss:
		p.Record(breaker.Failure)
	default:
		p.Record(breaker.Success)
	}
}
