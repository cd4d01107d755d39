package httpmw

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/seawall-go/seawall"
	"github.com/seawall-go/seawall/adaptive"
	"github.com/seawall-go/seawall/bulkhead"
	"github.com/seawall-go/seawall/fault"
	"github.com/seawall-go/seawall/internal/deadline"
	"github.com/seawall-go/seawall/internal/nilness"
	"github.com/seawall-go/seawall/ratelimit"
	"github.com/seawall-go/seawall/registry"
)

// StatusClientClosedRequest is the status a [Rejection] has when the client
// went away before its request was started (its context was done): nginx's
// non-standard 499. Nobody reads the response; it shows up in access logs.
const StatusClientClosedRequest = 499

// A Rejection describes a request that a [Server] refused to start, and is
// what a [RejectFunc] writes a response for.
type Rejection struct {
	// Status is the HTTP status to answer with: 429 (Too Many Requests)
	// from a rate limit, 503 (Service Unavailable) from load shedding, 504
	// (Gateway Timeout) for a request whose propagated deadline has passed,
	// StatusClientClosedRequest for a request whose client has gone.
	Status int
	// RetryAfter is when the client may try again: the rejection's own hint
	// (a rate limiter knows when its next token comes), or else the one set
	// with WithDefaultRetryAfter; 0 if none. The default writer turns it
	// into a Retry-After header in whole seconds, rounded up.
	RetryAfter time.Duration
	// Err is the policy's error: ratelimit.ErrLimited, bulkhead.ErrFull, a
	// context error, … It never holds the request's rate-limit key.
	Err error
}

// A RejectFunc writes the response to a rejected request. It must not call
// the next handler. The default is [WriteRejection].
type RejectFunc func(w http.ResponseWriter, r *http.Request, rej Rejection)

// WriteRejection is the default [RejectFunc]. It writes rej.Status with,
// when rej.RetryAfter is positive, a Retry-After header (whole seconds,
// rounded up: a client that waits that long finds the limiter ready) and a
// RetryAfterMsHeader (milliseconds, rounded up), and a short text/plain
// body, the status text ("Too Many Requests\n").
func WriteRejection(w http.ResponseWriter, r *http.Request, rej Rejection) {
	h := w.Header()
	setRetryAfter(h, rej.RetryAfter)
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(rej.Status)
	text := http.StatusText(rej.Status)
	if rej.Status == StatusClientClosedRequest {
		text = "Client Closed Request"
	}
	fmt.Fprintln(w, text)
}

// DefaultMaxTimeout is the cap to give WithDeadline unless a handler needs
// longer: the largest timeout from a request's TimeoutHeader that the
// handler gets.
const DefaultMaxTimeout = time.Minute

// A Server is the server middleware of this package: [Server.Handler]
// wraps an http.Handler (a whole server, or one route of an
// http.ServeMux) in the policies the Server was built with, applied in
// this order before the handler runs, each only if configured:
//
//   - WithDeadline: a request whose client has gone is not started (it is
//     answered with StatusClientClosedRequest), nor one whose deadline has
//     passed (504 Gateway Timeout); a request that carries TimeoutHeader (as
//     the [Transport] of this package sends it) gets a context that ends
//     when its client stops waiting, capped. Coming first, it lets the rate
//     limits and load shedding see the deadline: a request that would have
//     to queue past it is not queued.
//   - WithFaultInjection: while its fault.Injector is enabled, a request
//     may be delayed, answered with a chosen status, or have its
//     connection aborted, for game days.
//   - WithRateLimit, then WithKeyedRateLimit: a request the limiter refuses
//     is answered 429 Too Many Requests, with Retry-After.
//   - WithLoadShed: a request runs only while it holds a slot of a
//     bulkhead, after at most the bulkhead's bounded wait; one that finds
//     none is answered 503 Service Unavailable.
//   - WithAdaptiveLimit: the same with an adaptive concurrency limit, which
//     finds the handler's capacity from its latencies; a request over the
//     limit is answered 503 Service Unavailable.
//
// Rejections are written by the Server's [RejectFunc] ([WriteRejection]
// unless WithRejectFunc says otherwise), with the rejection's own
// retry-after hint (a limiter knows when its next token comes) or else the
// one set with WithDefaultRetryAfter. A refused request never reaches the
// handler.
//
//	s, err := httpmw.NewServer(httpmw.WithDeadline(httpmw.DefaultMaxTimeout), httpmw.WithLoadShed(bh))
//	srv := &http.Server{Addr: addr, Handler: s.Handler(api)}
//
// A Server is immutable once built; it and the handlers it returns are
// safe for concurrent use by multiple goroutines. The admit path (a request
// let through) allocates nothing, except, for a request that carries
// TimeoutHeader, the context with its deadline and the request that
// carries it.
type Server struct {
	reject     RejectFunc
	retryAfter time.Duration
	deadline   bool
	maxTimeout time.Duration
	limiter    ratelimit.Allower
	tryer      tryer // limiter, if it says when to come back
	keyed      ratelimit.KeyedLimiter
	key        KeyFunc
	bulkhead   *bulkhead.Bulkhead
	adaptive   *adaptive.Limiter
	fault      *fault.Injector
	faultResp  FaultResponse
	reg        *registry.Registry
	regName    string
}

