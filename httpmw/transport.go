package httpmw

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/seawall-go/seawall"
	"github.com/seawall-go/seawall/breaker"
	"github.com/seawall-go/seawall/hedge"
	expiry "github.com/seawall-go/seawall/internal/deadline"
	"github.com/seawall-go/seawall/registry"
	"github.com/seawall-go/seawall/retry"
	"github.com/seawall-go/seawall/throttle"
)

// A Transport is an http.RoundTripper that makes the requests of an
// http.Client resilient: it retries what is safe to replay, on connection
// errors and on 502, 503, 504 and 429 answers, with jittered exponential
// backoff, honouring Retry-After and within a retry budget (a [retry.Retry]);
// it can put a circuit breaker in front of each host (or route, or any key)
// and give each attempt
// its own timeout; and it tells the server how long the caller will wait
// (TimeoutHeader).
//
// # What is retried
//
// Only requests that are safe to send twice are retried: GET, HEAD,
// OPTIONS, TRACE, PUT and DELETE (idempotent by RFC 9110), and any request
// that carries an Idempotency-Key or X-Idempotency-Key header; and only if
// their body can be sent again, that is, they have none (nil or
// http.NoBody) or a GetBody to make a new one (http.NewRequest sets it for
// the usual in-memory bodies). Any other request is sent once.
//
// An attempt is retried when it fails with an error the retry's Retryable
// accepts (by default every error but the caller's context ending, a local
// rejection without a hint, and a TLS certificate that does not verify), or
// when the server answers with one of the retried statuses (WithRetryStatuses;
// default 502, 503, 504 and 429). A Retry-After header in such an answer,
// as delta-seconds or as an HTTP date (or, preferred when present, a
// RetryAfterMsHeader in milliseconds, as the [Server] of this
// package sends it), is the least wait before the next attempt, capped by
// the retry's MaxHint; a Retry-After that would outlast the
// caller's deadline ends the retries at once. A malformed, negative or absurd
// (over 9 digits) Retry-After is ignored.
//
// When retries end without a success, RoundTrip returns the last response
// unchanged (a 503 is an answer, not an error), or, if the last attempt got
// no response, an error: a *retry.Error wrapping the attempt's error and the
// reason retries stopped. The body of every response it does not return is
// drained (up to 64 KiB) and closed, so that its connection can be reused.
//
// The caller's request is never modified: each attempt sends a clone when it
// must change anything.
//
// # Breakers, timeouts, deadlines
//
// With WithBreakers, each attempt first asks the request's breaker in the
// group: the breaker of its host (req.URL.Host), or of the key a
// [BreakerKeyFunc] gives it. A refused attempt ends the call at once (fail
// fast: no retry waits for the breaker to half-open) with an error matching
// breaker.ErrOpen, which carries the breaker's retry-after hint. The breaker
// judges each attempt's outcome with its Classify: an error, or for an
// answer of 500 or above, or 429, a [StatusError]; any other answer is a
// success. With breaker.DefaultClassify, errors, timeouts and 5xx answers
// without a hint are failures, the caller's own cancellation is neither,
// and so is an overload answer (below).
//
// # Shedding is not failure
//
// A 429, and a 503 with Retry-After (or RetryAfterMsHeader), is a server
// refusing work it cannot take now: its [StatusError] matches
// seawall.ErrRejected and carries the hint (0 for a 429 without one), so
// seawall.IsOverload is true of it. The retry waits at least the hint, the
// breaker ignores it by default (the request did not run), and a throttle
// counts it as a refusal. A 500, 502, 504, or a 503 without a hint, is a
// failure.
//
// With WithThrottle, each attempt, after its breaker admits it, asks a
// client-side [throttle.Throttle], which rejects attempts locally, before
// they are sent, while the server has been refusing more than it accepts.
// A throttled attempt ends the call with an error matching
// throttle.ErrThrottled (and seawall.ErrRejected): it has no hint, so no
// retry repeats it, and the breaker's permit is given back unused. An
// attempt the breaker refuses never reaches the throttle, so an open
// breaker does not count against the server. Retries are attempts, so the
// throttle counts them and can refuse them; the retry budget bounds them
// separately, as a share of requests.
//
// With WithAttemptTimeout, each attempt has its own timeout, which also
// bounds the reading of the body of the response returned; the caller's
// context deadline is never overrun, since every attempt runs under it and
// no retry waits past it.
//
// Each attempt whose context has a deadline carries the time left in
// TimeoutHeader, for a [Server] with WithDeadline (unless
// WithoutTimeoutHeader).
//
// # Hedging
//
// With WithHedge, a request that is safe to replay and has not been
// answered within the hedge delay is sent again alongside, and the first
// answer wins: the slow tail of a dependency (a replica pausing, a lost
// packet) is cut for a few percent more requests. Hedging is inside the
// retry, spends from its budget, and sends nothing to a host whose breaker
// is not closed; see [WithHedge].
//
// With WithAttemptObserver, each attempt of an observed request is
// reported once it has ended (a seawall.Attempt: its number, the wait
// before it and why, its outcome, status, hint and error), for a span to
// show (otelseawall.NewAttemptObserver).
//
// A Transport is safe for concurrent use by multiple goroutines.
type Transport struct {
	base           http.RoundTripper
	retry          *retry.Retry // nil: no retries
	breakers       *breaker.Group
	breakerKey     BreakerKeyFunc
	attemptTimeout time.Duration
	statuses       statusSet
	timeoutHeader  bool
	throttle       *throttle.Throttle
	observer       seawall.AttemptObserver
	hedge          *hedge.Hedge // nil: no hedging
}

