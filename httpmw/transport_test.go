package httpmw

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"strconv"
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
	"github.com/seawall-go/seawall/internal/bubble"
	"github.com/seawall-go/seawall/ratelimit"
	"github.com/seawall-go/seawall/retry"
	"github.com/seawall-go/seawall/throttle"
)

// noDelay retries at once (a server's Retry-After still counts), without a
// budget: what the tests of what is retried need.
var noDelay = retry.Config{
	DelayFunc: func(int, error) time.Duration { return 0 },
	Budget:    retry.BudgetConfig{Disabled: true},
}

func newTransport(t *testing.T, base http.RoundTripper, opts ...TransportOption) *Transport {
	t.Helper()
	tr, err := NewTransport(base, opts...)
	require.NoError(t, err)
	return tr
}

// attemptServer is a real server that answers the first fail requests with
// status (and a body), then 200, and keeps what each request carried.
type attemptServer struct {
	*httptest.Server
	mu      sync.Mutex
	fail    int
	status  int
	header  http.Header // added to failing answers
	bodies  []string
	timeout []string // TimeoutHeader of each request
}

func newAttemptServer(t *testing.T, fail, status int) *attemptServer {
	s := &attemptServer{fail: fail, status: status, header: http.Header{}}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.bodies = append(s.bodies, string(b))
		s.timeout = append(s.timeout, r.Header.Get(TimeoutHeader))
		n := len(s.bodies)
		s.mu.Unlock()
		if n <= s.fail {
			for k, v := range s.header {
				w.Header()[k] = v
			}
			w.WriteHeader(s.status)
			io.WriteString(w, "busy "+strconv.Itoa(n))
			return
		}
		io.WriteString(w, "ok")
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *attemptServer) attempts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.bodies)
}

// client returns an http.Client whose Transport wraps the server's own.
func (s *attemptServer) client(t *testing.T, opts ...TransportOption) *http.Client {
	base := s.Client().Transport
	t.Cleanup(base.(*http.Transport).CloseIdleConnections)
	return &http.Client{Transport: newTransport(t, base, opts...)}
}

func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(b)
}

func TestTransportRetries(t *testing.T) {
	for _, status := range []int{502, 503, 504, 429} {
		s := newAttemptServer(t, 2, status)
		resp, err := s.client(t, WithRetry(noDelay)).Get(s.URL)
		require.NoError(t, err)
		assert.Equal(t, 200, resp.StatusCode, "%d", status)
		assert.Equal(t, "ok", readAll(t, resp))
		assert.Equal(t, 3, s.attempts(), "%d", status)
	}
}

func TestTransportNotRetried(t *testing.T) {
	for _, status := range []int{500, 501, 400, 404, 409} {
		s := newAttemptServer(t, 5, status)
		resp, err := s.client(t, WithRetry(noDelay)).Get(s.URL)
		require.NoError(t, err)
		assert.Equal(t, status, resp.StatusCode)
		assert.Equal(t, "busy 1", readAll(t, resp))
		assert.Equal(t, 1, s.attempts(), "%d is not retried by default", status)
	}
	s := newAttemptServer(t, 5, 500)
	resp, err := s.client(t, WithRetry(noDelay), WithRetryStatuses(500)).Get(s.URL)
	require.NoError(t, err)
	assert.Equal(t, 500, resp.StatusCode)
	assert.Equal(t, 3, s.attempts(), "WithRetryStatuses(500) retries 500")
	resp.Body.Close()

	s = newAttemptServer(t, 5, 503)
	resp, err = s.client(t, WithRetry(retry.Config{MaxAttempts: 1})).Get(s.URL)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, 1, s.attempts(), "MaxAttempts 1 turns retries off")
}

// TestTransportLastResponse checks that when retries end, the caller gets
// the last answer as the server sent it.
func TestTransportLastResponse(t *testing.T) {
	s := newAttemptServer(t, 5, 503)
	s.header.Set("X-Why", "maintenance")
	resp, err := s.client(t, WithRetry(noDelay)).Get(s.URL)
	require.NoError(t, err)
	assert.Equal(t, 503, resp.StatusCode)
	assert.Equal(t, "maintenance", resp.Header.Get("X-Why"))
	assert.Equal(t, "busy 3", readAll(t, resp))
	assert.Equal(t, 3, s.attempts())
}