// A ServerOption configures a [Server]. An option given twice replaces
// the first.
type ServerOption func(*Server) error

// NewServer returns a Server configured by opts, or an error naming the
// first invalid option and its value: a nil limiter, bulkhead, adaptive
// limiter or RejectFunc, a negative default retry-after, a maximum timeout
// that is not positive. A Server with no policy option passes every
// request through.
func NewServer(opts ...ServerOption) (*Server, error) {
	s := &Server{reject: WriteRejection}
	for i, opt := range opts {
		if opt == nil {
			return nil, fmt.Errorf("httpmw: NewServer: option %d is nil", i)
		}
		if err := opt(s); err != nil {
			return nil, err
		}
	}
	if s.reg != nil {
		if err := s.reg.RegisterAll(s.policies()...); err != nil {
			return nil, fmt.Errorf("httpmw: WithServerRegistry: %w", err)
		}
	}
	return s, nil
}

// WithDeadline makes the Server refuse a request whose context is already
// done, and give the handler the deadline a request carries in
// TimeoutHeader, capped by max (DefaultMaxTimeout is a sane choice), so
// that a client cannot make a handler hold its resources for a day. A
// request whose time is already up ("0") is answered 504 Gateway Timeout.
// A missing or malformed header (anything but 1 to 9 ASCII digits, or more
// than one value) sets no deadline. It is an error if max is not positive.
//
// The handler's context behaves as context.WithTimeout's would (Done, Err,
// context.Cause, context.AfterFunc, children, values), and ends when the
// handler returns, but arms no timer until somebody waits on it: a handler
// that only passes it on or checks its Err costs the request one
// allocation for the context, besides the request copy. The first call to
// its Done (a select, context.AfterFunc, a child context, a client that
// watches it) arms the timer as context.WithTimeout would.
func WithDeadline(max time.Duration) ServerOption {
	return func(s *Server) error {
		if max <= 0 {
			return fmt.Errorf("httpmw: WithDeadline(%v): not positive", max)
		}
		s.deadline, s.maxTimeout = true, max
		return nil
	}
}

// tryer is a ratelimit.Allower that can say when to come back: *ratelimit.Limiter.
type tryer interface {
	Try(n int) error
}

// WithRateLimit admits a request if l allows one event now, all requests
// together, and otherwise answers 429 Too Many Requests. If l has a method
// Try(n int) error that returns the retry-after hint in its error, as
// *ratelimit.Limiter does, the rejection's Retry-After is that hint;
// otherwise (a limiter with only Allow() bool, such as
// golang.org/x/time/rate's) it is the one set with WithDefaultRetryAfter,
// if any. To give each client its own budget, use WithKeyedRateLimit. It is
// an error if l is nil.
func WithRateLimit(l ratelimit.Allower) ServerOption {
	return func(s *Server) error {
		if nilness.Is(l) {
			return errors.New("httpmw: WithRateLimit: nil limiter")
		}
		s.limiter = l
		s.tryer, _ = l.(tryer)
		return nil
	}
}