// A TransportOption configures a [Transport]. An option given twice
// replaces the first.
type TransportOption func(*transportOptions) error

type transportOptions struct {
	retry          retry.Config
	breakers       *breaker.Group
	breakerKey     BreakerKeyFunc
	attemptTimeout time.Duration
	statuses       []int
	noHeader       bool
	throttle       *throttle.Throttle
	reg            *registry.Registry
	regName        string
	observer       seawall.AttemptObserver
	hedge          *hedge.Config
}

// WithRetry sets the retry policy: attempts (MaxAttempts, including the
// first; 1 turns retries off), delays, MaxHint, budget (use SharedBudget to
// share one among transports) and Retryable. The default is the zero
// retry.Config: 3 attempts, 100ms doubling with full jitter, a budget of 10%
// of requests. Its AttemptTimeout, if set, is the transport's attempt
// timeout, as if set by WithAttemptTimeout.
func WithRetry(cfg retry.Config) TransportOption {
	return func(o *transportOptions) error { o.retry = cfg; return nil }
}

// WithBreakers puts a breaker of g in front of every attempt: the one
// named by key for the request (nil means [BreakerPerHost]). An open
// breaker fails the request fast (see [Transport]). It is an error if g is
// nil.
func WithBreakers(g *breaker.Group, key BreakerKeyFunc) TransportOption {
	return func(o *transportOptions) error {
		if g == nil {
			return errors.New("httpmw: WithBreakers: nil group")
		}
		if key == nil {
			key = BreakerPerHost
		}
		o.breakers, o.breakerKey = g, key
		return nil
	}
}

// WithThrottle puts the client-side throttle th in front of every attempt,
// after the breaker (see [Transport]): while the servers behind it refuse
// work, it rejects attempts before they are sent. Share one throttle among
// transports that call the same backend. It is an error if th is nil.
func WithThrottle(th *throttle.Throttle) TransportOption {
	return func(o *transportOptions) error {
		if th == nil {
			return errors.New("httpmw: WithThrottle: nil throttle")
		}
		o.throttle = th
		return nil
	}
}

// WithAttemptObserver reports each attempt of a request to o, which
// otelseawall.NewAttemptObserver records on the request's span: RoundTrip
// asks o.Observing(req.Context()) once, and, if it is true, calls
// o.Attempt after each attempt (see seawall.Attempt), with the request's
// context. A request that is not observed costs one method call more. It is
// an error if o is nil.
func WithAttemptObserver(o seawall.AttemptObserver) TransportOption {
	return func(opts *transportOptions) error {
		if o == nil {
			return errors.New("httpmw: WithAttemptObserver: nil observer")
		}
		opts.observer = o
		return nil
	}
}

// A BreakerKeyFunc names the breaker of a [Transport]'s group that
// protects a request: requests with the same key share a breaker, which
// their failures open. It is called once per RoundTrip, and must not
// modify the request. Besides the ready-made [BreakerPerHost] and
// [BreakerPerHostMethod], a key may name a route ("GET /v1/users/{id}"),
// so that one failing endpoint does not stop calls to the others; keep
// the number of keys small (the group holds a bounded number), never
// derived from IDs in the path.
type BreakerKeyFunc func(req *http.Request) string

// BreakerPerHost is the default BreakerKeyFunc: one breaker per host,
// req.URL.Host, port included ("account.internal:8443").
func BreakerPerHost(req *http.Request) string { return req.URL.Host }

