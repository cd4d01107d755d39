package grpcmw

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/seawall-go/seawall/internal/deadline"
	"github.com/seawall-go/seawall/throttle"
)

// Unary is the unary client interceptor (a grpc.UnaryClientInterceptor).
func (c *Client) Unary(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	s := c.settings(opts)
	u := unaryCall{c: c, method: method, req: req, reply: reply, cc: cc, invoker: invoker, opts: opts, rep: c.observe(ctx)}
	hedging := u.hedging(&s)
	if c.retry == nil || s.maxAttempts == 1 {
		if hedging {
			_, err := u.hedged(ctx, opts, nil)
			if u.rep.o != nil {
				u.rep.once(err, u.refused)
			}
			return err
		}
		var trailer *metadata.MD // nil: no policy reads the answer
		if c.breakers != nil || c.throttle != nil {
			// They must tell an UNAVAILABLE with pushback from one
			// without: read the trailer the caller asked for, or ask.
			if trailer = s.trailer; trailer == nil {
				t := new(trailerOpts)
				u.opts, trailer = t.with(opts), &t.trailer
			}
		}
		_, err := u.attempt(ctx, trailer)
		if u.rep.o != nil {
			u.rep.once(err, u.refused)
		}
		return err
	}
	return u.retry(ctx, &s, hedging)
}

// unaryCall is a unary call as the interceptor received it.
type unaryCall struct {
	c          *Client
	method     string
	req, reply any
	cc         *grpc.ClientConn
	invoker    grpc.UnaryInvoker
	opts       []grpc.CallOption
	rep        reporter // the call's observer, if it is observed
	refused    string   // the policy that refused the last attempt: "breaker", "throttle"; "" if it was sent
}

// attempt makes one attempt of the call: it asks the breaker, if any, then
// the throttle, if any; invokes the call within the attempt timeout, if
// any; and records the outcome with both. If trailer is not nil (the
// call's options fill it in), the error it returns is the attempt's as the
// policies see it (see answer); else as the server sent it. It reports
// whether the attempt ran out of its attempt timeout while ctx had not
// ended. A throttled attempt is not sent, and gives its breaker permit
// back unused.
func (u *unaryCall) attempt(ctx context.Context, trailer *metadata.MD) (timedOut bool, err error) {
	p, err := u.c.permit(u.cc, u.method)
	if err != nil {
		u.refused = "breaker"
		return false, err
	}
	var tp throttle.Permit
	if u.c.throttle != nil {
		if tp, err = u.c.throttle.Allow(); err != nil {
			u.refused = "throttle"
			record(p, errThrottled)
			return false, errThrottled
		}
	}
	actx := ctx
	if u.c.attemptTimeout > 0 {
		var cancel context.CancelFunc
		actx, cancel = context.WithTimeout(ctx, u.c.attemptTimeout)
		defer cancel()
	}
	err = u.invoker(actx, u.method, u.req, u.reply, u.cc, u.opts...)
	if err != nil && trailer != nil {
		err = answer(err, *trailer)
	}
	tp.Done(err) // trailer != nil if tp is not the zero Permit
	record(p, err)
	timedOut = err != nil && actx != ctx && deadline.Expired(ctx, actx)
	return timedOut, err
}

// trailerOpts is what a unary call adds to its options when it must read
// the server's pushback: the trailer, and room for the options with
// grpc.Trailer, so that most calls pay one allocation for both.
type trailerOpts struct {
	trailer metadata.MD
	buf     [2]grpc.CallOption
}

// with returns opts and the grpc.Trailer option that fills in t.trailer.
func (t *trailerOpts) with(opts []grpc.CallOption) []grpc.CallOption {
	return append(append(t.buf[:0], opts...), grpc.Trailer(&t.trailer))
}

// retry makes the attempts of the call, as the client's retry loop and the
// call's settings s decide; each a hedged call if hedging.
func (u *unaryCall) retry(ctx context.Context, s *call, hedging bool) error {
	t := new(trailerOpts)
	r := *u
	r.opts = t.with(u.opts)
	l := u.c.retry.Loop(ctx)
	if s.maxAttempts > 0 {
		l.SetMaxAttempts(s.maxAttempts)
	}
	for l.Next() {
		t.trailer = nil // an attempt that ends before the server answers sets none
		r.refused = ""
		var timedOut bool
		var err error
		if hedging {
			timedOut, err = r.hedged(l.Context(), u.opts, &t.trailer)
		} else {
			timedOut, err = r.attempt(l.Context(), &t.trailer)
		}
		if timedOut {
			l.Record(&attemptTimeoutError{err: err})
		} else {
			l.Record(u.c.classify(s, err, t.trailer))
		}
		if r.rep.o != nil {
			r.rep.recorded(&l, err, r.refused)
		}
	}
	return l.Err()
}