// TestTransportReplay checks what is replayed: idempotent methods and
// requests with an idempotency key, with their bodies byte for byte; and
// what is sent once.
func TestTransportReplay(t *testing.T) {
	body := strings.Repeat("seawall\x00\xff", 1000)
	noGetBody := func(r *http.Request) { r.GetBody = nil }
	for _, tc := range []struct {
		method   string
		header   string
		mutate   func(*http.Request)
		attempts int
	}{
		{"GET", "", nil, 3},
		{"HEAD", "", nil, 3},
		{"OPTIONS", "", nil, 3},
		{"TRACE", "", nil, 3},
		{"PUT", "", nil, 3},
		{"DELETE", "", nil, 3},
		{"POST", "", nil, 1},
		{"PATCH", "", nil, 1},
		{"POST", "Idempotency-Key", nil, 3},
		{"PATCH", "X-Idempotency-Key", nil, 3},
		{"PUT", "", noGetBody, 1},
		{"POST", "Idempotency-Key", noGetBody, 1},
	} {
		s := newAttemptServer(t, 5, 503)
		var rd io.Reader
		if tc.method != "GET" && tc.method != "HEAD" {
			rd = strings.NewReader(body)
		}
		req, err := http.NewRequest(tc.method, s.URL, rd)
		require.NoError(t, err)
		if tc.header != "" {
			req.Header.Set(tc.header, "k-1")
		}
		if tc.mutate != nil {
			tc.mutate(req)
		}
		resp, err := s.client(t, WithRetry(noDelay)).Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		name := tc.method + " " + tc.header
		assert.Equal(t, 503, resp.StatusCode, name)
		require.Equal(t, tc.attempts, s.attempts(), name)
		for i, b := range s.bodies {
			if rd != nil {
				assert.True(t, b == body, "%s: attempt %d's body differs", name, i+1)
			}
		}
	}
}

// TestTransportConnectionReuse checks with httptrace that the connection of
// a discarded answer is reused by the next attempt: its body was drained
// and closed.
func TestTransportConnectionReuse(t *testing.T) {
	s := newAttemptServer(t, 2, 503)
	s.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.bodies = append(s.bodies, "")
		n := len(s.bodies)
		s.mu.Unlock()
		if n <= 2 {
			w.WriteHeader(503)
			w.Write(bytes.Repeat([]byte("x"), 16<<10))
			return
		}
		io.WriteString(w, "ok")
	})
	var reused []bool
	trace := &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) { reused = append(reused, i.Reused) }}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), "GET", s.URL, nil)
	require.NoError(t, err)
	resp, err := s.client(t, WithRetry(noDelay)).Do(req)
	require.NoError(t, err)
	assert.Equal(t, "ok", readAll(t, resp))
	assert.Equal(t, []bool{false, true, true}, reused)
}

// TestTransportRequestUnchanged checks that the caller's request is not
// modified, though each attempt carries TimeoutHeader.
func TestTransportRequestUnchanged(t *testing.T) {
	s := newAttemptServer(t, 1, 503)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "PUT", s.URL, strings.NewReader("v"))
	require.NoError(t, err)
	req.Header.Set("X-Mine", "1")
	before := req.Header.Clone()
	resp, err := s.client(t, WithRetry(noDelay)).Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, before, req.Header)
	require.Len(t, s.timeout, 2)
	for _, v := range s.timeout {
		ms, err := strconv.Atoi(v)
		require.NoError(t, err, "TimeoutHeader %q", v)
		assert.True(t, ms > 50_000 && ms <= 60_000, "TimeoutHeader %q: the time left", v)
	}

	// Without a deadline, or WithoutTimeoutHeader, no header.
	s = newAttemptServer(t, 0, 503)
	resp, err = s.client(t).Get(s.URL)
	require.NoError(t, err)
	resp.Body.Close()
	req, err = http.NewRequestWithContext(ctx, "GET", s.URL, nil)
	require.NoError(t, err)
	resp, err = s.client(t, WithoutTimeoutHeader()).Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, []string{"", ""}, s.timeout)
}

func TestTransportConnectionError(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens there any more
	var sent atomic.Int64
	base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		sent.Add(1)
		return http.DefaultTransport.RoundTrip(r)
	})
	_, err := (&http.Client{Transport: newTransport(t, base, WithRetry(noDelay))}).Get(url)
	var rerr *retry.Error
	require.ErrorAs(t, err, &rerr)
	assert.Equal(t, 3, rerr.Attempts)
	assert.EqualValues(t, 3, sent.Load())
}

