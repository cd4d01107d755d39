package httpmw

import (
	"net/http"
	"time"

	"github.com/seawall-go/seawall"
	"github.com/seawall-go/seawall/retry"
)

// observe reports the attempt that l just recorded, which ended with resp
// and err, to o; and, if the budget refused the retry that would have
// followed, that refusal as an attempt of its own.
func (a *attempts) observe(o seawall.AttemptObserver, l *retry.Loop, resp *http.Response, err error) {
	ctx := a.req.Context()
	if err == nil {
		err = answerError(resp, nil) // a 500 that is not retried is a failure all the same
	}
	budget := l.Done() && budgetRefused(l)
	o.Attempt(ctx, a.report(l.Attempt(), a.delay, a.why, resp, err, l.Done() && !budget))
	if budget {
		o.Attempt(ctx, seawall.Attempt{
			Protocol: seawall.ProtocolHTTP, Number: l.Attempt() + 1, Outcome: seawall.OutcomeRejected,
			RejectedBy: "retry_budget", Last: true, Err: retry.ErrBudgetExhausted,
		})
	}
	a.delay, a.why = l.Delay()
	a.refused = ""
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
