package grpcmw

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
)

// Unary is the unary client interceptor (a grpc.UnaryClientInterceptor).
func (c *Client) Unary(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	s := c.settings(opts)
	u := unaryCall{c: c, method: method, req: req, reply: reply, cc: cc, invoker: invoker, opts: opts}
	if c.retry == nil || s.maxAttempts == 1 {
		_, err := u.attempt(ctx)
		return err
	}
	return u.retry(ctx, &s)
}

// unaryCall is a unary call as the interceptor received it.
type unaryCall struct {
	c          *Client
	method     string
	req, reply any
	cc         *grpc.ClientConn
	invoker    grpc.UnaryInvoker
	opts       []grpc.CallOption
}

// attempt makes one attempt of the call: it asks the breaker, if any,
// invokes the call within the attempt timeout, if any, and records the
// outcome with the breaker. It reports whether the attempt ran out of its
// attempt timeout while ctx had not ended.
func (u *unaryCall) attempt(ctx context.Context) (timedOut bool, err error) {
	p, err := u.c.permit(u.cc, u.method)
	if err != nil {
		return false, err
	}
	actx := ctx
	if u.c.attemptTimeout > 0 {
		var cancel context.CancelFunc
		actx, cancel = context.WithTimeout(ctx, u.c.attemptTimeout)
		defer cancel()
	}
	err = u.invoker(actx, u.method, u.req, u.reply, u.cc, u.opts...)
	record(p, err)
	timedOut = err != nil && actx != ctx && actx.Err() == context.DeadlineExceeded && ctx.Err() == nil
	return timedOut, err
}

// trailerOpts is what a retried unary call adds to its options: the
// trailer each attempt reads the server's pushback from, and room for the
// options with grpc.Trailer, so that most calls pay one allocation for
// both.
type trailerOpts struct {
	trailer metadata.MD
	buf     [2]grpc.CallOption
}

// retry makes the attempts of the call, as the client's retry loop and the
// call's settings s decide.
func (u *unaryCall) retry(ctx context.Context, s *call) error {
	t := new(trailerOpts)
	r := *u
	r.opts = append(append(t.buf[:0], u.opts...), grpc.Trailer(&t.trailer))
	l := u.c.retry.Loop(ctx)
	if s.maxAttempts > 0 {
		l.SetMaxAttempts(s.maxAttempts)
	}
	for l.Next() {
		t.trailer = nil // an attempt that ends before the server answers sets none
		if timedOut, err := r.attempt(l.Context()); timedOut {
			l.Record(&attemptTimeoutError{err: err})
		} else {
			l.Record(u.c.classify(s, err, t.trailer))
		}
	}
	return l.Err()
}