// BreakerPerHostMethod is a BreakerKeyFunc with one breaker per host and
// method ("POST account.internal:8443"; no method is GET), so that failing
// writes do not stop reads. It allocates its key, once per RoundTrip.
func BreakerPerHostMethod(req *http.Request) string {
	m := req.Method
	if m == "" {
		m = http.MethodGet
	}
	return m + " " + req.URL.Host
}

// WithAttemptTimeout gives each attempt a timeout of d, from sending the
// request to closing the body of the response returned. An attempt that runs
// out of it is retried (if the request may be) with an error whose Timeout
// method reports true. Requests with an Upgrade header (WebSocket) have no
// attempt timeout: the connection they ask for outlives the attempt.
// It is an error if d is negative; 0 means no attempt timeout.
func WithAttemptTimeout(d time.Duration) TransportOption {
	return func(o *transportOptions) error {
		if d < 0 {
			return fmt.Errorf("httpmw: WithAttemptTimeout(%v): negative", d)
		}
		o.attemptTimeout = d
		return nil
	}
}

// WithRetryStatuses sets the response statuses that are retried, in place
// of 502, 503, 504 and 429. No status at all retries errors only. It is an
// error if a code is not an HTTP status (100–599).
func WithRetryStatuses(codes ...int) TransportOption {
	return func(o *transportOptions) error {
		for _, c := range codes {
			if c < 100 || c > 599 {
				return fmt.Errorf("httpmw: WithRetryStatuses: %d is not an HTTP status (100–599)", c)
			}
		}
		o.statuses = append([]int{}, codes...)
		return nil
	}
}

// WithoutTimeoutHeader keeps the transport from sending TimeoutHeader, for
// servers that should not learn how long their callers wait.
func WithoutTimeoutHeader() TransportOption {
	return func(o *transportOptions) error { o.noHeader = true; return nil }
}

// DefaultRetryStatuses are the response statuses a [Transport] retries
// unless WithRetryStatuses says otherwise.
var DefaultRetryStatuses = []int{
	http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout, http.StatusTooManyRequests,
}

// NewTransport returns a Transport sending through base (nil means
// http.DefaultTransport), configured by opts. It returns an error naming the
// first invalid option and its value: a field of WithRetry's retry.Config,
// a negative attempt timeout, a status outside 100–599, a nil breaker
// group.
func NewTransport(base http.RoundTripper, opts ...TransportOption) (*Transport, error) {
	o := transportOptions{statuses: DefaultRetryStatuses}
	for i, opt := range opts {
		if opt == nil {
			return nil, fmt.Errorf("httpmw: NewTransport: option %d is nil", i)
		}
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	if base == nil {
		base = http.DefaultTransport
	}
	t := &Transport{base: base, breakers: o.breakers, breakerKey: o.breakerKey, timeoutHeader: !o.noHeader, throttle: o.throttle, observer: o.observer}
	t.attemptTimeout = o.attemptTimeout
	cfg := o.retry
	if cfg.AttemptTimeout != 0 {
		if cfg.AttemptTimeout < 0 {
			return nil, fmt.Errorf("httpmw: WithRetry: retry: AttemptTimeout %v is negative", cfg.AttemptTimeout)
		}
		if t.attemptTimeout == 0 {
			t.attemptTimeout = cfg.AttemptTimeout
		}
		// The transport times attempts itself: the response of an attempt
		// outlives it (its body is read after RoundTrip returns).
		cfg.AttemptTimeout = 0
	}
	if cfg.Retryable == nil {
		cfg.Retryable = defaultRetryable
	}
	r, err := retry.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("httpmw: WithRetry: %w", err)
	}
	if cfg.MaxAttempts != 1 {
		t.retry = r
	}
	for _, c := range o.statuses {
		t.statuses.add(c)
	}
	if o.hedge != nil {
		if err := t.newHedge(*o.hedge, cfg.Retryable); err != nil {
			return nil, err
		}
	}
	if o.reg != nil {
		if err := o.reg.RegisterAll(t.policies(o.regName)...); err != nil {
			return nil, fmt.Errorf("httpmw: WithRegistry: %w", err)
		}
	}
	return t, nil
}

// defaultRetryable is the Transport's Retryable: retry.DefaultRetryable,
// except that a certificate that does not verify will not verify on the
// next attempt either.
func defaultRetryable(err error) bool {
	var (
		verr *tls.CertificateVerificationError
		uerr x509.UnknownAuthorityError
		herr x509.HostnameError
		cerr x509.CertificateInvalidError
	)
	if errors.As(err, &verr) || errors.As(err, &uerr) || errors.As(err, &herr) || errors.As(err, &cerr) {
		return false
	}
	return retry.DefaultRetryable(err)
}