func TestTransportBudget(t *testing.T) {
	budget, err := retry.NewBudget(retry.BudgetConfig{Ratio: 0.1, NoFloor: true})
	require.NoError(t, err)
	cfg := noDelay
	cfg.Budget = retry.BudgetConfig{}
	cfg.SharedBudget = budget
	s := newAttemptServer(t, 5, 503)
	resp, err := s.client(t, WithRetry(cfg)).Get(s.URL)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, 503, resp.StatusCode)
	assert.Equal(t, 1, s.attempts(), "one request earns a tenth of a retry: none is made")
	assert.EqualValues(t, 1, budget.Metrics().Exhausted)
	tr := newTransport(t, nil, WithRetry(cfg))
	assert.EqualValues(t, 1, tr.Metrics().Budget.Exhausted, "a transport's metrics include its shared budget's")
}

// TestTransportBreaker checks that each host has its breaker, and that an
// open breaker fails fast without reaching the server and closes the
// request's body.
func TestTransportBreaker(t *testing.T) {
	g, err := breaker.NewGroup(breaker.Config{ConsecutiveFailures: 2, OpenDuration: time.Minute}, 0)
	require.NoError(t, err)
	down := newAttemptServer(t, 100, 500)
	up := newAttemptServer(t, 0, 500)
	client := down.client(t, WithRetry(noDelay), WithBreakers(g, nil))
	for range 2 {
		resp, err := client.Get(down.URL)
		require.NoError(t, err)
		resp.Body.Close()
	}
	_, err = client.Get(down.URL)
	require.ErrorIs(t, err, breaker.ErrOpen)
	var rerr *retry.Error
	require.ErrorAs(t, err, &rerr)
	assert.Equal(t, 1, rerr.Attempts, "no retry waits out an open breaker")
	assert.Equal(t, 2, down.attempts())

	body := &trackingBody{Reader: strings.NewReader("x")}
	req, err := http.NewRequest("POST", down.URL, body)
	require.NoError(t, err)
	_, err = client.Do(req)
	require.ErrorIs(t, err, breaker.ErrOpen)
	assert.True(t, body.closed.Load(), "the unsent body is closed")
	assert.Equal(t, 2, down.attempts())

	resp, err := client.Get(up.URL)
	require.NoError(t, err, "another host has its own breaker")
	resp.Body.Close()
	assert.Equal(t, 2, g.Len())
}

// TestTransportBreakerKey checks that a BreakerKeyFunc names the breaker
// of each request: per host and method, failing writes leave reads alone;
// per host, they do not.
func TestTransportBreakerKey(t *testing.T) {
	f := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if r.Method == http.MethodPost {
			return answer(500), nil
		}
		return answer(200), nil
	})
	do := func(t *testing.T, tr *Transport, method, url string) (int, error) {
		t.Helper()
		req, err := http.NewRequest(method, url, nil)
		require.NoError(t, err)
		resp, err := tr.RoundTrip(req)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	cfg := breaker.Config{ConsecutiveFailures: 1, OpenDuration: time.Minute}
	for _, tc := range []struct {
		name    string
		key     BreakerKeyFunc
		getOpen bool     // a GET to the host is refused once its POSTs failed
		keys    []string // breakers in the group at the end
	}{
		{"per host", BreakerPerHost, true, []string{"account.internal", "ledger.internal:8443"}},
		{"nil is per host", nil, true, []string{"account.internal", "ledger.internal:8443"}},
		{"per host and method", BreakerPerHostMethod, false, []string{"GET account.internal", "GET ledger.internal:8443", "POST account.internal"}},
		{"per route", func(r *http.Request) string {
			return r.Method + " " + r.URL.Host + "/" + strings.Split(r.URL.Path, "/")[1]
		},
			false, []string{"GET account.internal/users", "GET ledger.internal:8443/users", "POST account.internal/users"}},
	} {
		g, err := breaker.NewGroup(cfg, 0)
		require.NoError(t, err)
		tr := newTransport(t, f, WithRetry(retry.Config{MaxAttempts: 1}), WithBreakers(g, tc.key))
		code, err := do(t, tr, "POST", "http://account.internal/users")
		require.NoError(t, err, tc.name)
		assert.Equal(t, 500, code, tc.name)
		_, err = do(t, tr, "POST", "http://account.internal/users")
		assert.ErrorIs(t, err, breaker.ErrOpen, "%s: the POSTs' breaker is open", tc.name)
		code, err = do(t, tr, "GET", "http://account.internal/users")
		if tc.getOpen {
			assert.ErrorIs(t, err, breaker.ErrOpen, tc.name)
		} else {
			require.NoError(t, err, tc.name)
			assert.Equal(t, 200, code, tc.name)
		}
		code, err = do(t, tr, "", "http://ledger.internal:8443/users") // "" is GET
		require.NoError(t, err, "%s: another host has its own breaker", tc.name)
		assert.Equal(t, 200, code, tc.name)
		var keys []string
		g.Range(func(k string, _ *breaker.Breaker) bool { keys = append(keys, k); return true })
		assert.ElementsMatch(t, tc.keys, keys, tc.name)
	}
}

