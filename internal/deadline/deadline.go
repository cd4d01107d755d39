// Package deadline holds what the packages that give an operation a
// deadline of its own share: the expiry logic of the policies that do
// (package timeout, retry's AttemptTimeout), so that there is one way to
// tell that such a deadline, and not the caller's, ended an operation
// ([Expired]); and a context with a deadline whose timer is armed only if
// somebody waits on it ([Context]), for the deadline httpmw propagates to
// a handler, which most handlers never wait on.
package deadline

import (
	"context"
	"errors"
	"time"
)

// ErrAttempt is matched, with errors.Is, by the expiry error of a local
// timeout (timeout.Error): an operation that ran out of its own time while
// the caller's context was still alive. retry.DefaultRetryable retries such
// an error, where it refuses a bare context.DeadlineExceeded (the caller's
// own deadline). It is internal so that no error outside this module can
// claim it.
var ErrAttempt = errors.New("deadline: attempt timed out")

// Expired reports whether the deadline of dctx, a context derived from ctx
// with a deadline of its own (context.WithTimeout), ended an operation that
// returned an error: dctx has a deadline earlier than ctx's (otherwise the
// caller's deadline rules, and any expiry is the caller's), ctx has not been
// cancelled first, and either dctx's timer has fired or the clock has
// reached its deadline. The clock is read only when the timer has not fired:
// an operation (a server answering DEADLINE_EXCEEDED, a client that checks
// the deadline itself) can notice the deadline before the context's own
// timer runs, at the same instant under testing/synctest.
//
// It must be called before dctx's cancel function, which would turn its
// error into context.Canceled.
func Expired(ctx, dctx context.Context) bool {
	dl, ok := dctx.Deadline()
	if !ok {
		return false
	}
	if pdl, pok := ctx.Deadline(); pok && !dl.Before(pdl) {
		return false // the caller's deadline rules
	}
	switch dctx.Err() {
	case context.DeadlineExceeded:
		return true // our timer fired (the caller's deadline, being later, cannot have come first)
	case nil:
		return ctx.Err() == nil && !time.Now().Before(dl)
	}
	return false // context.Canceled: the caller cancelled first
}
