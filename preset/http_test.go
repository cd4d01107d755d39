package preset

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seawall-go/seawall"
	"github.com/seawall-go/seawall/breaker"
	"github.com/seawall-go/seawall/httpmw"
	"github.com/seawall-go/seawall/internal/bubble"
	"github.com/seawall-go/seawall/internal/memnet"
	"github.com/seawall-go/seawall/ratelimit"
	"github.com/seawall-go/seawall/registry"
	"github.com/seawall-go/seawall/retry"
)

// server is a real HTTP server on an in-memory network, so that it runs in
// a synctest bubble; it records the time each request arrived.
type server struct {
	base  *http.Transport // dials the server
	mu    sync.Mutex
	times []time.Duration // arrivals, since start
	start time.Time
}

// serve starts h on a server that the test stops when it ends.
func serve(t *testing.T, h http.HandlerFunc) *server {
	t.Helper()
	ln := memnet.Listen()
	s := &server{base: &http.Transport{DialContext: ln.Dial}, start: time.Now()}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.times = append(s.times, time.Since(s.start))
		s.mu.Unlock()
		h(w, r)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() {
		s.base.CloseIdleConnections()
		srv.Close()
	})
	return s
}

func (s *server) arrivals() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.times...)
}

func (s *server) calls() int { return len(s.arrivals()) }

func newTransport(t *testing.T, base http.RoundTripper, cfg Config, opts ...httpmw.TransportOption) *HTTPTransport {
	t.Helper()
	tr, err := NewHTTPTransport(base, cfg, opts...)
	require.NoError(t, err)
	return tr
}

func get(t *testing.T, ctx context.Context, tr http.RoundTripper) (*http.Response, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://memnet/", nil)
	require.NoError(t, err)
	return tr.RoundTrip(req)
}

func ok(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") }

// readAll reads and closes the body of resp.
func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	return string(b)
}

// TestHTTPLimiterWaitsBeforeAttempts: calls beyond the rate wait for
// their token before anything is sent.
func TestHTTPLimiterWaitsBeforeAttempts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := serve(t, ok)
		tr := newTransport(t, s.base, Config{RateLimit: &ratelimit.Config{Rate: 1}, Breaker: breaker.Config{MinimumCalls: 30}})
		for range 3 {
			resp, err := get(t, context.Background(), tr)
			require.NoError(t, err)
			assert.Equal(t, "ok", readAll(t, resp))
		}
		assert.Equal(t, []time.Duration{0, time.Second, 2 * time.Second}, s.arrivals())
		assert.Equal(t, uint64(3), tr.Limiter().Metrics().Allowed)
	})
}

// TestHTTPLimiterRefusesPastDeadline: a call whose token would come after
// its total timeout is refused at once, before any attempt, with the wait
// as its hint; its request body is closed.
func TestHTTPLimiterRefusesPastDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := serve(t, ok)
		tr := newTransport(t, s.base, Config{
			RateLimit: &ratelimit.Config{Rate: 0.5}, Timeout: time.Second, AttemptTimeout: 500 * time.Millisecond,
			Retry:   retry.Config{Delay: 10 * time.Millisecond},
			Breaker: breaker.Config{MinimumCalls: 10},
		})
		resp, err := get(t, context.Background(), tr)
		require.NoError(t, err)
		readAll(t, resp)

		body := &trackedBody{Reader: strings.NewReader("x")}
		req, err := http.NewRequest(http.MethodPut, "http://memnet/", body)
		require.NoError(t, err)
		start := time.Now()
		_, err = tr.RoundTrip(req)
		require.Error(t, err)
		assert.ErrorIs(t, err, ratelimit.ErrLimited)
		assert.ErrorIs(t, err, seawall.ErrRejected)
		hint, ok := seawall.RetryAfter(err)
		assert.True(t, ok)
		assert.Equal(t, 2*time.Second, hint)
		assert.Zero(t, time.Since(start), "refused at once")
		assert.True(t, body.closed.Load(), "the request body is closed")
		assert.Equal(t, 1, s.calls(), "nothing is sent")
	})
}