// WithKeyedRateLimit gives each client its own limit in k (a
// *ratelimit.Keyed, or a limit a fleet shares), the client being named by
// key (nil means [RemoteIP]), and answers 429 Too Many Requests, with the
// Retry-After of k's refusal, to a request over its client's limit. Keys
// stay inside: they are not in the Rejection, nor in any log or metric of
// this package. It is an error if k is nil.
func WithKeyedRateLimit(k ratelimit.KeyedLimiter, key KeyFunc) ServerOption {
	return func(s *Server) error {
		if nilness.Is(k) {
			return errors.New("httpmw: WithKeyedRateLimit: nil limiter")
		}
		if key == nil {
			key = RemoteIP
		}
		s.keyed, s.key = k, key
		return nil
	}
}

// WithLoadShed runs a request only while it holds a slot of b, so that at
// most b's limit of requests run at once and the rest are shed before they
// cost anything. A request waits for a slot only as b allows (its
// MaxWaiting and MaxWait: keep the queue small and the wait short), and
// only while its client waits; a request that finds no slot is answered
// 503 Service Unavailable, with the Retry-After set by
// WithDefaultRetryAfter, if any (a bulkhead cannot know when a slot will
// free). One whose client leaves while it waits is answered with
// StatusClientClosedRequest, and one whose deadline passes while it waits
// with 504 Gateway Timeout. The slot is given back when the handler
// returns, or panics. It is an error if b is nil.
func WithLoadShed(b *bulkhead.Bulkhead) ServerOption {
	return func(s *Server) error {
		if b == nil {
			return errors.New("httpmw: WithLoadShed: nil bulkhead")
		}
		s.bulkhead = b
		return nil
	}
}

// WithAdaptiveLimit runs a request only while it holds a permit of l, an
// adaptive concurrency limit: in place of WithLoadShed's fixed number, l
// moves its limit with the latency of the handler, so that a server sheds
// what it cannot serve in time whatever its capacity of the day. A request
// over the limit (after l's bounded wait, if it has one) is answered 503
// Service Unavailable with a Retry-After of l's hint (the latency it last
// sampled, so Retry-After is 1, the seconds rounded up, and
// RetryAfterMsHeader has the milliseconds); WithDefaultRetryAfter applies
// only to rejections without a hint, which l does not make. One whose
// client leaves while it waits is answered with StatusClientClosedRequest,
// and one whose deadline passes with 504 Gateway Timeout.
//
// The handler's latency is l's sample, unless the request's context ended
// before the handler returned (the context's error is recorded: a client
// gone records nothing, a deadline passed is a drop) or the handler
// panicked (a drop; the permit is given back before the panic continues).
// With WithLoadShed too, a request takes the bulkhead's slot first. It is
// an error if l is nil.
func WithAdaptiveLimit(l *adaptive.Limiter) ServerOption {
	return func(s *Server) error {
		if l == nil {
			return errors.New("httpmw: WithAdaptiveLimit: nil limiter")
		}
		s.adaptive = l
		return nil
	}
}

// errHandlerPanicked is the outcome recorded for a handler that panicked.
var errHandlerPanicked = errors.New("httpmw: handler panicked")

// WithDefaultRetryAfter sets the Retry-After of 429 and 503 rejections
// that carry no hint of their own: a full bulkhead cannot know when a slot
// frees, and a limiter that only has Allow() bool cannot say when its next
// token comes. The default is none (no Retry-After header). It is not
// seawall.WithRetryAfter, which puts a hint on an error. It is an error if
// d is negative.
func WithDefaultRetryAfter(d time.Duration) ServerOption {
	return func(s *Server) error {
		if d < 0 {
			return fmt.Errorf("httpmw: WithDefaultRetryAfter(%v): negative", d)
		}
		s.retryAfter = d
		return nil
	}
}

// WithRejectFunc makes the Server write rejections with f instead of
// [WriteRejection], for instance as application/problem+json. It is an
// error if f is nil.
func WithRejectFunc(f RejectFunc) ServerOption {
	return func(s *Server) error {
		if f == nil {
			return errors.New("httpmw: WithRejectFunc: nil RejectFunc")
		}
		s.reject = f
		return nil
	}
}

