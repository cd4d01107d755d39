package httpmw

import (
	"context"
	"errors"
	"io"
	"net/http"
	"slices"
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
	"github.com/seawall-go/seawall/hedge"
	"github.com/seawall-go/seawall/internal/bubble"
	"github.com/seawall-go/seawall/internal/memnet"
	"github.com/seawall-go/seawall/retry"
)

// reply is how hedgeServer answers one request: after latency (or when
// the request is cancelled), with status (200 if 0), header pairs and a
// body naming the request's number.
type reply struct {
	latency time.Duration
	status  int
	header  []string
}

// hedgeServer is a real HTTP server, on an in-memory network for synctest
// bubbles, that answers its nth request as script[n-1] says and records
// what each request carried and whether its caller gave up on it.
type hedgeServer struct {
	script []reply
	client *http.Client
	open   atomic.Int64 // response bodies the transport got and has not closed

	mu        sync.Mutex
	bodies    []string
	cancelled []bool
}

func newHedgeServer(t *testing.T, script ...reply) *hedgeServer {
	s := &hedgeServer{script: script}
	ln := memnet.Listen()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.bodies = append(s.bodies, string(b))
		s.cancelled = append(s.cancelled, false)
		n := len(s.bodies)
		s.mu.Unlock()
		require.LessOrEqual(t, n, len(s.script), "request %d not in the script", n)
		a := s.script[n-1]
		select {
		case <-time.After(a.latency):
		case <-r.Context().Done():
			s.mu.Lock()
			s.cancelled[n-1] = true
			s.mu.Unlock()
			return
		}
		for i := 0; i+1 < len(a.header); i += 2 {
			w.Header().Set(a.header[i], a.header[i+1])
		}
		if a.status != 0 {
			w.WriteHeader(a.status)
		}
		io.WriteString(w, "answer "+strconv.Itoa(n))
	})}
	go srv.Serve(ln)
	base := &http.Transport{DialContext: ln.Dial}
	t.Cleanup(func() {
		base.CloseIdleConnections()
		srv.Close()
		synctest.Wait()
		assert.Zero(t, s.open.Load(), "every response body is closed")
	})
	s.client = &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		resp, err := base.RoundTrip(r)
		if err == nil {
			s.open.Add(1)
			resp.Body = &countedBody{ReadCloser: resp.Body, open: &s.open}
		}
		return resp, err
	})}
	return s
}

type countedBody struct {
	io.ReadCloser
	open *atomic.Int64
	once sync.Once
}

func (b *countedBody) Close() error {
	b.once.Do(func() { b.open.Add(-1) })
	return b.ReadCloser.Close()
}

func (s *hedgeServer) requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.bodies)
}

func (s *hedgeServer) wasCancelled(n int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cancelled[n-1]
}

// transport returns a Transport over the server's connections.
func (s *hedgeServer) transport(t *testing.T, opts ...TransportOption) *Transport {
	return newTransport(t, s.client.Transport, opts...)
}

// fixed hedges once after d.
func fixed(d time.Duration) hedge.Config { return hedge.Config{Delay: d} }

var noRetry = retry.Config{MaxAttempts: 1}

func hedgedGet(t *testing.T, ctx context.Context, tr *Transport) (*http.Response, time.Duration, error) {
	t.Helper()
	start := time.Now()
	req, err := http.NewRequestWithContext(ctx, "GET", "http://account.internal/v1/users/7", nil)
	require.NoError(t, err)
	resp, err := tr.RoundTrip(req)
	return resp, time.Since(start), err
}

func TestHedgeCutsSlowAttempt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newHedgeServer(t, reply{latency: time.Second}, reply{latency: 10 * time.Millisecond})
		tr := s.transport(t, WithRetry(noRetry), WithHedge(fixed(50*time.Millisecond)))
		resp, took, err := hedgedGet(t, t.Context(), tr)
		require.NoError(t, err)
		assert.Equal(t, 60*time.Millisecond, took, "the hedge, sent after 50ms, answers in 10ms")
		assert.Equal(t, "answer 2", readAll(t, resp))
		synctest.Wait()
		assert.True(t, s.wasCancelled(1), "the slow attempt is cancelled")
		m := tr.hedge.Metrics()
		assert.Equal(t, uint64(1), m.Hedges)
		assert.Equal(t, uint64(1), m.HedgeWins)
	})
}