type trackedBody struct {
	io.Reader
	closed atomic.Bool
}

func (b *trackedBody) Close() error { b.closed.Store(true); return nil }

// TestHTTPTotalTimeoutBoundsRetries: attempts that time out are retried
// until the total timeout, which ends the call with a *TimeoutError.
func TestHTTPTotalTimeoutBoundsRetries(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := serve(t, func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
		tr := newTransport(t, s.base, Config{
			Timeout: time.Second, AttemptTimeout: 300 * time.Millisecond,
			Retry: retry.Config{MaxAttempts: 10, Delay: 10 * time.Millisecond, Multiplier: 1, Jitter: retry.NoJitter,
				Budget: retry.BudgetConfig{Disabled: true}},
		})
		start := time.Now()
		_, err := get(t, context.Background(), tr)
		assert.Equal(t, time.Second, time.Since(start), "the call ends at its total timeout")
		require.Error(t, err)
		te, ok := errors.AsType[*TimeoutError](err)
		require.True(t, ok, "%v is not a *TimeoutError", err)
		assert.Equal(t, time.Second, te.After)
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Contains(t, err.Error(), "preset: call timed out after 1s")
		synctest.Wait()
		assert.Equal(t, []time.Duration{0, 310 * time.Millisecond, 620 * time.Millisecond, 930 * time.Millisecond}, s.arrivals(),
			"attempts of 300ms, 10ms apart, the fourth cut by the total timeout")
	})
}

// TestHTTPTotalTimeoutStopsRetries: a server that answers 503 is retried
// until the next retry would pass the total timeout; the last answer is
// returned, before the deadline.
func TestHTTPTotalTimeoutStopsRetries(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := serve(t, func(w http.ResponseWriter, r *http.Request) {
			bubble.Sleep(50 * time.Millisecond)
			w.WriteHeader(http.StatusServiceUnavailable)
		})
		tr := newTransport(t, s.base, Config{
			Timeout: time.Second, AttemptTimeout: 300 * time.Millisecond,
			Retry: retry.Config{MaxAttempts: 10, Delay: 100 * time.Millisecond, Multiplier: 1, Jitter: retry.NoJitter,
				Budget: retry.BudgetConfig{Disabled: true}},
		})
		start := time.Now()
		resp, err := get(t, context.Background(), tr)
		require.NoError(t, err)
		assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
		readAll(t, resp)
		assert.Equal(t, 950*time.Millisecond, time.Since(start), "7 attempts of 50ms, 100ms apart: an 8th would start past 1s")
		assert.Len(t, s.arrivals(), 7)
	})
}

// TestHTTPCallerDeadlineRules: a caller's deadline earlier than the total
// timeout ends the call as the caller's, not as a *TimeoutError.
func TestHTTPCallerDeadlineRules(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := serve(t, func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
		tr := newTransport(t, s.base, Config{})
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := get(t, ctx, tr)
		assert.Equal(t, 200*time.Millisecond, time.Since(start))
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		_, isTimeout := errors.AsType[*TimeoutError](err)
		assert.False(t, isTimeout, "the caller's deadline is not the preset's timeout: %v", err)
	})
}

// TestHTTPBodyOutlivesRoundTrip: the total timeout covers the reading of
// the body: the body stays readable after RoundTrip returns, and the call's
// context is released when the body is closed, not before.
func TestHTTPBodyOutlivesRoundTrip(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := serve(t, func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "first ")
			w.(http.Flusher).Flush()
			bubble.Sleep(500 * time.Millisecond)
			io.WriteString(w, "second")
		})
		var sent context.Context
		base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
			sent = req.Context()
			return s.base.RoundTrip(req)
		})
		// No attempt timeout (an option after the preset's replaces it), so
		// that the base sees the call's own context.
		tr := newTransport(t, base, Config{Timeout: time.Second, AttemptTimeout: time.Second, Retry: retry.Config{MaxAttempts: 1}},
			httpmw.WithAttemptTimeout(0))
		start := time.Now()
		resp, err := get(t, context.Background(), tr)
		require.NoError(t, err)
		dl, ok := sent.Deadline()
		require.True(t, ok)
		assert.Equal(t, start.Add(time.Second), dl, "the total timeout's deadline")
		assert.NoError(t, sent.Err(), "alive after RoundTrip")

		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		assert.Equal(t, "first second", string(b))
		assert.Equal(t, 500*time.Millisecond, time.Since(start))
		assert.NoError(t, sent.Err(), "alive until Close")
		require.NoError(t, resp.Body.Close())
		assert.ErrorIs(t, sent.Err(), context.Canceled, "released by Close")
	})
}

