package grpcmw

import (
	"context"
	"time"

	"google.golang.org/grpc/status"

	"github.com/seawall-go/seawall"
	"github.com/seawall-go/seawall/retry"
)

// reporter tells a call's attempt observer of its attempts; its zero value
// (o nil) is a call that is not observed, for which nothing is built.
type reporter struct {
	o     seawall.AttemptObserver
	ctx   context.Context     // the call's
	delay time.Duration       // before the next attempt
	why   seawall.DelayReason // of delay
}

// observe returns the reporter of a call with context ctx: the zero one
// unless c has an observer that observes the call (asked once).
func (c *Client) observe(ctx context.Context) reporter {
	if c.observer != nil && c.observer.Observing(ctx) {
		return reporter{o: c.observer, ctx: ctx}
	}
	return reporter{}
}

// once reports the one attempt of a call without retries: err is its
// error, refused the policy that refused it, if one did.
func (r *reporter) once(err error, refused string) {
	r.o.Attempt(r.ctx, r.attempt(1, err, refused, true))
}

// recorded reports the attempt that l has just recorded: err is the
// attempt's error as the policies saw it (not as the loop did: classify
// marks some permanent), refused the policy that refused it, if one did.
// A retry that the budget refused is reported after it, as a rejected
// attempt of its own.
func (r *reporter) recorded(l *retry.Loop, err error, refused string) {
	budget := false
	if l.Done() {
		e, ok := l.Err().(*retry.Error)
		budget = ok && e.Reason == retry.ErrBudgetExhausted
	}
	r.o.Attempt(r.ctx, r.attempt(l.Attempt(), err, refused, l.Done() && !budget))
	if budget {
		r.o.Attempt(r.ctx, seawall.Attempt{
			Protocol: seawall.ProtocolGRPC, Number: l.Attempt() + 1, Outcome: seawall.OutcomeRejected,
			RejectedBy: "retry_budget", Last: true, Err: retry.ErrBudgetExhausted,
		})
	}
	r.delay, r.why = l.Delay()
}

func (r *reporter) attempt(n int, err error, refused string, last bool) seawall.Attempt {
	err = answer(err, nil) // a RESOURCE_EXHAUSTED is an overload, trailer or not
	a := seawall.Attempt{
		Protocol: seawall.ProtocolGRPC, Number: n, Delay: r.delay, DelayReason: r.why,
		Outcome: seawall.OutcomeOf(err), Last: last, StatusCode: int(status.Code(err)),
		RejectedBy: refused, Err: err,
	}
	if refused != "" {
		a.Outcome = seawall.OutcomeRejected
	}
	if d, ok := seawall.RetryAfter(err); ok {
		a.RetryAfter = d
	}
	return a
}