func TestHedgeFastFirstAttemptSendsNoHedge(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newHedgeServer(t, reply{latency: 10 * time.Millisecond})
		tr := s.transport(t, WithHedge(fixed(50*time.Millisecond)))
		resp, _, err := hedgedGet(t, t.Context(), tr)
		require.NoError(t, err)
		bubble.Sleep(time.Second) // the body is read long after the hedge delay
		assert.Equal(t, "answer 1", readAll(t, resp))
		assert.Equal(t, 1, s.requests())
		assert.Zero(t, tr.hedge.Metrics().Hedges)
	})
}

// TestHedgeWinnerContextEndsOnClose: the winner's attempt lives while its
// body is read, and ends with Close, not with the request's context.
func TestHedgeWinnerContextEndsOnClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var actx context.Context
		base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			actx = r.Context()
			return answer(200), nil
		})
		tr := newTransport(t, base, WithRetry(noRetry), WithHedge(fixed(time.Second)))
		resp, _, err := hedgedGet(t, context.Background(), tr)
		require.NoError(t, err)
		bubble.Sleep(2 * time.Second)
		require.NoError(t, actx.Err())
		assert.Equal(t, "OK", readAll(t, resp))
		assert.ErrorIs(t, actx.Err(), context.Canceled, "closing the body ends the attempt's context")
	})
}

func TestHedgeNonFatalStatusSendsNextAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newHedgeServer(t, reply{latency: 5 * time.Millisecond, status: 503}, reply{latency: 10 * time.Millisecond})
		tr := s.transport(t, WithRetry(noRetry), WithHedge(fixed(time.Second)))
		resp, took, err := hedgedGet(t, t.Context(), tr)
		require.NoError(t, err)
		assert.Equal(t, 15*time.Millisecond, took, "a 503 sends the hedge at once, not after the delay")
		assert.Equal(t, "answer 2", readAll(t, resp))
	})
}

func TestHedgeRetryAfterDelaysNextHedge(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newHedgeServer(t, reply{latency: 5 * time.Millisecond, status: 503, header: []string{"Retry-After", "1"}}, reply{})
		tr := s.transport(t, WithRetry(noRetry), WithHedge(fixed(10*time.Second)))
		resp, took, err := hedgedGet(t, t.Context(), tr)
		require.NoError(t, err)
		assert.Equal(t, 1005*time.Millisecond, took, "the hedge waits the server's Retry-After")
		assert.Equal(t, "answer 2", readAll(t, resp))
	})
}

// TestHedgeRetryAfterPastDeadlineStops: a Retry-After the caller cannot
// wait is the server's "do not try again": no hedge, and the answer is the
// first attempt's, its body intact.
func TestHedgeRetryAfterPastDeadlineStops(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newHedgeServer(t, reply{latency: 5 * time.Millisecond, status: 503, header: []string{"Retry-After", "60"}})
		tr := s.transport(t, WithRetry(noRetry), WithHedge(hedge.Config{Delay: time.Second, MaxAttempts: 3}))
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		resp, took, err := hedgedGet(t, ctx, tr)
		require.NoError(t, err)
		assert.Equal(t, 5*time.Millisecond, took)
		assert.Equal(t, 503, resp.StatusCode)
		assert.Equal(t, "60", resp.Header.Get("Retry-After"))
		assert.Equal(t, "answer 1", readAll(t, resp), "the first attempt's body is kept")
		assert.Equal(t, 1, s.requests())
	})
}

// TestHedgeAllFailReturnsFirst: when every attempt is answered with a
// retried status, the round's answer is the first attempt's.
func TestHedgeAllFailReturnsFirst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newHedgeServer(t, reply{latency: 30 * time.Millisecond, status: 502}, reply{latency: 5 * time.Millisecond, status: 503})
		tr := s.transport(t, WithRetry(noRetry), WithHedge(fixed(10*time.Millisecond)))
		resp, took, err := hedgedGet(t, t.Context(), tr)
		require.NoError(t, err)
		assert.Equal(t, 30*time.Millisecond, took)
		assert.Equal(t, 502, resp.StatusCode)
		assert.Equal(t, "answer 1", readAll(t, resp))
		assert.Equal(t, 2, s.requests())
	})
}