// TestHTTPBodyWithinTotalTimeout: reading a body past the total timeout
// fails at the deadline.
func TestHTTPBodyWithinTotalTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := serve(t, func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "first ")
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
			case <-time.After(time.Hour):
			}
		})
		tr := newTransport(t, s.base, Config{Timeout: time.Second, AttemptTimeout: time.Second,
			Retry: retry.Config{Delay: 10 * time.Millisecond}})
		start := time.Now()
		resp, err := get(t, context.Background(), tr)
		require.NoError(t, err)
		b, err := io.ReadAll(resp.Body)
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Equal(t, "first ", string(b))
		assert.Equal(t, time.Second, time.Since(start))
		resp.Body.Close()
	})
}

// TestHTTPBreakerInsideRetry: the breaker judges every attempt, so retries
// trip it, and once open it fails calls at once, before anything is sent.
func TestHTTPBreakerInsideRetry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := serve(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) })
		tr := newTransport(t, s.base, Config{
			Retry:   retry.Config{Delay: 10 * time.Millisecond, Budget: retry.BudgetConfig{Disabled: true}},
			Breaker: breaker.Config{ConsecutiveFailures: 2},
		})
		_, err := get(t, context.Background(), tr)
		assert.ErrorIs(t, err, breaker.ErrOpen, "the third attempt meets the open breaker")
		assert.Equal(t, 2, s.calls())
		_, err = get(t, context.Background(), tr)
		assert.ErrorIs(t, err, breaker.ErrOpen)
		assert.Equal(t, 2, s.calls(), "an open breaker sends nothing")
		b, ok := tr.Breakers().Lookup("memnet")
		require.True(t, ok, "one breaker per host")
		assert.Equal(t, breaker.Open, b.State())
	})
}

// TestHTTPOptionsReplacePreset: an httpmw option replaces the preset's, and
// WithRegistry names the retry and the breakers.
func TestHTTPOptionsReplacePreset(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := serve(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) })
		reg, err := registry.New()
		require.NoError(t, err)
		tr := newTransport(t, s.base, Config{}, httpmw.WithRetry(retry.Config{MaxAttempts: 1}), httpmw.WithRegistry(reg, "account"))
		resp, err := get(t, context.Background(), tr)
		require.NoError(t, err)
		assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
		readAll(t, resp)
		assert.Equal(t, 1, s.calls(), "no retry")
		_, ok := reg.Lookup("account.breakers")
		assert.True(t, ok)
	})
}

// TestHTTPDisableBreaker: without breakers, failures open nothing.
func TestHTTPDisableBreaker(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := serve(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) })
		tr := newTransport(t, s.base, Config{DisableBreaker: true, Retry: retry.Config{MaxAttempts: 1}})
		assert.Nil(t, tr.Breakers())
		for range 10 {
			resp, err := get(t, context.Background(), tr)
			require.NoError(t, err)
			readAll(t, resp)
		}
		assert.Equal(t, 10, s.calls())
	})
}

func TestNewHTTPTransportErrors(t *testing.T) {
	_, err := NewHTTPTransport(nil, Config{AttemptTimeout: 40 * time.Second})
	require.Error(t, err)
	assert.Equal(t, Config{AttemptTimeout: 40 * time.Second}.Validate().Error(), err.Error())
	assert.Contains(t, err.Error(), "preset: attemptTimeout 40s exceeds timeout 30s (default)")

	_, err = NewHTTPTransport(nil, Config{}, httpmw.WithAttemptTimeout(-1))
	assert.ErrorContains(t, err, "httpmw: WithAttemptTimeout(-1ns): negative")
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
