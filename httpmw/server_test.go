package httpmw

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seawall-go/seawall"
	"github.com/seawall-go/seawall/adaptive"
	"github.com/seawall-go/seawall/bulkhead"
	"github.com/seawall-go/seawall/internal/bubble"
	"github.com/seawall-go/seawall/ratelimit"
)

// counting is a handler that counts its calls and answers 200 "ok".
type counting struct{ n atomic.Int64 }

func (c *counting) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.n.Add(1)
	fmt.Fprint(w, "ok")
}

// serve runs h on a request from remote and returns the recorded response.
func serve(h http.Handler, remote string, header ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr = remote
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Add(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func newServer(t testing.TB, opts ...ServerOption) *Server {
	t.Helper()
	s, err := NewServer(opts...)
	require.NoError(t, err)
	return s
}

func newLimiter(t *testing.T, rate float64, burst int) *ratelimit.Limiter {
	t.Helper()
	l, err := ratelimit.New(ratelimit.Config{Rate: rate, Burst: burst})
	require.NoError(t, err)
	return l
}

func TestRateLimitLimiter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var next counting
		h := newServer(t, WithRateLimit(newLimiter(t, 0.4, 2))).Handler(&next) // a token every 2.5s
		for range 2 {
			assert.Equal(t, 200, serve(h, "192.0.2.1:1").Code)
		}
		w := serve(h, "192.0.2.1:1")
		assert.Equal(t, http.StatusTooManyRequests, w.Code)
		assert.Equal(t, "3", w.Header().Get("Retry-After"), "2.5s rounds up")
		assert.Equal(t, "2500", w.Header().Get(RetryAfterMsHeader))
		assert.Equal(t, "Too Many Requests\n", w.Body.String())
		assert.Equal(t, "text/plain; charset=utf-8", w.Header().Get("Content-Type"))
		assert.EqualValues(t, 2, next.n.Load(), "a refused request never reaches the handler")

		bubble.Sleep(2 * time.Second)
		w = serve(h, "192.0.2.1:1")
		assert.Equal(t, "1", w.Header().Get("Retry-After"), "0.5s left rounds up to 1")
		assert.Equal(t, "500", w.Header().Get(RetryAfterMsHeader))
		bubble.Sleep(500 * time.Millisecond)
		assert.Equal(t, 200, serve(h, "192.0.2.1:1").Code, "a client that waits Retry-After is admitted")
	})
}

// allower is a limiter with only Allow, as golang.org/x/time/rate's.
type allower struct{ ok bool }

func (a *allower) Allow() bool { return a.ok }

func TestRateLimitAllower(t *testing.T) {
	var next counting
	w := serve(newServer(t, WithRateLimit(&allower{ok: false})).Handler(&next), "192.0.2.1:1")
	assert.Equal(t, http.StatusTooManyRequests, w.Code)
	assert.Empty(t, w.Header().Values("Retry-After"), "no hint, no default: no Retry-After")

	w = serve(newServer(t, WithRateLimit(&allower{ok: false}), WithDefaultRetryAfter(1500*time.Millisecond)).Handler(&next), "192.0.2.1:1")
	assert.Equal(t, "2", w.Header().Get("Retry-After"))
	assert.Zero(t, next.n.Load())

	assert.Equal(t, 200, serve(newServer(t, WithRateLimit(&allower{ok: true})).Handler(&next), "192.0.2.1:1").Code)
	assert.EqualValues(t, 1, next.n.Load())
}

func TestKeyedRateLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		k, err := ratelimit.NewKeyed(ratelimit.KeyedConfig{Config: ratelimit.Config{Rate: 1, Burst: 1}})
		require.NoError(t, err)
		var next counting
		h := newServer(t, WithKeyedRateLimit(k, nil)).Handler(&next)
		assert.Equal(t, 200, serve(h, "192.0.2.1:1000").Code)
		assert.Equal(t, 429, serve(h, "192.0.2.1:2000").Code, "another port, the same client")
		assert.Equal(t, 200, serve(h, "192.0.2.2:1000").Code, "another client has its own bucket")
		assert.Equal(t, 200, serve(h, "[2001:db8::1]:1000").Code)
		w := serve(h, "[2001:db8::1]:1000")
		assert.Equal(t, 429, w.Code)
		assert.Equal(t, "1", w.Header().Get("Retry-After"))
		assert.EqualValues(t, 3, next.n.Load())
	})
}

