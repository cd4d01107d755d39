package grpcmw

import (
	"context"
	"errors"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/seawall-go/seawall"
	"github.com/seawall-go/seawall/breaker"
)

// What every attempt of a call does, unary or streaming: ask the breaker,
// record the outcome, and show the retry loop the error it must see.

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

// record tells the breaker the outcome of an attempt.
func record(p breaker.Permit, err error) {
	if errors.Is(err, context.Canceled) {
		p.Record(breaker.Ignore)
		return
	}
	switch status.Code(err) {
	case codes.OK:
		p.Record(breaker.Success)
	case codes.Canceled:
		p.Record(breaker.Ignore)
	case codes.Unknown, codes.DeadlineExceeded, codes.ResourceExhausted, codes.Internal, codes.Unavailable, codes.DataLoss:
		p.Record(breaker.Failure)
	default:
		p.Record(breaker.Success)
	}
}