// TestHedgeFatalErrorEndsAll: an error that is not retried ends the round
// at once, cancelling the attempt still running.
func TestHedgeFatalErrorEndsAll(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var n atomic.Int32
		var firstCtx atomic.Pointer[context.Context]
		fatal := seawall.Permanent(errors.New("no such account"))
		base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if n.Add(1) == 1 {
				ctx := r.Context()
				firstCtx.Store(&ctx)
				<-ctx.Done()
				return nil, ctx.Err()
			}
			bubble.Sleep(5 * time.Millisecond)
			return nil, fatal
		})
		tr := newTransport(t, base, WithRetry(noRetry), WithHedge(fixed(10*time.Millisecond)))
		_, took, err := hedgedGet(t, t.Context(), tr)
		assert.ErrorIs(t, err, fatal)
		assert.Equal(t, 15*time.Millisecond, took)
		assert.ErrorIs(t, (*firstCtx.Load()).Err(), context.Canceled)
	})
}

func TestHedgeReplaysBody(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newHedgeServer(t, reply{latency: time.Second}, reply{})
		tr := s.transport(t, WithRetry(noRetry), WithHedge(fixed(10*time.Millisecond)))
		req, err := http.NewRequestWithContext(t.Context(), "POST", "http://account.internal/v1/login", strings.NewReader("user=7"))
		require.NoError(t, err)
		req.Header.Set("Idempotency-Key", "k1")
		resp, err := tr.RoundTrip(req)
		require.NoError(t, err)
		assert.Equal(t, "answer 2", readAll(t, resp))
		assert.Equal(t, []string{"user=7", "user=7"}, s.bodies)
	})
}

func TestHedgeNotForUnsafeRequests(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newHedgeServer(t, reply{latency: time.Second})
		tr := s.transport(t, WithHedge(fixed(10*time.Millisecond)))
		req, err := http.NewRequestWithContext(t.Context(), "POST", "http://account.internal/v1/login", strings.NewReader("user=7"))
		require.NoError(t, err)
		resp, err := tr.RoundTrip(req)
		require.NoError(t, err)
		assert.Equal(t, "answer 1", readAll(t, resp))
		assert.Equal(t, 1, s.requests(), "a POST without an idempotency key is sent once")
		assert.Zero(t, tr.hedge.Metrics().Calls)
	})
}

// TestHedgeOpenBreaker: an open breaker fails the request fast, with no
// hedge; a breaker that opens during a request stops its hedges.
func TestHedgeOpenBreaker(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g, err := breaker.NewGroup(breaker.Config{}, 16)
		require.NoError(t, err)
		s := newHedgeServer(t, reply{latency: 100 * time.Millisecond})
		tr := s.transport(t, WithRetry(noRetry), WithBreakers(g, nil), WithHedge(fixed(10*time.Millisecond)))

		// Opens while the first attempt runs: the hedge is not sent.
		go func() {
			bubble.Sleep(5 * time.Millisecond)
			g.Get("account.internal").ForceOpen()
		}()
		resp, took, err := hedgedGet(t, t.Context(), tr)
		require.NoError(t, err)
		assert.Equal(t, 100*time.Millisecond, took)
		assert.Equal(t, "answer 1", readAll(t, resp))
		m := tr.hedge.Metrics()
		assert.Zero(t, m.Hedges)
		assert.Equal(t, uint64(1), m.GateRefusals)

		_, took, err = hedgedGet(t, t.Context(), tr)
		assert.ErrorIs(t, err, breaker.ErrOpen)
		assert.Zero(t, took, "fails fast")
		assert.Equal(t, 1, s.requests())
		assert.Zero(t, tr.hedge.Metrics().Hedges)
	})
}

// TestHedgeSpendsRetryBudget: hedges spend from the retry's budget, which
// counts each request once; an empty budget sends no hedge and cancels no
// attempt.
func TestHedgeSpendsRetryBudget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newHedgeServer(t, reply{latency: 100 * time.Millisecond}, reply{latency: 100 * time.Millisecond})
		cfg := retry.Config{MaxAttempts: 2, Budget: retry.BudgetConfig{Ratio: 0.001, NoFloor: true}}
		tr := s.transport(t, WithRetry(cfg), WithHedge(fixed(10*time.Millisecond)))
		resp, took, err := hedgedGet(t, t.Context(), tr)
		require.NoError(t, err)
		assert.Equal(t, 100*time.Millisecond, took)
		assert.Equal(t, "answer 1", readAll(t, resp), "the running attempt is not cancelled")
		assert.Equal(t, 1, s.requests())
		m := tr.Metrics()
		assert.Equal(t, uint64(1), m.Budget.Requests, "one request, counted once")
		assert.Equal(t, uint64(1), tr.hedge.Metrics().BudgetRefusals)
	})
}

