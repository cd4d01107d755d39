package httpmw

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/seawall-go/seawall"
	"github.com/seawall-go/seawall/breaker"
	"github.com/seawall-go/seawall/hedge"
	"github.com/seawall-go/seawall/throttle"
)

// WithHedge hedges the requests that are safe to replay (see [Transport]):
// when an attempt has not answered within the hedge delay, another is sent
// alongside it, and the first answer wins. cfg is a hedge.Config: its
// MaxAttempts (the attempts of one hedged round, default 2), its delay
// (fixed, or by default the 95th percentile of recent answers' latencies)
// and its Gate. The transport supplies the rest:
//
//   - With retries (WithRetry), hedging is inside the retry: each retry
//     attempt is a hedged round, and hedges spend from the retry's budget,
//     so that retries and hedges together stay within it, unless
//     cfg.Budget names another budget, which then bounds the hedges (as
//     it does without retries).
//   - A hedge starts only while the request's breaker (WithBreakers) is
//     closed (or disabled): none goes to a host whose breaker is open or
//     probing (half-open). Each
//     attempt asks the breaker and the throttle, and has its own attempt
//     timeout and request body (from GetBody).
//   - An attempt is non-fatal, and the next hedge is sent at once, when it
//     fails as the retry would retry (its Retryable; by default connection
//     errors and timeouts) or is answered with a retried status (by default
//     502, 503, 504, 429). A Retry-After (or RetryAfterMsHeader) in such an
//     answer delays the next hedge; one that outlasts the request's
//     deadline, the server's "do not try again", stops hedging. Any other
//     error, or a breaker or throttle refusing the first attempt, ends
//     every attempt of the round. cfg.NonFatal is ignored.
//   - Any other answer (a 200, a 404, a 500) wins: the other attempts are
//     cancelled, and the answers that come for them anyway have their
//     bodies drained and closed. The winner's body stays readable until the
//     caller closes it; Close returns once no losing attempt is still
//     sending the request (they were cancelled, so at once), so that the
//     caller may reuse the request, as http.RoundTripper allows.
//   - If every attempt of a round fails, the round's outcome is its first
//     attempt's, as without hedging: its error, or its answer (a 503), of
//     which RoundTrip keeps at most 64 KiB of body (the attempts' contexts
//     end with the round).
//
// An observer (WithAttemptObserver) sees a round as one attempt; the
// hedge's metrics (registered as "<name>.hedge" with WithRegistry) count
// the hedges and their wins. It is an error if cfg is invalid.
func WithHedge(cfg hedge.Config) TransportOption {
	return func(o *transportOptions) error {
		o.hedge = &cfg
		return nil
	}
}

// newHedge builds the transport's Hedge from cfg, once the retry is known.
func (t *Transport) newHedge(cfg hedge.Config, retryable func(error) bool) error {
	cfg.NonFatal = func(err error) bool { return hedgeNonFatal(err, retryable) }
	if t.retry != nil {
		if b := t.retry.Budget(); b != nil && (cfg.Budget == nil || cfg.Budget == hedge.Budget(b)) {
			// The retry counts each request in its budget; the hedge must
			// not count it again.
			cfg.Budget = hedge.SpendOnly(b)
		}
	}
	h, err := hedge.New(cfg)
	if err != nil {
		return fmt.Errorf("httpmw: WithHedge: %w", err)
	}
	t.hedge = h
	return nil
}

// hedgeNonFatal is the transport's hedge.Config.NonFatal.
func hedgeNonFatal(err error, retryable func(error) bool) bool {
	switch {
	case errors.Is(err, hedge.ErrStopHedging):
		return true // no more hedges; the others go on
	case errors.Is(err, breaker.ErrOpen), errors.Is(err, throttle.ErrThrottled):
		return false // the first attempt refused locally: fail fast
	case seawall.IsPermanent(err):
		return false
	}
	var se *StatusError
	if errors.As(err, &se) {
		return true // a retried status
	}
	return retryable(err)
}

// round is the state of one hedged round that its attempts share.
type round struct {
	a      *attempts
	n      atomic.Int32 // attempts begun
	cancel context.CancelFunc
	body   roundBody // the winner's

	mu      sync.Mutex
	kept    *http.Response // the first attempt's answer with a retried status
	closed  bool           // the round is over: a late answer is discarded
	running int            // attempts sending the request
	idle    chan struct{}  // closed when running falls to 0 after closed, if made
}