// Handler returns next wrapped in the Server's policies (see [Server]). Its
// method value is a func(http.Handler) http.Handler, the usual shape of
// middleware: router.Use(s.Handler).
func (s *Server) Handler(next http.Handler) http.Handler {
	// Each configured policy is its own small handler, so that a request
	// pays only for the policies it goes through.
	h := next
	if s.adaptive != nil {
		h = s.adaptiveLimit(h)
	}
	if s.bulkhead != nil {
		h = s.loadShed(h)
	}
	if s.keyed != nil {
		h = s.keyedRateLimit(h)
	}
	if s.limiter != nil {
		h = s.rateLimit(h)
	}
	if s.fault != nil {
		h = s.faultHandler(h)
	}
	if s.deadline {
		h = s.deadlineHandler(h)
	}
	return h
}

// rejectErr answers a request refused with err and the given status.
func (s *Server) rejectErr(w http.ResponseWriter, r *http.Request, status int, err error) {
	after, ok := seawall.RetryAfter(err)
	if !ok && (status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable) {
		after = s.retryAfter
	}
	s.reject(w, r, Rejection{Status: status, RetryAfter: after, Err: err})
}

func (s *Server) rateLimit(next http.Handler) http.Handler {
	if t := s.tryer; t != nil {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if err := t.Try(1); err != nil {
				s.rejectErr(w, r, http.StatusTooManyRequests, err)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
	l := s.limiter
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !l.Allow() {
			s.rejectErr(w, r, http.StatusTooManyRequests, ratelimit.ErrLimited)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Server) keyedRateLimit(next http.Handler) http.Handler {
	k, key := s.keyed, s.key
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := k.Try(key(r), 1); err != nil {
			s.rejectErr(w, r, http.StatusTooManyRequests, err)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Server) loadShed(next http.Handler) http.Handler {
	b := s.bulkhead
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := b.Acquire(r.Context()); err != nil {
			status := http.StatusServiceUnavailable
			if !errors.Is(err, bulkhead.ErrFull) {
				status = contextStatus(err) // Acquire returns only ErrFull or the context's error
			}
			s.rejectErr(w, r, status, err)
			return
		}
		defer b.Release()
		next.ServeHTTP(w, r)
	})
}

func (s *Server) adaptiveLimit(next http.Handler) http.Handler {
	l := s.adaptive
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		p, err := l.Acquire(ctx)
		if err != nil {
			status := http.StatusServiceUnavailable
			if !errors.Is(err, adaptive.ErrLimited) {
				status = contextStatus(err) // Acquire returns only ErrLimited or the context's error
			}
			s.rejectErr(w, r, status, err)
			return
		}
		returned := false
		defer func() {
			if !returned {
				p.Done(errHandlerPanicked)
			}
		}()
		next.ServeHTTP(w, r)
		returned = true
		p.Done(ctx.Err())
	})
}

func (s *Server) deadlineHandler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		if err := ctx.Err(); err != nil {
			s.rejectErr(w, r, contextStatus(err), err)
			return
		}
		d, ok := requestTimeout(r.Header)
		if !ok {
			next.ServeHTTP(w, r)
			return
		}
		if d <= 0 {
			s.rejectErr(w, r, http.StatusGatewayTimeout, context.DeadlineExceeded)
			return
		}
		// A context whose timer is armed only if the handler waits on it
		// (calls Done, or derives a context that does): a handler that
		// passes it on or checks Err pays one allocation, not four.
		dctx := deadline.WithTimeout(ctx, min(d, s.maxTimeout))
		defer dctx.Cancel()
		next.ServeHTTP(w, r.WithContext(dctx))
	})
}

// contextStatus is the status of a request refused because its context
// ended with err: 504 if its deadline passed, StatusClientClosedRequest if
// its client went away.
func contextStatus(err error) int {
	if errors.Is(err, context.DeadlineExceeded) {
		return http.StatusGatewayTimeout
	}
	return StatusClientClosedRequest
}