func TestKeyedRateLimitHeaderKey(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		k, err := ratelimit.NewKeyed(ratelimit.KeyedConfig{Config: ratelimit.Config{Rate: 1, Burst: 1}})
		require.NoError(t, err)
		var next counting
		h := newServer(t, WithKeyedRateLimit(k, HeaderKey("x-api-key"))).Handler(&next)
		assert.Equal(t, 200, serve(h, "192.0.2.1:1", "X-Api-Key", "alpha").Code)
		assert.Equal(t, 429, serve(h, "192.0.2.2:1", "X-Api-Key", "alpha").Code, "the key, not the address, names the client")
		assert.Equal(t, 200, serve(h, "192.0.2.1:1", "X-Api-Key", "beta").Code)
		assert.Equal(t, 200, serve(h, "192.0.2.1:1").Code, "no key: the shared anonymous bucket")
		assert.Equal(t, 429, serve(h, "192.0.2.3:1").Code)
	})
}

// TestKeyedRateLimitRejectionHasNoKey checks that the key stays inside: the
// rejection a RejectFunc sees (and may log) does not mention it.
func TestKeyedRateLimitRejectionHasNoKey(t *testing.T) {
	k, err := ratelimit.NewKeyed(ratelimit.KeyedConfig{Config: ratelimit.Config{Rate: 1, Burst: 1}})
	require.NoError(t, err)
	var got Rejection
	h := newServer(t, WithKeyedRateLimit(k, HeaderKey("X-Api-Key")), WithRejectFunc(func(w http.ResponseWriter, r *http.Request, rej Rejection) {
		got = rej
		WriteRejection(w, r, rej)
	})).Handler(&counting{})
	serve(h, "192.0.2.1:1", "X-Api-Key", "secret-key-123")
	w := serve(h, "192.0.2.1:1", "X-Api-Key", "secret-key-123")
	require.Equal(t, 429, w.Code)
	assert.ErrorIs(t, got.Err, ratelimit.ErrLimited)
	assert.NotContains(t, fmt.Sprintf("%v %+v", got.Err, got), "secret-key-123")
	assert.NotContains(t, w.Body.String(), "secret-key-123")
}

func TestLoadShed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, err := bulkhead.New(bulkhead.Config{MaxConcurrent: 1, MaxWaiting: 1, MaxWait: 100 * time.Millisecond})
		require.NoError(t, err)
		release := make(chan struct{})
		var running atomic.Int64
		h := newServer(t, WithLoadShed(b), WithDefaultRetryAfter(2*time.Second)).Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			running.Add(1)
			<-release
		}))
		first := make(chan int)
		go func() { first <- serve(h, "192.0.2.1:1").Code }()
		synctest.Wait()
		require.EqualValues(t, 1, running.Load())

		// The queue holds one: a second request waits, a third is shed at once.
		second := make(chan int)
		go func() { second <- serve(h, "192.0.2.1:1").Code }()
		synctest.Wait()
		w := serve(h, "192.0.2.1:1")
		assert.Equal(t, http.StatusServiceUnavailable, w.Code)
		assert.Equal(t, "2", w.Header().Get("Retry-After"))
		assert.Equal(t, "Service Unavailable\n", w.Body.String())

		// The waiting one gives up after MaxWait.
		start := time.Now()
		assert.Equal(t, http.StatusServiceUnavailable, <-second)
		assert.Equal(t, 100*time.Millisecond, time.Since(start))

		// Once the first finishes, its slot serves the next request.
		close(release)
		assert.Equal(t, 200, <-first)
		assert.Equal(t, 200, serve(h, "192.0.2.1:1").Code)
		assert.EqualValues(t, 2, running.Load())
	})
}