// TestHedgeInsideRetry: each retry attempt is a hedged round.
func TestHedgeInsideRetry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newHedgeServer(t,
			reply{latency: 5 * time.Millisecond, status: 503},
			reply{latency: 5 * time.Millisecond, status: 503},
			reply{latency: 5 * time.Millisecond})
		tr := s.transport(t, WithRetry(noDelay), WithHedge(fixed(time.Second)))
		resp, took, err := hedgedGet(t, t.Context(), tr)
		require.NoError(t, err)
		assert.Equal(t, 15*time.Millisecond, took)
		assert.Equal(t, "answer 3", readAll(t, resp))
		assert.Equal(t, uint64(1), tr.Metrics().Retries)
		assert.Equal(t, uint64(2), tr.hedge.Metrics().Calls, "two rounds")
	})
}

func TestWithHedgeInvalid(t *testing.T) {
	_, err := NewTransport(nil, WithHedge(hedge.Config{MaxAttempts: 11}))
	assert.EqualError(t, err, "httpmw: WithHedge: hedge: MaxAttempts 11 out of range [1,10]")
}

// TestHedgeTailLatencyOverHTTP: over a real HTTP server where 2% of
// requests take 100× longer, the transport's default hedge (p95 delay)
// cuts p99 by at least 5× for at most 10% more requests. Virtual time.
func TestHedgeTailLatencyOverHTTP(t *testing.T) {
	const calls = 2000
	run := func(t *testing.T, opts ...TransportOption) (p99 time.Duration, requests int) {
		var n atomic.Int64
		script := func(i int64) time.Duration {
			if i%50 == 0 {
				return time.Second // 2% slow
			}
			return 5*time.Millisecond + time.Duration(i%10)*time.Millisecond
		}
		ln := memnet.Listen()
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-time.After(script(n.Add(1))):
			case <-r.Context().Done():
			}
		})}
		go srv.Serve(ln)
		base := &http.Transport{DialContext: ln.Dial}
		defer func() { base.CloseIdleConnections(); srv.Close() }()
		tr := newTransport(t, base, opts...)
		took := make([]time.Duration, calls)
		for i := range took {
			resp, d, err := hedgedGet(t, t.Context(), tr)
			require.NoError(t, err)
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			took[i] = d
		}
		slices.Sort(took)
		return took[calls*99/100], int(n.Load())
	}
	synctest.Test(t, func(t *testing.T) {
		p99b, nb := run(t, WithRetry(noRetry))
		p99h, nh := run(t, WithRetry(noRetry), WithHedge(hedge.Config{}))
		extra := float64(nh-nb) / float64(nb)
		t.Logf("unhedged p99 %v; hedged p99 %v (%.1f× cut) for %.1f%% more requests", p99b, p99h, float64(p99b)/float64(p99h), 100*extra)
		assert.GreaterOrEqual(t, float64(p99b)/float64(p99h), 5.0, "p99 cut")
		assert.LessOrEqual(t, extra, 0.10, "extra requests")
	})
}

// TestHedgeCallerMayReuseRequest: once the winner's body is closed, no
// losing attempt still reads the request, so the caller may change it
// (the race detector checks).
func TestHedgeCallerMayReuseRequest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var n atomic.Int32
		base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if n.Add(1) == 1 {
				bubble.Sleep(25 * time.Millisecond)
				return answer(200), nil
			}
			for r.Context().Err() == nil { // a loser still sending
				_ = r.Header.Get("X-Trace")
				bubble.Sleep(time.Millisecond)
			}
			_ = r.Header.Get("X-Trace")
			return nil, r.Context().Err()
		})
		tr := newTransport(t, base, WithRetry(noRetry), WithHedge(hedge.Config{Delay: 10 * time.Millisecond, MaxAttempts: 3}))
		req, err := http.NewRequestWithContext(t.Context(), "GET", "http://account.internal/v1/users/7", nil)
		require.NoError(t, err)
		req.Header.Set("X-Trace", "1")
		resp, err := tr.RoundTrip(req)
		require.NoError(t, err)
		assert.Equal(t, "OK", readAll(t, resp))
		req.Header.Set("X-Trace", "2") // the caller's again
		assert.Equal(t, int32(3), n.Load())
	})
}