// end ends the round: it cancels every attempt still running and waits
// until none is sending the request, which the caller may reuse once
// RoundTrip has returned an error or the body it returned is closed. They
// were cancelled, so they end at once.
func (r *round) end() {
	r.cancel()
	r.mu.Lock()
	idle := r.idle
	if r.running > 0 && idle == nil {
		idle = make(chan struct{})
		r.idle = idle
	}
	r.mu.Unlock()
	if idle != nil {
		<-idle
	}
}

// roundBody is the winner's body: closing it ends the round.
type roundBody struct {
	io.ReadCloser
	r *round
}

func (b *roundBody) Close() error {
	err := b.ReadCloser.Close()
	b.r.end()
	return err
}

// hedged makes one hedged round of the request under ctx: the attempts a
// send would make, hedged by the transport's Hedge. Like send, it returns
// an answer with a retried status as an answer, not an error.
func (a *attempts) hedged(ctx context.Context) (*http.Response, error) {
	t := a.t
	if t.breakers != nil && a.breaker == nil {
		a.breaker = t.breakers.Get(t.breakerKey(a.req))
	}
	// The round's own context, a child of ctx, is the parent of every
	// attempt's: the winner's body ends it on Close, so that no attempt's
	// context outlives the request among ctx's children.
	rctx, cancel := context.WithCancel(ctx)
	r := &round{a: a, cancel: cancel}
	var gate func() bool
	if a.breaker != nil {
		gate = func() bool { s := a.breaker.State(); return s == breaker.Closed || s == breaker.Disabled }
	}
	resp, err := hedge.GetGated(rctx, t.hedge, gate, r.attempt, discard)
	r.mu.Lock()
	kept := r.kept
	r.closed = true
	r.mu.Unlock()
	if err == nil {
		if kept != nil {
			discard(kept) // the first attempt lost
		}
		r.body = roundBody{ReadCloser: resp.Body, r: r}
		resp.Body = &r.body
		return resp, nil
	}
	r.end()
	var se *StatusError
	if kept != nil && errors.As(err, &se) && se.StatusCode == kept.StatusCode {
		return kept, nil // every attempt failed: the first's answer
	}
	if kept != nil {
		discard(kept)
	}
	return nil, err
}

// attempt is the hedge's operation: one attempt of the round.
func (r *round) attempt(ctx context.Context) (*http.Response, error) {
	a := r.a
	first := r.n.Add(1) == 1
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil, context.Canceled // too late: the request is the caller's again
	}
	r.running++
	r.mu.Unlock()
	s := attempts{t: a.t, req: a.req, breaker: a.breaker, bodyUsed: true} // each attempt its own body
	resp, err := s.send(ctx)
	r.mu.Lock()
	if r.running--; r.running == 0 && r.idle != nil {
		close(r.idle)
	}
	r.mu.Unlock()
	if first {
		r.mu.Lock()
		if !r.closed {
			a.refused = s.refused // for an observer, who sees the round as one attempt
		}
		r.mu.Unlock()
	}
	if err != nil {
		if !first && (errors.Is(err, breaker.ErrOpen) || errors.Is(err, throttle.ErrThrottled)) {
			return nil, hedge.StopHedging(err) // refused locally: send no more, stop no one
		}
		return nil, err
	}
	if !a.t.statuses.has(resp.StatusCode) {
		return resp, nil // an answer: it may win
	}
	err = statusError(resp)
	if d, ok := seawall.RetryAfter(err); ok {
		if dl, has := ctx.Deadline(); has && time.Until(dl) < d {
			err = hedge.StopHedging(err) // the server's "not before the caller gives up"
		}
	}
	if !first {
		discard(resp)
		return nil, err
	}
	// The first attempt's answer is the round's if every attempt fails;
	// its context ends with the round, so keep what the caller may read.
	keep(resp)
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		resp.Body.Close()
		return nil, err
	}
	r.kept = resp
	r.mu.Unlock()
	return nil, err
}

// keep replaces resp's body with a copy in memory of at most maxDrain
// bytes of it; a longer body reads as cut, with an error, after those.
func keep(resp *http.Response) {
	var buf bytes.Buffer
	_, err := io.CopyN(&buf, resp.Body, maxDrain+1)
	resp.Body.Close()
	switch {
	case buf.Len() > maxDrain:
		buf.Truncate(maxDrain)
		err = errors.New("httpmw: body of a failed hedged attempt cut at 64 KiB")
	case err == io.EOF:
		err = nil
	}
	var body io.Reader = &buf
	if err != nil {
		body = io.MultiReader(&buf, errReader{err})
	}
	resp.Body = io.NopCloser(body)
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }
