package httpmw

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/seawall-go/seawall"
	"github.com/seawall-go/seawall/bulkhead"
	"github.com/seawall-go/seawall/ratelimit"
)

// StatusClientClosedRequest is the status a [Rejection] has when the client
// went away before its request was started (its context was done): nginx's
// non-standard 499. Nobody reads the response; it shows up in access logs.
const StatusClientClosedRequest = 499

// A Rejection describes a request that a middleware of this package refused
// to start, and is what a [RejectFunc] writes a response for.
type Rejection struct {
	// Status is the HTTP status to answer with: 429 (Too Many Requests)
	// from a rate limit, 503 (Service Unavailable) from load shedding, 504
	// (Gateway Timeout) for a request whose propagated deadline has passed,
	// StatusClientClosedRequest for a request whose client has gone.
	Status int
	// RetryAfter is when the client may try again: the rejection's own hint
	// (a rate limiter knows when its next token comes), or else the one set
	// with WithRetryAfter; 0 if none. The default writer turns it into a
	// Retry-After header in whole seconds, rounded up.
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

// An Option configures a server middleware of this package.
type Option func(*options)

type options struct {
	reject     RejectFunc
	retryAfter time.Duration
	maxTimeout time.Duration
}

// DefaultMaxTimeout is the largest timeout [Deadline] accepts from a
// request's TimeoutHeader unless WithMaxTimeout says otherwise.
const DefaultMaxTimeout = time.Minute

func newOptions(opts []Option) options {
	o := options{reject: WriteRejection, maxTimeout: DefaultMaxTimeout}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// WithRejectFunc makes the middleware write rejections with f instead of
// [WriteRejection], for instance as application/problem+json. Panics if f
// is nil.
func WithRejectFunc(f RejectFunc) Option {
	if f == nil {
		panic("httpmw: WithRejectFunc(nil)")
	}
	return func(o *options) { o.reject = f }
}

// WithRetryAfter sets the Retry-After of rejections that carry no hint of
// their own: a full bulkhead cannot know when a slot frees, and a limiter
// that only has Allow() bool cannot say when its next token comes. The
// default is none (no Retry-After header). Panics if d is negative.
func WithRetryAfter(d time.Duration) Option {
	if d < 0 {
		panic(fmt.Sprintf("httpmw: WithRetryAfter(%v): negative duration", d))
	}
	return func(o *options) { o.retryAfter = d }
}

// WithMaxTimeout caps the timeout that [Deadline] takes from a request's
// TimeoutHeader (default DefaultMaxTimeout), so that a client cannot make a
// handler hold its resources for a day. Panics if d is not positive.
func WithMaxTimeout(d time.Duration) Option {
	if d <= 0 {
		panic(fmt.Sprintf("httpmw: WithMaxTimeout(%v): not positive", d))
	}
	return func(o *options) { o.maxTimeout = d }
}

// rejectErr answers a request refused with err and the given status.
func (o *options) rejectErr(w http.ResponseWriter, r *http.Request, status int, err error) {
	after, ok := seawall.RetryAfter(err)
	if !ok && (status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable) {
		after = o.retryAfter
	}
	o.reject(w, r, Rejection{Status: status, RetryAfter: after, Err: err})
}

// tryer is a ratelimit.Allower that can say when to come back: *ratelimit.Limiter.
type tryer interface {
	Try(n int) error
}

// RateLimit returns middleware that admits a request if l allows one event
// now, and otherwise answers 429 Too Many Requests without calling the next
// handler. If l has a method Try(n int) error that returns the retry-after
// hint in its error, as *ratelimit.Limiter does, the rejection's Retry-After
// is that hint; otherwise it is the one set with WithRetryAfter, if any.
//
// One limiter for all requests bounds a handler's total rate; to give each
// client its own budget, use [KeyedRateLimit]. Panics if l is nil.
func RateLimit(l ratelimit.Allower, opts ...Option) func(http.Handler) http.Handler {
	if l == nil {
		panic("httpmw: RateLimit with a nil limiter")
	}
	o := newOptions(opts)
	if t, ok := l.(tryer); ok {
		return func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if err := t.Try(1); err != nil {
					o.rejectErr(w, r, http.StatusTooManyRequests, err)
					return
				}
				next.ServeHTTP(w, r)
			})
		}
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !l.Allow() {
				o.rejectErr(w, r, http.StatusTooManyRequests, ratelimit.ErrLimited)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// KeyedRateLimit returns middleware that gives each client its own token
// bucket in k, the client being named by key (nil means [RemoteIP]), and
// answers 429 Too Many Requests, with a Retry-After from the bucket, to a
// request whose bucket is empty. Keys stay inside: they are not in the
// Rejection, nor in any log or metric of this package. Panics if k is nil.
func KeyedRateLimit(k *ratelimit.Keyed, key KeyFunc, opts ...Option) func(http.Handler) http.Handler {
	if k == nil {
		panic("httpmw: KeyedRateLimit with a nil limiter")
	}
	if key == nil {
		key = RemoteIP
	}
	o := newOptions(opts)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if err := k.Try(key(r), 1); err != nil {
				o.rejectErr(w, r, http.StatusTooManyRequests, err)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// LoadShed returns middleware that runs a request only while it holds a
// slot of b, so that at most b's limit of requests run at once and the rest
// are shed before they cost anything. A request waits for a slot only as b
// allows (its MaxWaiting and MaxWait: keep the queue small and the wait
// short), and only while its client waits; a request that finds no slot is
// answered 503 Service Unavailable, with the Retry-After set by
// WithRetryAfter, if any (a bulkhead cannot know when a slot will free). One
// whose client leaves while it waits is answered with
// StatusClientClosedRequest, and one whose deadline passes while it waits
// with 504 Gateway Timeout. The slot is given back when the handler
// returns, or panics. Panics if b is nil.
func LoadShed(b *bulkhead.Bulkhead, opts ...Option) func(http.Handler) http.Handler {
	if b == nil {
		panic("httpmw: LoadShed with a nil bulkhead")
	}
	o := newOptions(opts)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if err := b.Acquire(r.Context()); err != nil {
				status := http.StatusServiceUnavailable
				if !errors.Is(err, bulkhead.ErrFull) {
					status = contextStatus(err) // Acquire returns only ErrFull or the context's error
				}
				o.rejectErr(w, r, status, err)
				return
			}
			defer b.Release()
			next.ServeHTTP(w, r)
		})
	}
}

// Deadline returns middleware that keeps a handler from working for a
// client that has stopped waiting. A request whose context is already done
// is not started: it is answered with StatusClientClosedRequest if its
// client went away, 504 Gateway Timeout if its deadline passed. A request that carries a TimeoutHeader (as the
// [Transport] of this package sets it) gets a context that ends when the
// client's time is up, capped by WithMaxTimeout (default DefaultMaxTimeout);
// one whose time is already up ("0") is answered 504 Gateway Timeout. A
// missing or malformed header (anything but 1 to 9 ASCII digits, or more
// than one value) sets no deadline.
//
// Put Deadline outermost, so that the rate limit and load shedding inside it
// see the deadline: a request that would have to queue past it is not
// queued.
func Deadline(opts ...Option) func(http.Handler) http.Handler {
	o := newOptions(opts)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ctx := r.Context()
			if err := ctx.Err(); err != nil {
				o.rejectErr(w, r, contextStatus(err), err)
				return
			}
			d, ok := requestTimeout(r.Header)
			if !ok {
				next.ServeHTTP(w, r)
				return
			}
			if d <= 0 {
				o.rejectErr(w, r, http.StatusGatewayTimeout, context.DeadlineExceeded)
				return
			}
			ctx, cancel := context.WithTimeout(ctx, min(d, o.maxTimeout))
			defer cancel()
			next.ServeHTTP(w, r.WithContext(ctx))
		})
	}
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