// TestTransportBreakerKeyOncePerRoundTrip checks that the key function is
// called once per RoundTrip, whatever the number of attempts, and that
// every attempt asks the same breaker.
func TestTransportBreakerKeyOncePerRoundTrip(t *testing.T) {
	g, err := breaker.NewGroup(breaker.Config{ConsecutiveFailures: 100}, 0)
	require.NoError(t, err)
	var calls int
	key := func(r *http.Request) string { calls++; return "k" }
	f := roundTripFunc(func(r *http.Request) (*http.Response, error) { return answer(503), nil })
	resp, err := get(t, context.Background(), newTransport(t, f, WithRetry(noDelay), WithBreakers(g, key)))
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, 1, calls)
	assert.EqualValues(t, 3, g.Get("k").Metrics().Failures, "three attempts, one breaker")
}

func TestNewTransportErrors(t *testing.T) {
	for _, tc := range []struct {
		opts []TransportOption
		err  string
	}{
		{[]TransportOption{WithAttemptTimeout(-time.Second)}, "httpmw: WithAttemptTimeout(-1s): negative"},
		{[]TransportOption{WithRetryStatuses(503, 600)}, "httpmw: WithRetryStatuses: 600 is not an HTTP status (100–599)"},
		{[]TransportOption{WithRetryStatuses(99)}, "httpmw: WithRetryStatuses: 99 is not an HTTP status (100–599)"},
		{[]TransportOption{WithRetry(retry.Config{MaxAttempts: -1})}, "httpmw: WithRetry: retry: MaxAttempts -1"},
		{[]TransportOption{WithRetry(retry.Config{AttemptTimeout: -1})}, "httpmw: WithRetry: retry: AttemptTimeout -1ns is negative"},
		{[]TransportOption{WithBreakers(nil, BreakerPerHost)}, "httpmw: WithBreakers: nil group"},
		{[]TransportOption{WithThrottle(nil)}, "httpmw: WithThrottle: nil throttle"},
		{[]TransportOption{WithoutTimeoutHeader(), nil}, "httpmw: NewTransport: option 1 is nil"},
	} {
		tr, err := NewTransport(nil, tc.opts...)
		assert.Nil(t, tr)
		if assert.Error(t, err) {
			assert.True(t, strings.HasPrefix(err.Error(), tc.err), "%q does not start with %q", err, tc.err)
		}
	}
	tr, err := NewTransport(nil)
	require.NoError(t, err)
	assert.Equal(t, http.DefaultTransport, tr.base)
}

// roundTripFunc is a fake base transport.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// trackingBody records whether it was closed.
type trackingBody struct {
	io.Reader
	closed atomic.Bool
}

func (b *trackingBody) Close() error { b.closed.Store(true); return nil }

// fake is a fake base transport for tests in synctest bubbles: it answers
// each attempt with answer(n, req) and records when each came and what it
// carried.
type fake struct {
	answer func(n int, r *http.Request) (*http.Response, error)
	at     []time.Duration // since the fake was made
	header []string        // TimeoutHeader of each attempt
	bodies []*trackingBody // of the responses
	start  time.Time
}

func newFake(answer func(n int, r *http.Request) (*http.Response, error)) *fake {
	return &fake{answer: answer, start: time.Now()}
}

func (f *fake) RoundTrip(r *http.Request) (*http.Response, error) {
	f.at = append(f.at, time.Since(f.start))
	f.header = append(f.header, r.Header.Get(TimeoutHeader))
	resp, err := f.answer(len(f.at), r)
	if resp != nil {
		b := &trackingBody{Reader: resp.Body}
		resp.Body, resp.Request = b, r
		f.bodies = append(f.bodies, b)
	}
	return resp, err
}

func answer(status int, header ...string) *http.Response {
	h := http.Header{}
	for i := 0; i+1 < len(header); i += 2 {
		h.Add(header[i], header[i+1])
	}
	return &http.Response{StatusCode: status, Header: h, Body: io.NopCloser(strings.NewReader(http.StatusText(status)))}
}

func get(t *testing.T, ctx context.Context, rt http.RoundTripper) (*http.Response, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, "GET", "http://account.internal/v1/users/7", nil)
	require.NoError(t, err)
	return rt.RoundTrip(req)
}

func TestTransportRetryAfter(t *testing.T) {
	epoch := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC) // synctest's start
	for _, tc := range []struct {
		name, value string
		wait        time.Duration
	}{
		{"seconds", "2", 2 * time.Second},
		{"zero", "0", 0},
		{"date", epoch.Add(3 * time.Second).Format(http.TimeFormat), 3 * time.Second},
		{"past date", epoch.Add(-time.Hour).Format(http.TimeFormat), 0},
		{"capped by MaxHint", "3600", 10 * time.Second},
		{"far date capped", "Fri, 31 Dec 9999 23:59:59 GMT", 10 * time.Second},
		{"malformed", "soon", 0},
		{"negative", "-1", 0},
		{"fraction", "1.5", 0},
		{"absurd", "1000000000", 0}, // 10 digits: 31 years
	} {
		synctest.Test(t, func(t *testing.T) {
			f := newFake(func(n int, r *http.Request) (*http.Response, error) {
				if n == 1 {
					return answer(503, "Retry-After", tc.value), nil
				}
				return answer(200), nil
			})
			cfg := noDelay
			cfg.MaxHint = 10 * time.Second
			resp, err := get(t, context.Background(), newTransport(t, f, WithRetry(cfg)))
			require.NoError(t, err, tc.name)
			assert.Equal(t, 200, resp.StatusCode, tc.name)
			assert.Equal(t, []time.Duration{0, tc.wait}, f.at, tc.name)
			assert.True(t, f.bodies[0].closed.Load(), "%s: the 503's body is closed", tc.name)
		})
	}
}

// TestTransportRetryAfterMs checks that the millisecond header, when well
// formed, is preferred to Retry-After.
func TestTransportRetryAfterMs(t *testing.T) {
	for _, tc := range []struct {
		header []string
		wait   time.Duration
	}{
		{[]string{RetryAfterMsHeader, "250"}, 250 * time.Millisecond},
		{[]string{"Retry-After", "1", RetryAfterMsHeader, "3"}, 3 * time.Millisecond},
		{[]string{"Retry-After", "2", RetryAfterMsHeader, "soon"}, 2 * time.Second},
		{[]string{"Retry-After", "2", RetryAfterMsHeader, "-3"}, 2 * time.Second},
		{[]string{"Retry-After", "2", RetryAfterMsHeader, "1", RetryAfterMsHeader, "2"}, 2 * time.Second},
		{[]string{RetryAfterMsHeader, "1000000000"}, 0}, // 10 digits: ignored
	} {
		synctest.Test(t, func(t *testing.T) {
			f := newFake(func(n int, r *http.Request) (*http.Response, error) {
				if n == 1 {
					return answer(503, tc.header...), nil
				}
				return answer(200), nil
			})
			resp, err := get(t, context.Background(), newTransport(t, f, WithRetry(noDelay)))
			require.NoError(t, err)
			resp.Body.Close()
			assert.Equal(t, []time.Duration{0, tc.wait}, f.at, "%q", tc.header)
		})
	}
}

// TestTransportRetryAfterPastDeadline checks that a Retry-After that would
// outlast the caller's deadline ends the retries at once, with the answer.
func TestTransportRetryAfterPastDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(func(n int, r *http.Request) (*http.Response, error) { return answer(503, "Retry-After", "5"), nil })
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		start := time.Now()
		resp, err := get(t, ctx, newTransport(t, f, WithRetry(noDelay)))
		require.NoError(t, err)
		assert.Equal(t, 503, resp.StatusCode)
		assert.Zero(t, time.Since(start))
		assert.Len(t, f.at, 1)
		assert.False(t, f.bodies[0].closed.Load(), "the answer returned is the caller's to close")
		resp.Body.Close()
	})
}