func TestLoadShedClientGone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, err := bulkhead.New(bulkhead.Config{MaxConcurrent: 1, MaxWaiting: 5})
		require.NoError(t, err)
		release := make(chan struct{})
		var next counting
		h := newServer(t, WithLoadShed(b)).Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			next.ServeHTTP(w, r)
			<-release
		}))
		go serve(h, "192.0.2.1:1")
		synctest.Wait()

		ctx, cancel := context.WithCancel(context.Background())
		r := httptest.NewRequestWithContext(ctx, "GET", "/", nil)
		w := httptest.NewRecorder()
		done := make(chan struct{})
		go func() { h.ServeHTTP(w, r); close(done) }()
		synctest.Wait()
		cancel()
		<-done
		assert.Equal(t, StatusClientClosedRequest, w.Code, "a request whose client left while it waited is not run")
		assert.Empty(t, w.Header().Values("Retry-After"))
		close(release)
		synctest.Wait()
		assert.EqualValues(t, 1, next.n.Load())
		assert.Zero(t, b.Metrics().InFlight)
	})
}

func TestLoadShedPanicReleases(t *testing.T) {
	b, err := bulkhead.New(bulkhead.Config{MaxConcurrent: 1})
	require.NoError(t, err)
	boom := true
	h := newServer(t, WithLoadShed(b)).Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if boom {
			panic(http.ErrAbortHandler)
		}
	}))
	assert.PanicsWithValue(t, http.ErrAbortHandler, func() { serve(h, "192.0.2.1:1") })
	boom = false
	assert.Equal(t, 200, serve(h, "192.0.2.1:1").Code, "the panicking request gave its slot back")
}

func newAdaptive(t testing.TB, cfg adaptive.Config) *adaptive.Limiter {
	t.Helper()
	l, err := adaptive.New(cfg)
	require.NoError(t, err)
	return l
}

// TestAdaptiveLimit: a request over the adaptive limit is not run and is
// answered 503 with the limiter's hint as Retry-After (whole seconds,
// rounded up) and Retry-After-Ms, in preference to the server's default;
// the Rejection holds adaptive.ErrLimited; the permit comes back when the
// handler returns.
func TestAdaptiveLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newAdaptive(t, adaptive.Config{MinLimit: 1, MaxLimit: 1, InitialLimit: 1})
		release := make(chan struct{})
		var running atomic.Int64
		var rej Rejection
		s := newServer(t, WithAdaptiveLimit(l), WithDefaultRetryAfter(5*time.Second),
			WithRejectFunc(func(w http.ResponseWriter, r *http.Request, rj Rejection) {
				rej = rj
				WriteRejection(w, r, rj)
			}))
		h := s.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			running.Add(1)
			<-release
		}))
		first := make(chan int)
		go func() { first <- serve(h, "192.0.2.1:1").Code }()
		synctest.Wait()
		require.EqualValues(t, 1, running.Load())

		w := serve(h, "192.0.2.1:1")
		assert.Equal(t, http.StatusServiceUnavailable, w.Code)
		assert.Equal(t, "1", w.Header().Get("Retry-After"), "the limiter's hint, rounded up to seconds")
		assert.Equal(t, "1", w.Header().Get(RetryAfterMsHeader), "the limiter's hint: 1ms before any window")
		assert.ErrorIs(t, rej.Err, adaptive.ErrLimited)
		assert.Equal(t, time.Millisecond, rej.RetryAfter)
		assert.EqualValues(t, 1, running.Load(), "the shed request did not run")

		bubble.Sleep(7 * time.Millisecond)
		close(release)
		assert.Equal(t, 200, <-first)
		assert.Equal(t, 200, serve(h, "192.0.2.1:1").Code)
		m := l.Metrics()
		assert.Zero(t, m.InFlight)
		assert.Equal(t, uint64(2), m.Admitted)
		assert.Equal(t, uint64(1), m.Rejected)
	})
}