// statusSet is a set of HTTP statuses, 0 to 639.
type statusSet [10]uint64

func (s *statusSet) add(c int)      { s[c/64] |= 1 << (c % 64) }
func (s *statusSet) has(c int) bool { return c >= 0 && c < 640 && s[c/64]&(1<<(c%64)) != 0 }

// StatusError is the error an attempt counts as when the server answered
// with a retried status (what a custom Retryable, see WithRetry, sees), or
// with 429 or a status of 500 or above (what the breaker's Classify and the
// throttle's Rejected see). If the answer had a Retry-After (or
// RetryAfterMsHeader), the error carries it as a retry-after hint
// (seawall.RetryAfter).
//
// The error of an overload answer, a 429 or a 503 with a hint, matches
// seawall.ErrRejected and always carries a hint (0 for a 429 without one),
// so seawall.IsOverload is true of it: see [Transport].
type StatusError struct {
	StatusCode int

	overload bool
}

func (e *StatusError) Error() string {
	return "httpmw: " + strconv.Itoa(e.StatusCode) + " " + http.StatusText(e.StatusCode)
}

// Is reports whether target is seawall.ErrRejected and e is an overload
// answer.
func (e *StatusError) Is(target error) bool { return e.overload && target == seawall.ErrRejected }

// statusError returns the error of an attempt answered with resp: a
// *StatusError, with the answer's hint if any; an overload answer (429, or
// 503 with a hint) matches seawall.ErrRejected and has a hint, 0 for a 429
// without one.
func statusError(resp *http.Response) error {
	e := &StatusError{StatusCode: resp.StatusCode}
	d, hinted := parseRetryAfter(resp.Header)
	switch {
	case e.StatusCode == http.StatusTooManyRequests:
		e.overload, hinted = true, true // d is 0 without a hint: the backoff decides
	case e.StatusCode == http.StatusServiceUnavailable && hinted:
		e.overload = true
	}
	if hinted {
		return seawall.WithRetryAfter(e, d)
	}
	return e
}

// answerError returns the error of an attempt for its breaker and
// throttle: its own, or that of an answer of 429 or 500 and above; nil for
// any other answer.
func answerError(resp *http.Response, err error) error {
	if err != nil || (resp.StatusCode < 500 && resp.StatusCode != http.StatusTooManyRequests) {
		return err
	}
	return statusError(resp)
}

// AttemptTimeoutError is the error of an attempt that ran out of its attempt
// timeout (WithAttemptTimeout) while the caller's context had not ended.
type AttemptTimeoutError struct {
	After time.Duration // the attempt timeout
}

func (e *AttemptTimeoutError) Error() string {
	return "httpmw: attempt timed out after " + e.After.String()
}

// Timeout reports true, as net.Error's Timeout does for a timeout.
func (e *AttemptTimeoutError) Timeout() bool { return true }