// TestTransportDeadline checks that the caller's deadline is never overrun
// and that each attempt tells the server the time left.
func TestTransportDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(func(n int, r *http.Request) (*http.Response, error) { return answer(503), nil })
		cfg := noDelay
		cfg.MaxAttempts = 10
		cfg.DelayFunc = func(int, error) time.Duration { return 400 * time.Millisecond }
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		cfg.Budget = retry.BudgetConfig{MinRetriesPerSecond: 1} // a fresh budget's default floor is one retry a window
		tr := newTransport(t, f, WithRetry(cfg))
		resp, err := get(t, ctx, tr)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, 503, resp.StatusCode)
		ms := time.Millisecond
		assert.Equal(t, []time.Duration{0, 400 * ms, 800 * ms}, f.at, "a retry at 1200ms would pass the deadline")
		want := retry.Metrics{Retries: 2, GaveUp: 1, Budget: retry.BudgetMetrics{Requests: 1, Retries: 2}}
		want.GaveUpBy[retry.ReasonDeadline] = 1
		assert.Equal(t, want, tr.Metrics())
		assert.Equal(t, []string{"1000", "600", "200"}, f.header)

		// An attempt that hangs ends at the deadline.
		f = newFake(func(n int, r *http.Request) (*http.Response, error) {
			<-r.Context().Done()
			return nil, r.Context().Err()
		})
		ctx, cancel = context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		start := time.Now()
		_, err = get(t, ctx, newTransport(t, f, WithRetry(noDelay)))
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Equal(t, time.Second, time.Since(start))
		assert.Len(t, f.at, 1)
	})
}

func TestTransportCancelDuringWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(func(n int, r *http.Request) (*http.Response, error) { return answer(503, "Retry-After", "10"), nil })
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(time.Second, cancel)
		start := time.Now()
		resp, err := get(t, ctx, newTransport(t, f, WithRetry(noDelay)))
		assert.Nil(t, resp)
		assert.ErrorIs(t, err, context.Canceled)
		assert.Equal(t, time.Second, time.Since(start), "the wait ends when the caller gives up")
		assert.True(t, f.bodies[0].closed.Load())
	})
}

func TestTransportAttemptTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(func(n int, r *http.Request) (*http.Response, error) {
			<-r.Context().Done()
			return nil, r.Context().Err()
		})
		start := time.Now()
		_, err := get(t, context.Background(), newTransport(t, f, WithRetry(noDelay), WithAttemptTimeout(100*time.Millisecond)))
		var terr *AttemptTimeoutError
		require.ErrorAs(t, err, &terr)
		assert.True(t, terr.Timeout())
		assert.EqualError(t, terr, "httpmw: attempt timed out after 100ms")
		var rerr *retry.Error
		require.ErrorAs(t, err, &rerr)
		assert.Equal(t, 3, rerr.Attempts, "an attempt that times out is retried")
		assert.Equal(t, 300*time.Millisecond, time.Since(start))
		assert.Equal(t, []string{"100", "100", "100"}, f.header)
	})
}

// TestTransportAttemptTimeoutBody checks that the attempt's context lives
// while the caller reads the body of the answer, and ends when it closes it.
func TestTransportAttemptTimeoutBody(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var actx context.Context
		f := newFake(func(n int, r *http.Request) (*http.Response, error) {
			actx = r.Context()
			return answer(200), nil
		})
		cfg := retry.Config{AttemptTimeout: time.Second} // as WithAttemptTimeout
		resp, err := get(t, context.Background(), newTransport(t, f, WithRetry(cfg)))
		require.NoError(t, err)
		bubble.Sleep(500 * time.Millisecond)
		require.NoError(t, actx.Err(), "the body can still be read")
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		assert.Equal(t, "OK", string(b))
		require.NoError(t, resp.Body.Close())
		assert.ErrorIs(t, actx.Err(), context.Canceled, "closing the body ends the attempt")
		assert.True(t, f.bodies[0].closed.Load())
	})
}

func TestTransportDiscardsBodies(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(func(n int, r *http.Request) (*http.Response, error) { return answer(502), nil })
		resp, err := get(t, context.Background(), newTransport(t, f, WithRetry(noDelay)))
		require.NoError(t, err)
		require.Len(t, f.bodies, 3)
		assert.True(t, f.bodies[0].closed.Load())
		assert.True(t, f.bodies[1].closed.Load())
		assert.False(t, f.bodies[2].closed.Load(), "the last answer is returned unchanged")
		assert.Equal(t, "Bad Gateway", readAll(t, resp))
	})
}

// TestTransportNotRetryable checks the default classification of errors.
func TestTransportNotRetryable(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		boom := errors.New("connection reset")
		f := newFake(func(n int, r *http.Request) (*http.Response, error) { return nil, boom })
		_, err := get(t, context.Background(), newTransport(t, f, WithRetry(noDelay)))
		assert.ErrorIs(t, err, boom)
		assert.Len(t, f.at, 3)
	})
}

// TestTransportUpgradeNoAttemptTimeout checks that a request asking for a
// protocol upgrade (WebSocket) gets no attempt timeout: the connection
// outlives the attempt.
func TestTransportUpgradeNoAttemptTimeout(t *testing.T) {
	var deadline bool
	f := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		_, deadline = r.Context().Deadline()
		return answer(http.StatusSwitchingProtocols), nil
	})
	req, err := http.NewRequest("GET", "http://chat.internal/ws", nil)
	require.NoError(t, err)
	req.Header.Set("Upgrade", "websocket")
	resp, err := newTransport(t, f, WithAttemptTimeout(time.Second)).RoundTrip(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.False(t, deadline)
	req.Header.Del("Upgrade")
	resp, err = newTransport(t, f, WithAttemptTimeout(time.Second)).RoundTrip(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.True(t, deadline)
}

// TestBackpressureEndToEnd puts a Transport in front of a rate-limited
// handler (through a recorder, in virtual time): a request refused with a
// sub-second hint is retried exactly when the limiter's next token comes,
// within a deadline shorter than a second.
func TestBackpressureEndToEnd(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l, err := ratelimit.New(ratelimit.Config{Rate: 4, Burst: 1}) // a token every 250ms
		require.NoError(t, err)
		var served int
		h := newServer(t, WithDeadline(DefaultMaxTimeout), WithRateLimit(l)).Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { served++ }))
		var at []time.Duration
		start := time.Now()
		direct := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			at = append(at, time.Since(start))
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			return w.Result(), nil
		})
		tr := newTransport(t, direct, WithRetry(noDelay))
		for range 2 {
			ctx, cancel := context.WithTimeout(context.Background(), 900*time.Millisecond)
			resp, err := get(t, ctx, tr)
			cancel()
			require.NoError(t, err)
			resp.Body.Close()
			assert.Equal(t, 200, resp.StatusCode)
		}
		assert.Equal(t, []time.Duration{0, 0, 250 * time.Millisecond}, at, "the refused request came back when the next token did")
		assert.Equal(t, 2, served)
	})
}

// TestTransportSheddingIsNotFailure: a server that sheds load (429, 503
// with a hint) is healthy: its answers do not open the breaker, and they
// feed the throttle as refusals. Errors, timeouts and 5xx answers without
// a hint open the breaker, and are accepts for the throttle. A real server,
// no retries: each request is one attempt.
func TestTransportSheddingIsNotFailure(t *testing.T) {
	for _, tc := range []struct {
		name     string
		status   int      // 0: the answer never comes, the attempt times out
		header   []string // of the answer
		overload bool
	}{
		{"429", 429, nil, true},
		{"429 with Retry-After", 429, []string{"Retry-After", "1"}, true},
		{"503 with Retry-After", 503, []string{"Retry-After", "1"}, true},
		{"503 with Retry-After-Ms", 503, []string{RetryAfterMsHeader, "20"}, true},
		{"500", 500, nil, false},
		{"500 with Retry-After", 500, []string{"Retry-After", "1"}, false},
		{"502", 502, nil, false},
		{"503 without a hint", 503, nil, false},
		{"503 with a malformed Retry-After", 503, []string{"Retry-After", "soon"}, false},
		{"timeout", 0, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var attempts atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				attempts.Add(1)
				if tc.status == 0 {
					<-r.Context().Done()
					return
				}
				for i := 0; i < len(tc.header); i += 2 {
					w.Header().Set(tc.header[i], tc.header[i+1])
				}
				w.WriteHeader(tc.status)
			}))
			defer srv.Close()
			g, err := breaker.NewGroup(breaker.Config{ConsecutiveFailures: 3, OpenDuration: time.Minute}, 0)
			require.NoError(t, err)
			th, err := throttle.New(throttle.Config{Rand: func() float64 { return 1 }}) // counts, never rejects
			require.NoError(t, err)
			opts := []TransportOption{WithRetry(retry.Config{MaxAttempts: 1}), WithBreakers(g, nil), WithThrottle(th)}
			if tc.status == 0 {
				opts = append(opts, WithAttemptTimeout(20*time.Millisecond))
			}
			base := srv.Client().Transport.(*http.Transport)
			defer base.CloseIdleConnections()
			client := &http.Client{Transport: newTransport(t, base, opts...)}

			var open int
			for range 5 {
				resp, err := client.Get(srv.URL)
				switch {
				case errors.Is(err, breaker.ErrOpen):
					open++
				case err == nil:
					discard(resp)
				}
			}
			b := g.Get(strings.TrimPrefix(srv.URL, "http://"))
			m := th.Metrics()
			if tc.overload {
				assert.Equal(t, breaker.Closed, b.State(), "shedding does not open the breaker")
				assert.Zero(t, open)
				assert.Equal(t, uint64(5), b.Metrics().Ignored)
				assert.Equal(t, throttle.Metrics{Probability: 5.0 / 6, Requests: 5, Refused: 5}, m, "every answer is a refusal")
				assert.EqualValues(t, 5, attempts.Load())
			} else {
				assert.Equal(t, breaker.Open, b.State(), "failures open the breaker")
				assert.Equal(t, 2, open)
				assert.Equal(t, uint64(3), b.Metrics().Failures)
				assert.Equal(t, throttle.Metrics{Requests: 3, Accepts: 3}, m,
					"failures are accepts; the breaker's rejections never reach the throttle")
				assert.EqualValues(t, 3, attempts.Load())
			}
		})
	}
}

// TestTransportStatusErrorOverload: the error the policies see for an
// answer; seawall.IsOverload is true of exactly the overload answers.
func TestTransportStatusErrorOverload(t *testing.T) {
	for _, tc := range []struct {
		resp     *http.Response
		overload bool
		hint     time.Duration
		hinted   bool
	}{
		{answer(429), true, 0, true},
		{answer(429, "Retry-After", "2"), true, 2 * time.Second, true},
		{answer(503, RetryAfterMsHeader, "15"), true, 15 * time.Millisecond, true},
		{answer(503), false, 0, false},
		{answer(500, "Retry-After", "2"), false, 2 * time.Second, true},
		{answer(504), false, 0, false},
	} {
		err := statusError(tc.resp)
		var se *StatusError
		require.ErrorAs(t, err, &se)
		assert.Equal(t, tc.overload, seawall.IsOverload(err), "%d %v", tc.resp.StatusCode, tc.resp.Header)
		assert.Equal(t, tc.overload, errors.Is(err, seawall.ErrRejected))
		d, hinted := seawall.RetryAfter(err)
		assert.Equal(t, tc.hinted, hinted)
		assert.Equal(t, tc.hint, d)
	}
	assert.NoError(t, answerError(answer(404), nil), "a 4xx other than 429 is a success")
	assert.NoError(t, answerError(answer(200), nil))
}

// TestTransportThrottled: a throttled attempt does not reach the server,
// is not retried, and gives its breaker permit back unused.
func TestTransportThrottled(t *testing.T) {
	s := newAttemptServer(t, 100, 429)
	g, err := breaker.NewGroup(breaker.Config{}, 0)
	require.NoError(t, err)
	th, err := throttle.New(throttle.Config{Rand: func() float64 { return 0 }}) // rejects whenever it may
	require.NoError(t, err)
	client := s.client(t, WithRetry(noDelay), WithBreakers(g, nil), WithThrottle(th))
	_, err = client.Get(s.URL)
	// The first attempt is refused (429), which makes the probability 1/2;
	// its retry is throttled, and not retried.
	require.ErrorIs(t, err, throttle.ErrThrottled)
	require.ErrorIs(t, err, seawall.ErrRejected)
	var rerr *retry.Error
	require.ErrorAs(t, err, &rerr)
	assert.Equal(t, 2, rerr.Attempts)
	assert.Equal(t, 1, s.attempts(), "the throttled attempt was not sent")
	assert.Equal(t, throttle.Metrics{Probability: 2.0 / 3, Requests: 2, Throttled: 1, Refused: 1}, th.Metrics())
	bm := g.Get(strings.TrimPrefix(s.URL, "http://")).Metrics()
	assert.Equal(t, uint64(2), bm.Ignored, "the 429 and the unused permit")
	assert.Zero(t, bm.Failures)
}