// TestAdaptiveLimitClientGone: a request whose client leaves while it waits
// in the limiter's queue is answered with StatusClientClosedRequest, without
// a Retry-After, and not run.
func TestAdaptiveLimitClientGone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// MaxWait: the request has no deadline, which by default would not wait.
		l := newAdaptive(t, adaptive.Config{MinLimit: 1, MaxLimit: 1, InitialLimit: 1, MaxWaiting: 4, MaxWait: time.Hour})
		release := make(chan struct{})
		var next counting
		h := newServer(t, WithAdaptiveLimit(l)).Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			next.ServeHTTP(w, r)
			<-release
		}))
		go serve(h, "192.0.2.1:1")
		synctest.Wait()

		ctx, cancel := context.WithCancel(context.Background())
		r := httptest.NewRequestWithContext(ctx, "GET", "/", nil)
		w := httptest.NewRecorder()
		done := make(chan struct{})
		go func() { h.ServeHTTP(w, r); close(done) }()
		synctest.Wait()
		assert.Equal(t, 1, l.Metrics().Waiting)
		cancel()
		<-done
		assert.Equal(t, StatusClientClosedRequest, w.Code)
		assert.Empty(t, w.Header().Values("Retry-After"))
		close(release)
		synctest.Wait()
		assert.EqualValues(t, 1, next.n.Load())
		assert.Zero(t, l.Metrics().InFlight)
	})
}

// TestAdaptiveLimitPanicReleases: a panicking handler gives its permit back.
func TestAdaptiveLimitPanicReleases(t *testing.T) {
	l := newAdaptive(t, adaptive.Config{MinLimit: 1, MaxLimit: 1, InitialLimit: 1})
	boom := true
	h := newServer(t, WithAdaptiveLimit(l)).Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if boom {
			panic(http.ErrAbortHandler)
		}
	}))
	assert.PanicsWithValue(t, http.ErrAbortHandler, func() { serve(h, "192.0.2.1:1") })
	boom = false
	assert.Equal(t, 200, serve(h, "192.0.2.1:1").Code, "the panicking request gave its permit back")
	assert.Zero(t, l.Metrics().InFlight)
}

// TestAdaptiveLimitRealServer: over a real connection, a request over the
// limit is answered 503 with Retry-After, and the next one after the
// limit frees is served.
func TestAdaptiveLimitRealServer(t *testing.T) {
	l := newAdaptive(t, adaptive.Config{MinLimit: 1, MaxLimit: 1, InitialLimit: 1})
	release, started := make(chan struct{}), make(chan struct{}, 1)
	srv := httptest.NewServer(newServer(t, WithAdaptiveLimit(l)).Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started <- struct{}{}
		<-release
		fmt.Fprint(w, "ok")
	})))
	defer srv.Close()
	first := make(chan int, 1)
	go func() {
		resp, err := srv.Client().Get(srv.URL)
		if err != nil {
			first <- 0
			return
		}
		resp.Body.Close()
		first <- resp.StatusCode
	}()
	<-started
	resp, err := srv.Client().Get(srv.URL)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	assert.Equal(t, "1", resp.Header.Get("Retry-After"))
	close(release)
	assert.Equal(t, 200, <-first)
	resp, err = srv.Client().Get(srv.URL)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, 200, resp.StatusCode)
}

// TestAdaptiveLimitAdmitAllocatesNothing: the admit path through the
// adaptive limit allocates nothing.
func TestAdaptiveLimitAdmitAllocatesNothing(t *testing.T) {
	l := newAdaptive(t, adaptive.Config{})
	h := newServer(t, WithAdaptiveLimit(l)).Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	r := httptest.NewRequest("GET", "/", nil)
	w := httptest.NewRecorder()
	assert.Zero(t, testing.AllocsPerRun(1000, func() { h.ServeHTTP(w, r) }))
}

func TestDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var left time.Duration
		var has bool
		calls := 0
		h := newServer(t, WithDeadline(10*time.Second)).Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			calls++
			var dl time.Time
			if dl, has = r.Context().Deadline(); has {
				left = time.Until(dl)
			}
		}))
		for _, tc := range []struct {
			header []string
			status int
			has    bool
			left   time.Duration
		}{
			{nil, 200, false, 0},
			{[]string{"250"}, 200, true, 250 * time.Millisecond},
			{[]string{"1"}, 200, true, time.Millisecond},
			{[]string{"999999999"}, 200, true, 10 * time.Second}, // capped
			{[]string{"0"}, 504, false, 0},
			{[]string{"00"}, 504, false, 0},
			{[]string{"-5"}, 200, false, 0},
			{[]string{"1.5"}, 200, false, 0},
			{[]string{" 250"}, 200, false, 0},
			{[]string{"250ms"}, 200, false, 0},
			{[]string{"1000000000"}, 200, false, 0}, // 10 digits
			{[]string{""}, 200, false, 0},
			{[]string{"100", "200"}, 200, false, 0}, // ambiguous
		} {
			var hs []string
			for _, v := range tc.header {
				hs = append(hs, TimeoutHeader, v)
			}
			calls, has, left = 0, false, 0
			w := serve(h, "192.0.2.1:1", hs...)
			assert.Equal(t, tc.status, w.Code, "%q", tc.header)
			if tc.status != 200 {
				assert.Zero(t, calls, "%q: not started", tc.header)
				continue
			}
			assert.Equal(t, tc.has, has, "%q", tc.header)
			assert.Equal(t, tc.left, left, "%q", tc.header)
		}
	})
}

// TestDeadlineHandlerContext checks the context a handler gets from a
// request that carries TimeoutHeader, whatever the handler does with it:
// it ends at the deadline (in Err alone, without anybody waiting on Done),
// with the client, and when the handler returns, releasing whatever
// watched it.
func TestDeadlineHandlerContext(t *testing.T) {
	type seen struct {
		err, cause error
		after      time.Duration
	}
	for _, tc := range []struct {
		name    string
		handler func(ctx context.Context, start time.Time) seen
		cancel  time.Duration // cancel the request's context after this long, if not 0
		want    seen
	}{
		{"only checks Err", func(ctx context.Context, start time.Time) seen {
			for ctx.Err() == nil {
				bubble.Sleep(100 * time.Millisecond)
			}
			return seen{ctx.Err(), context.Cause(ctx), time.Since(start)}
		}, 0, seen{context.DeadlineExceeded, context.DeadlineExceeded, 300 * time.Millisecond}},
		{"selects on Done", func(ctx context.Context, start time.Time) seen {
			select {
			case <-ctx.Done():
			case <-time.After(time.Hour):
			}
			return seen{ctx.Err(), context.Cause(ctx), time.Since(start)}
		}, 0, seen{context.DeadlineExceeded, context.DeadlineExceeded, 250 * time.Millisecond}},
		{"AfterFunc", func(ctx context.Context, start time.Time) seen {
			ran := make(chan time.Duration)
			context.AfterFunc(ctx, func() { ran <- time.Since(start) })
			return seen{nil, nil, <-ran}
		}, 0, seen{nil, nil, 250 * time.Millisecond}},
		{"a child WithCancel", func(ctx context.Context, start time.Time) seen {
			child, cancel := context.WithCancel(ctx)
			defer cancel()
			<-child.Done()
			return seen{child.Err(), context.Cause(child), time.Since(start)}
		}, 0, seen{context.DeadlineExceeded, context.DeadlineExceeded, 250 * time.Millisecond}},
		{"a child WithTimeout, shorter", func(ctx context.Context, start time.Time) seen {
			child, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
			defer cancel()
			<-child.Done()
			return seen{ctx.Err(), context.Cause(child), time.Since(start)}
		}, 0, seen{nil, context.DeadlineExceeded, 100 * time.Millisecond}},
		{"client gone, only checks Err", func(ctx context.Context, start time.Time) seen {
			bubble.Sleep(time.Second) // past the deadline: the client went first
			return seen{ctx.Err(), context.Cause(ctx), time.Since(start)}
		}, 50 * time.Millisecond, seen{context.Canceled, errClientGone, time.Second}},
		{"client gone, selects on Done", func(ctx context.Context, start time.Time) seen {
			<-ctx.Done()
			return seen{ctx.Err(), context.Cause(ctx), time.Since(start)}
		}, 50 * time.Millisecond, seen{context.Canceled, errClientGone, 50 * time.Millisecond}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var got seen
				var ctx context.Context
				h := newServer(t, WithDeadline(DefaultMaxTimeout)).Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					ctx = r.Context()
					got = tc.handler(ctx, time.Now())
				}))
				parent, cancel := context.WithCancelCause(context.Background())
				defer cancel(nil)
				if tc.cancel > 0 {
					time.AfterFunc(tc.cancel, func() { cancel(errClientGone) })
				}
				r := httptest.NewRequestWithContext(parent, "GET", "/", nil)
				r.Header.Set(TimeoutHeader, "250")
				h.ServeHTTP(httptest.NewRecorder(), r)
				assert.Equal(t, tc.want, got)
				require.Error(t, ctx.Err(), "the handler's context ends when it returns")
				select {
				case <-ctx.Done():
				default:
					t.Error("Done is not closed after the handler returned")
				}
			})
		})
	}
}

