package httpmw

import (
	"net/http"
	"time"

	"github.com/seawall-go/seawall"
	"github.com/seawall-go/seawall/retry"
)

// roundTripObserved is RoundTrip for a request that the Transport's
// observer observes: the same attempts, each reported once it has ended.
// (A loop of its own, so that RoundTrip's stays as it was for the
// requests nobody observes.)
func (t *Transport) roundTripObserved(req *http.Request) (*http.Response, error) {
	ctx, o := req.Context(), t.observer
	a := attempts{t: t, req: req}
	defer a.closeBody()
	if t.retry == nil || !replayable(req) {
		resp, err := a.send(ctx)
		ans := err
		if err == nil {
			ans = answerError(resp, nil)
		}
		o.Attempt(ctx, a.report(1, 0, seawall.DelayNone, resp, ans, true))
		return resp, err
	}
	l := t.retry.Loop(ctx)
	var (
		resp  *http.Response
		delay time.Duration
		why   seawall.DelayReason
	)
	for l.Next() {
		var err error
		a.refused = ""
		resp, err = a.send(l.Context())
		if err == nil && t.statuses.has(resp.StatusCode) {
			err = statusError(resp)
		}
		l.Record(err)
		if err == nil && resp != nil {
			err = answerError(resp, nil) // a 500 that is not retried is a failure all the same
		}
		budget := l.Done() && budgetRefused(&l)
		o.Attempt(ctx, a.report(l.Attempt(), delay, why, resp, err, l.Done() && !budget))
		if budget {
			o.Attempt(ctx, seawall.Attempt{
				Protocol: seawall.ProtocolHTTP, Number: l.Attempt() + 1, Outcome: seawall.OutcomeRejected,
				RejectedBy: "retry_budget", Last: true, Err: retry.ErrBudgetExhausted,
			})
		}
		delay, why = l.Delay()
		if l.Done() {
			break
		}
		if resp != nil {
			discard(resp)
			resp = nil
		}
	}
	if resp != nil {
		return resp, nil
	}
	return nil, l.Err()
}

// report returns the Attempt of the attempt that ended with resp and err
// (its error as the policies see it), after a wait of delay for why.
func (a *attempts) report(n int, delay time.Duration, why seawall.DelayReason, resp *http.Response, err error, last bool) seawall.Attempt {
	at := seawall.Attempt{
		Protocol: seawall.ProtocolHTTP, Number: n, Delay: delay, DelayReason: why,
		Outcome: seawall.OutcomeOf(err), Last: last, RejectedBy: a.refused, Err: err,
	}
	if a.refused != "" {
		at.Outcome = seawall.OutcomeRejected
	}
	if resp != nil {
		at.StatusCode = resp.StatusCode
	}
	if d, ok := seawall.RetryAfter(err); ok {
		at.RetryAfter = d
	}
	return at
}

// budgetRefused reports whether the loop, done, ended because the retry
// budget refused the retry.
func budgetRefused(l *retry.Loop) bool {
	e, ok := l.Err().(*retry.Error)
	return ok && e.Reason == retry.ErrBudgetExhausted
}