// RoundTrip sends req, and sends it again as the Transport's policy says;
// see [Transport].
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	o := t.observer
	if o != nil && !o.Observing(ctx) {
		o = nil // nothing is built for a call nobody observes
	}
	a := attempts{t: t, req: req}
	defer a.closeBody()
	replay := replayable(req)
	hedged := t.hedge != nil && replay
	if t.retry == nil || !replay {
		var resp *http.Response
		var err error
		if hedged {
			resp, err = a.hedged(ctx)
		} else {
			resp, err = a.send(ctx)
		}
		if o != nil {
			o.Attempt(ctx, a.report(1, 0, seawall.DelayNone, resp, answerError(resp, err), true))
		}
		return resp, err
	}
	l := t.retry.Loop(ctx)
	var resp *http.Response
	for l.Next() {
		var err error
		if hedged {
			resp, err = a.hedged(l.Context())
		} else {
			resp, err = a.send(l.Context())
		}
		if err == nil && t.statuses.has(resp.StatusCode) {
			err = statusError(resp)
		}
		l.Record(err)
		if o != nil {
			a.observe(o, &l, resp, err)
		}
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

// attempts is the state of one RoundTrip.
type attempts struct {
	t        *Transport
	req      *http.Request
	breaker  *breaker.Breaker // the request's, once the first attempt has looked it up
	bodyUsed bool             // req.Body has been handed to the base transport, which closes it
	refused  string           // the policy that refused the last attempt, for an observer: "breaker", "throttle"; "" if it was sent

	// For an observer: the delay before the next attempt, and why.
	delay time.Duration
	why   seawall.DelayReason
}

// closeBody closes the request's body if no attempt sent it: a RoundTripper
// must close it, even on errors.
func (a *attempts) closeBody() {
	if !a.bodyUsed && a.req.Body != nil {
		a.req.Body.Close()
	}
}

// send makes one attempt of the request under ctx.
func (a *attempts) send(ctx context.Context) (*http.Response, error) {
	t, req := a.t, a.req
	var permit breaker.Permit
	if t.breakers != nil {
		if a.breaker == nil {
			a.breaker = t.breakers.Get(t.breakerKey(req))
		}
		p, err := a.breaker.Allow()
		if err != nil {
			a.refused = "breaker"
			return nil, err // fails fast: retry.DefaultRetryable does not wait out an open breaker
		}
		permit = p
	}
	var tp throttle.Permit
	if t.throttle != nil {
		p, err := t.throttle.Allow()
		if err != nil {
			a.refused = "throttle"
			permit.Record(breaker.Ignore) // the attempt is not made
			return nil, err               // not retried: throttle.ErrThrottled has no hint
		}
		tp = p
	}
	var cancel context.CancelFunc
	if t.attemptTimeout > 0 && req.Header.Get("Upgrade") == "" { // an upgraded connection outlives the attempt
		// The attempt's context is cancelled when the body of its answer
		// is closed (cancelBody), or when the answer is discarded.
		ctx, cancel = context.WithTimeout(ctx, t.attemptTimeout)
	}
	out := req
	deadline, hasDeadline := ctx.Deadline()
	switch {
	case hasDeadline && t.timeoutHeader:
		// A shallow copy with its own Header is all that changes: cheaper
		// than req.Clone, which copies the URL and trailers too.
		out = req.WithContext(ctx)
		out.Header = req.Header.Clone()
		if out.Header == nil {
			out.Header = make(http.Header, 1)
		}
		setTimeout(out.Header, time.Until(deadline))
	case ctx != req.Context() || a.bodyUsed:
		out = req.WithContext(ctx)
	}
	if a.bodyUsed && req.Body != nil && req.Body != http.NoBody {
		body, err := req.GetBody()
		if err != nil {
			if cancel != nil {
				cancel()
			}
			permit.Record(breaker.Ignore) // tp is left unrecorded: forgotten
			return nil, seawall.Permanent(fmt.Errorf("httpmw: GetBody: %w", err))
		}
		out.Body = body
	}
	a.bodyUsed = true
	resp, err := t.base.RoundTrip(out)
	if permit != (breaker.Permit{}) || tp != (throttle.Permit{}) {
		ans := answerError(resp, err) // one rule for both: an overload is no failure
		permit.Done(ans)
		tp.Done(ans)
	}
	if cancel != nil {
		if err != nil {
			if expiry.Expired(req.Context(), ctx) {
				err = &AttemptTimeoutError{After: t.attemptTimeout}
			}
			cancel()
		} else {
			resp.Body = &cancelBody{ReadCloser: resp.Body, cancel: cancel}
		}
	}
	return resp, err
}

// replayable reports whether req may be sent more than once: its method is
// idempotent or it carries an idempotency key, and its body (if any) can be
// made again.
func replayable(req *http.Request) bool {
	if req.Body != nil && req.Body != http.NoBody && req.GetBody == nil {
		return false
	}
	switch req.Method {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	_, ok := req.Header["Idempotency-Key"]
	if !ok {
		_, ok = req.Header["X-Idempotency-Key"]
	}
	return ok
}

// maxDrain bounds how much of a discarded response body is read so that its
// connection can be reused; a longer body is closed unread, and its
// connection with it.
const maxDrain = 64 << 10

// discard drains and closes the body of a response that is not returned.
func discard(resp *http.Response) {
	if resp.ContentLength <= maxDrain {
		io.CopyN(io.Discard, resp.Body, maxDrain+1)
	}
	resp.Body.Close()
}

// cancelBody ends an attempt's context when its response body is closed.
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
func (t *Transport) CloseIdleConnections() {
	if c, ok := t.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// Metrics returns a snapshot of the retry counters of t (retries made, calls
// that gave up, and its budget's counters); zeros if retries are off. The
// breakers' metrics are those of the group passed to WithBreakers.
func (t *Transport) Metrics() retry.Metrics {
	if t.retry == nil {
		return retry.Metrics{}
	}
	return t.retry.Metrics()
}