// TestDeadlineEndsWithTheHandler checks that a handler's context ends when
// the handler returns, whether or not the handler waited on it, so that
// what it started with it (a context.AfterFunc, a goroutine selecting on
// Done) does not outlive the request.
func TestDeadlineEndsWithTheHandler(t *testing.T) {
	for _, wait := range []bool{false, true} {
		synctest.Test(t, func(t *testing.T) {
			var ctx context.Context
			var afterFunc atomic.Bool
			h := newServer(t, WithDeadline(DefaultMaxTimeout)).Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				ctx = r.Context()
				if wait {
					context.AfterFunc(ctx, func() { afterFunc.Store(true) })
					go func() { <-ctx.Done() }() // a goroutine that would leak
				}
			}))
			w := serve(h, "192.0.2.1:1", TimeoutHeader, "60000")
			assert.Equal(t, 200, w.Code)
			assert.Equal(t, context.Canceled, ctx.Err(), "wait %v", wait)
			assert.Equal(t, context.Canceled, context.Cause(ctx), "wait %v", wait)
			synctest.Wait()
			assert.Equal(t, wait, afterFunc.Load(), "the AfterFunc ran when the request ended")
		})
	}
}

var errClientGone = errors.New("client gone")

func TestDeadlineDefaultCap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var left time.Duration
		h := newServer(t, WithDeadline(DefaultMaxTimeout)).Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			dl, _ := r.Context().Deadline()
			left = time.Until(dl)
		}))
		serve(h, "192.0.2.1:1", TimeoutHeader, "86400000")
		assert.Equal(t, DefaultMaxTimeout, left)
	})
}

func TestDeadlineClientGone(t *testing.T) {
	var next counting
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := httptest.NewRequestWithContext(ctx, "GET", "/", nil)
	w := httptest.NewRecorder()
	newServer(t, WithDeadline(DefaultMaxTimeout), WithDefaultRetryAfter(time.Second)).Handler(&next).ServeHTTP(w, r)
	assert.Equal(t, StatusClientClosedRequest, w.Code)
	assert.Empty(t, w.Header().Values("Retry-After"), "the default hint is for 429 and 503 only")
	assert.Zero(t, next.n.Load())
}

func TestWithRejectFunc(t *testing.T) {
	problem := func(w http.ResponseWriter, r *http.Request, rej Rejection) {
		w.Header().Set("Content-Type", "application/problem+json")
		if s := RetryAfterSeconds(rej.RetryAfter); s > 0 {
			w.Header().Set("Retry-After", fmt.Sprint(s))
		}
		w.WriteHeader(rej.Status)
		fmt.Fprintf(w, `{"status":%d,"title":%q}`, rej.Status, http.StatusText(rej.Status))
	}
	w := serve(newServer(t, WithRateLimit(&allower{}), WithRejectFunc(problem), WithDefaultRetryAfter(time.Second)).Handler(&counting{}), "192.0.2.1:1")
	assert.Equal(t, 429, w.Code)
	assert.Equal(t, "application/problem+json", w.Header().Get("Content-Type"))
	assert.Equal(t, "1", w.Header().Get("Retry-After"))
	assert.JSONEq(t, `{"status":429,"title":"Too Many Requests"}`, w.Body.String())
}

