package preset

import (
	"context"
	"io"
	"net/http"
	"time"

	"github.com/seawall-go/seawall/breaker"
	"github.com/seawall-go/seawall/httpmw"
	expiry "github.com/seawall-go/seawall/internal/deadline"
	"github.com/seawall-go/seawall/ratelimit"
	"github.com/seawall-go/seawall/retry"
)

// An HTTPTransport is an http.RoundTripper that runs each request through
// the standard pipeline of a [Config]:
//
//  1. the rate limiter, if any: the call waits for a token, within its
//     total timeout, or is refused at once (an error matching
//     ratelimit.ErrLimited, with the wait as its retry-after hint) if the
//     token would come after its deadline;
//  2. the total timeout: the request's context gets a deadline of
//     Config.Timeout from the start of the call (the caller's deadline, if
//     earlier, rules), which bounds the limiter's wait, every attempt,
//     every wait between attempts, and the reading of the response body;
//  3. an [httpmw.Transport] with the retry (httpmw.WithRetry), a breaker
//     per host (httpmw.WithBreakers with httpmw.BreakerPerHost) that every
//     attempt asks first, and the attempt timeout
//     (httpmw.WithAttemptTimeout), as httpmw documents them.
//
// The deadline of the total timeout is released when the body of the
// response returned is closed, or at once when RoundTrip returns an error:
// as for any http.RoundTripper, close the body. (An http.Client that
// follows a redirect closes the body of the redirect and sends a new
// request, with a total timeout of its own: bound the whole of Client.Do
// with the context's deadline.) A call that runs out of the
// total timeout while the caller's context is alive fails with a
// [*TimeoutError]. Requests with an Upgrade header (WebSocket) have no
// total timeout: the connection they ask for outlives the call.
//
// The caller's request is never modified. An HTTPTransport is safe for
// concurrent use by multiple goroutines.
type HTTPTransport struct {
	limiter  *ratelimit.Limiter // nil: none
	timeout  time.Duration
	breakers *breaker.Group // nil: none
	next     *httpmw.Transport
}

// NewHTTPTransport returns an HTTPTransport sending through base (nil
// means http.DefaultTransport), configured by cfg (see [Config.Validate]
// for the errors it returns) and then by opts: httpmw's transport options,
// which come after the preset's and so replace them (an option given twice
// replaces the first: httpmw.WithRetry replaces the retry of cfg,
// httpmw.WithBreakers its breakers). httpmw.WithRegistry registers the
// retry and the breaker group; register the limiter yourself
// ([HTTPTransport.Limiter]) if you want it named.
//
// Use it as an http.Client's Transport, and leave the client's Timeout
// zero: the total timeout is the preset's.
//
//	t, err := preset.NewHTTPTransport(nil, cfg)
//	client := &http.Client{Transport: t}
func NewHTTPTransport(base http.RoundTripper, cfg Config, opts ...httpmw.TransportOption) (*HTTPTransport, error) {
	c, err := cfg.resolve()
	if err != nil {
		return nil, err
	}
	t := &HTTPTransport{timeout: c.Timeout}
	if c.RateLimit != nil {
		if t.limiter, err = ratelimit.New(*c.RateLimit); err != nil {
			return nil, stageError("rateLimit", "ratelimit: ", err) // not reached: resolve checked it
		}
	}
	popts := []httpmw.TransportOption{httpmw.WithRetry(c.Retry), httpmw.WithAttemptTimeout(c.AttemptTimeout)}
	if !c.DisableBreaker {
		if t.breakers, err = breaker.NewGroup(c.Breaker, 0); err != nil {
			return nil, stageError("breaker", "breaker: ", err) // not reached: resolve checked it
		}
		popts = append(popts, httpmw.WithBreakers(t.breakers, httpmw.BreakerPerHost))
	}
	if t.next, err = httpmw.NewTransport(base, append(popts, opts...)...); err != nil {
		return nil, err
	}
	return t, nil
}

// TimeoutError is the error of a call that ran out of the total timeout
// (Config.Timeout) while the caller's context was still alive. It wraps
// the error the call ended with, which matches context.DeadlineExceeded.
type TimeoutError struct {
	After time.Duration // the total timeout
	Err   error
}

func (e *TimeoutError) Error() string {
	return "preset: call timed out after " + e.After.String() + ": " + e.Err.Error()
}

// Unwrap returns the error the call ended with.
func (e *TimeoutError) Unwrap() error { return e.Err }

// Timeout reports true, as net.Error's Timeout does for a timeout.
func (e *TimeoutError) Timeout() bool { return true }

// RoundTrip sends req through the pipeline; see [HTTPTransport].
func (t *HTTPTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Header.Get("Upgrade") != "" { // the connection outlives the call
		if err := t.wait(req.Context()); err != nil {
			closeBody(req)
			return nil, err
		}
		return t.next.RoundTrip(req)
	}
	parent := req.Context()
	ctx, cancel := context.WithTimeout(parent, t.timeout)
	if err := t.wait(ctx); err != nil {
		err = t.expired(parent, ctx, err)
		cancel()
		closeBody(req)
		return nil, err
	}
	resp, err := t.next.RoundTrip(req.WithContext(ctx))
	if err != nil {
		err = t.expired(parent, ctx, err)
		cancel()
		return nil, err
	}
	resp.Body = &cancelBody{ReadCloser: resp.Body, cancel: cancel}
	return resp, nil
}

// wait waits for the limiter's token, if there is a limiter.
func (t *HTTPTransport) wait(ctx context.Context) error {
	if t.limiter == nil {
		return nil
	}
	return t.limiter.Wait(ctx)
}

// expired returns err, wrapped in a *TimeoutError if ctx's deadline (the
// total timeout), not parent's, ended the call.
func (t *HTTPTransport) expired(parent, ctx context.Context, err error) error {
	if expiry.Expired(parent, ctx) {
		return &TimeoutError{After: t.timeout, Err: err}
	}
	return err
}

// closeBody closes the body of a request that is not sent: a RoundTripper
// must close it, even on errors.
func closeBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}

// cancelBody releases a call's total timeout when its response body is
// closed.
type cancelBody struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (b *cancelBody) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}

// CloseIdleConnections closes the idle connections of the base transport,
// if it has such a method (http.Client.CloseIdleConnections calls it).
func (t *HTTPTransport) CloseIdleConnections() { t.next.CloseIdleConnections() }

// Limiter returns the rate limiter of t, nil if it has none: to register
// it (as name+".ratelimit", say), read its metrics, or change its rate.
func (t *HTTPTransport) Limiter() *ratelimit.Limiter { return t.limiter }

// Breakers returns the breaker group built from Config.Breaker, one
// breaker per host; nil if the breakers are disabled
// (Config.DisableBreaker). If an httpmw.WithBreakers option replaced it,
// the group is unused.
func (t *HTTPTransport) Breakers() *breaker.Group { return t.breakers }

// Metrics returns a snapshot of the retry counters of t; see
// httpmw.Transport.Metrics.
func (t *HTTPTransport) Metrics() retry.Metrics { return t.next.Metrics() }