// TestServeMuxRoute wraps one route of a ServeMux: its pattern still matches,
// PathValue still works, and the other routes are not limited.
func TestServeMuxRoute(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mux := http.NewServeMux()
		item := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "item ", r.PathValue("id")) })
		mux.Handle("GET /items/{id}", newServer(t, WithRateLimit(newLimiter(t, 1, 1))).Handler(item))
		mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "up") })

		get := func(path string) *httptest.ResponseRecorder {
			w := httptest.NewRecorder()
			mux.ServeHTTP(w, httptest.NewRequest("GET", path, nil))
			return w
		}
		w := get("/items/42")
		assert.Equal(t, 200, w.Code)
		assert.Equal(t, "item 42", w.Body.String())
		assert.Equal(t, 429, get("/items/43").Code)
		for range 3 {
			assert.Equal(t, "up", get("/health").Body.String())
		}
	})
}

func TestRetryAfterSeconds(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want int64
	}{
		{-time.Second, 0}, {0, 0}, {1, 1}, {time.Millisecond, 1}, {time.Second, 1},
		{time.Second + 1, 2}, {1500 * time.Millisecond, 2}, {time.Hour, 3600},
		{999_999_999 * time.Second, 999_999_999},
		{time.Duration(1<<63 - 1), 999_999_999}, // capped: a Transport ignores a 10-digit Retry-After
	} {
		assert.Equal(t, tc.want, RetryAfterSeconds(tc.d), "%v", tc.d)
	}
}

// TestServerOptionErrors checks that misuse is an error naming the option
// and the bad value, never a panic, and that no Server is returned.
func TestServerOptionErrors(t *testing.T) {
	for _, tc := range []struct {
		opts []ServerOption
		err  string
	}{
		{[]ServerOption{WithRateLimit(nil)}, "httpmw: WithRateLimit: nil limiter"},
		{[]ServerOption{WithRateLimit((*ratelimit.Limiter)(nil))}, "httpmw: WithRateLimit: nil limiter"},
		{[]ServerOption{WithRateLimit((*otherLimiter)(nil))}, "httpmw: WithRateLimit: nil limiter"}, // a shared limiter's nil, say
		{[]ServerOption{WithKeyedRateLimit(nil, nil)}, "httpmw: WithKeyedRateLimit: nil limiter"},
		{[]ServerOption{WithKeyedRateLimit((*ratelimit.Keyed)(nil), RemoteIP)}, "httpmw: WithKeyedRateLimit: nil limiter"},
		{[]ServerOption{WithLoadShed(nil)}, "httpmw: WithLoadShed: nil bulkhead"},
		{[]ServerOption{WithAdaptiveLimit(nil)}, "httpmw: WithAdaptiveLimit: nil limiter"},
		{[]ServerOption{WithRejectFunc(nil)}, "httpmw: WithRejectFunc: nil RejectFunc"},
		{[]ServerOption{WithDefaultRetryAfter(-time.Second)}, "httpmw: WithDefaultRetryAfter(-1s): negative"},
		{[]ServerOption{WithDeadline(0)}, "httpmw: WithDeadline(0s): not positive"},
		{[]ServerOption{WithDeadline(-time.Millisecond)}, "httpmw: WithDeadline(-1ms): not positive"},
		{[]ServerOption{WithDeadline(time.Second), nil}, "httpmw: NewServer: option 1 is nil"},
		{[]ServerOption{WithRateLimit(&allower{}), WithLoadShed(nil), WithDeadline(0)}, "httpmw: WithLoadShed: nil bulkhead"}, // the first
	} {
		s, err := NewServer(tc.opts...)
		assert.Nil(t, s, tc.err)
		assert.EqualError(t, err, tc.err)
	}
	s, err := NewServer(WithDefaultRetryAfter(0))
	require.NoError(t, err, "0: no default")
	var next counting
	assert.Equal(t, 200, serve(s.Handler(&next), "192.0.2.1:1").Code, "a Server without policies passes requests through")
	assert.EqualValues(t, 1, next.n.Load())
}

// TestServerKeyedLimiter checks that any ratelimit.KeyedLimiter can limit
// per key, such as one a fleet shares, and that its hint is the answer's.
func TestServerKeyedLimiter(t *testing.T) {
	fleet := keyedFunc(func(key string, n int) error {
		if key == "192.0.2.9" {
			return seawall.WithRetryAfter(ratelimit.ErrLimited, 1500*time.Millisecond)
		}
		return nil
	})
	h := newServer(t, WithKeyedRateLimit(fleet, nil)).Handler(&counting{})
	assert.Equal(t, 200, serve(h, "192.0.2.1:1").Code)
	w := serve(h, "192.0.2.9:1")
	assert.Equal(t, 429, w.Code)
	assert.Equal(t, "2", w.Header().Get("Retry-After"))
	assert.Equal(t, "1500", w.Header().Get(RetryAfterMsHeader))
}

// keyedFunc is a ratelimit.KeyedLimiter of a function.
type keyedFunc func(key string, n int) error

func (f keyedFunc) Try(key string, n int) error { return f(key, n) }

// TestServerOrder checks that the policies run in the documented order,
// whatever the order of the options: the deadline first, then the rate
// limit, the keyed rate limit, and load shedding last.
func TestServerOrder(t *testing.T) {
	var order []string
	limit := &recordingAllower{name: "rate", order: &order}
	keyed := keyedFunc(func(string, int) error { order = append(order, "keyed"); return nil })
	b, err := bulkhead.New(bulkhead.Config{MaxConcurrent: 1})
	require.NoError(t, err)
	h := newServer(t, WithLoadShed(b), WithKeyedRateLimit(keyed, func(r *http.Request) string {
		_, has := r.Context().Deadline()
		order = append(order, fmt.Sprint("key, deadline ", has, ", in flight ", b.Metrics().InFlight))
		return ""
	}), WithRateLimit(limit), WithDeadline(time.Minute)).Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		order = append(order, fmt.Sprint("handler, in flight ", b.Metrics().InFlight))
	}))
	assert.Equal(t, 200, serve(h, "192.0.2.1:1", TimeoutHeader, "500").Code)
	assert.Equal(t, []string{"rate", "key, deadline true, in flight 0", "keyed", "handler, in flight 1"}, order)
}

// recordingAllower is a limiter with only Allow that records its calls.
type recordingAllower struct {
	name  string
	order *[]string
}

func (a *recordingAllower) Allow() bool { *a.order = append(*a.order, a.name); return true }

// TestRejectionStatuses runs the middlewares on a real server: what a
// client sees on the wire.
func TestRejectionStatuses(t *testing.T) {
	srv := httptest.NewServer(newServer(t, WithRateLimit(&allower{}), WithDefaultRetryAfter(3*time.Second)).Handler(&counting{}))
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL)
	require.NoError(t, err)
	defer resp.Body.Close()
	assert.Equal(t, 429, resp.StatusCode)
	assert.Equal(t, "3", resp.Header.Get("Retry-After"))
	srv.Client().CloseIdleConnections()
}

// TestDeadlineWhileQueued checks that a request whose propagated deadline
// passes while it waits for a slot is answered 504 and not run.
func TestDeadlineWhileQueued(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, err := bulkhead.New(bulkhead.Config{MaxConcurrent: 1, MaxWaiting: 5})
		require.NoError(t, err)
		release := make(chan struct{})
		var next counting
		h := newServer(t, WithDeadline(DefaultMaxTimeout), WithLoadShed(b)).Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			next.ServeHTTP(w, r)
			<-release
		}))
		go serve(h, "192.0.2.1:1")
		synctest.Wait()
		start := time.Now()
		w := serve(h, "192.0.2.1:1", TimeoutHeader, "300")
		assert.Equal(t, http.StatusGatewayTimeout, w.Code)
		assert.Equal(t, 300*time.Millisecond, time.Since(start), "it waited until its deadline, no longer")
		close(release)
		synctest.Wait()
		assert.EqualValues(t, 1, next.n.Load())
	})
}

// otherLimiter is a limiter of another package (redisrate's, say).
type otherLimiter struct{}

func (*otherLimiter) Allow() bool { return true }
