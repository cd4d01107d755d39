package hedge

import (
	"context"
	"errors"

	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/seawall-go/seawall"
	"github.com/seawall-go/seawall/internal/bubble"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var errBoom = errors.New("boom")

func mustNew(t testing.TB, cfg Config) *Hedge {
	t.Helper()
	h, err := New(cfg)
	require.NoError(t, err)
	return h
}

// sleep waits d or until ctx ends, and reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// An attempt is what a scripted operation does on its n-th attempt (from
// 0, in the order they start): answer after latency with err, or, if
// ignoreCtx, answer even once its context has ended.
type attempt struct {
	latency   time.Duration
	err       error
	ignoreCtx bool
}

// script is an operation whose attempts follow a script, recording when
// each began and how its context stood when it answered.
type script struct {
	t        *testing.T
	attempts []attempt
	mu       sync.Mutex
	n        int
	began    []time.Duration // since t0
	ctxErr   []error         // each attempt's ctx.Err() when it answered
	t0       time.Time
	released []int
}

func newScript(t *testing.T, as ...attempt) *script {
	return &script{t: t, attempts: as, t0: time.Now()}
}

func (s *script) op(ctx context.Context) (int, error) {
	s.mu.Lock()
	i := s.n
	s.n++
	s.began = append(s.began, time.Since(s.t0))
	s.ctxErr = append(s.ctxErr, nil)
	s.mu.Unlock()
	require.Less(s.t, i, len(s.attempts), "attempt %d not in the script", i)
	a := s.attempts[i]
	if a.ignoreCtx {
		bubble.Sleep(a.latency)
	} else if !sleep(ctx, a.latency) {
		s.record(i, ctx)
		return 0, ctx.Err()
	}
	s.record(i, ctx)
	if a.err != nil {
		return 0, a.err
	}
	return 100 + i, nil
}

func (s *script) record(i int, ctx context.Context) {
	s.mu.Lock()
	s.ctxErr[i] = ctx.Err()
	s.mu.Unlock()
}

func (s *script) release(v int) {
	s.mu.Lock()
	s.released = append(s.released, v)
	s.mu.Unlock()
}

// timed runs Get and returns its results and how long it took.
func timed(ctx context.Context, h *Hedge, s *script, release func(int)) (int, time.Duration, error) {
	start := time.Now()
	v, err := Get(ctx, h, s.op, release)
	return v, time.Since(start), err
}

// bubbleGoroutines returns the number of goroutines in the calling
// goroutine's synctest bubble, read from their tracebacks: unlike
// runtime.NumGoroutine, it does not count a goroutine of another test
// (a tRunner exiting late) that comes or goes meanwhile.
func bubbleGoroutines(t *testing.T) int {
	t.Helper()
	buf := make([]byte, 1<<16)
	self := string(buf[:runtime.Stack(buf, false)])
	i := strings.Index(self, ", synctest bubble ")
	require.GreaterOrEqual(t, i, 0, "not in a bubble: %s", self)
	tag := self[i : i+strings.Index(self[i:], "]")+1] // ", synctest bubble N]"
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return strings.Count(string(buf[:n]), tag)
		}
		buf = make([]byte, 2*len(buf))
	}
}

func TestFirstAnswerBeforeDelayStartsNoGoroutine(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := mustNew(t, Config{Delay: 10 * time.Millisecond, MaxAttempts: 3})
		before := bubbleGoroutines(t)
		var during int
		v, err := Get(t.Context(), h, func(ctx context.Context) (int, error) {
			bubble.Sleep(9 * time.Millisecond)
			during = bubbleGoroutines(t)
			return 7, nil
		}, nil)
		require.NoError(t, err)
		assert.Equal(t, 7, v)
		assert.Equal(t, before, during, "goroutines while the first attempt ran")
		bubble.Sleep(time.Second) // the timer, stopped, fires nothing
		synctest.Wait()
		assert.Equal(t, before, bubbleGoroutines(t))
		m := h.Metrics()
		assert.Equal(t, uint64(1), m.Calls)
		assert.Zero(t, m.Hedges)
	})
}

func TestHedgeWinsOthersCancelledAndReleased(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := mustNew(t, Config{Delay: 10 * time.Millisecond, MaxAttempts: 3})
		// Attempts that ignore their context, so the losers answer with
		// values that must be released: 0 answers at 50ms, 1 (from 10ms)
		// at 25ms and wins, 2 (from 20ms) at 50ms.
		s := newScript(t,
			attempt{latency: 50 * time.Millisecond, ignoreCtx: true},
			attempt{latency: 15 * time.Millisecond, ignoreCtx: true},
			attempt{latency: 30 * time.Millisecond, ignoreCtx: true},
		)
		v, _, err := timed(t.Context(), h, s, s.release)
		require.NoError(t, err)
		assert.Equal(t, 101, v, "the first to answer wins")
		synctest.Wait()
		bubble.Sleep(time.Second)
		synctest.Wait()
		assert.Equal(t, []time.Duration{0, 10 * time.Millisecond, 20 * time.Millisecond}, s.began)
		assert.ErrorIs(t, s.ctxErr[0], context.Canceled, "loser 0 cancelled")
		assert.NoError(t, s.ctxErr[1], "the winner's context lives on with a release")
		assert.ErrorIs(t, s.ctxErr[2], context.Canceled, "loser 2 cancelled")
		slices.Sort(s.released)
		assert.Equal(t, []int{100, 102}, s.released, "every losing value released")
		m := h.Metrics()
		assert.Equal(t, uint64(2), m.Hedges)
		assert.Equal(t, uint64(1), m.HedgeWins)
	})
}

func TestHedgeWinReturnsPromptlyWhenOpsHonourContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := mustNew(t, Config{Delay: 10 * time.Millisecond})
		s := newScript(t, attempt{latency: time.Second}, attempt{latency: 5 * time.Millisecond})
		v, took, err := timed(t.Context(), h, s, nil)
		require.NoError(t, err)
		assert.Equal(t, 101, v)
		assert.Equal(t, 15*time.Millisecond, took)
		synctest.Wait()
		assert.ErrorIs(t, s.ctxErr[0], context.Canceled)
	})
}

func TestNonFatalErrorSendsNextHedgeAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := mustNew(t, Config{Delay: time.Second, MaxAttempts: 2})
		s := newScript(t,
			attempt{latency: 5 * time.Millisecond, err: errBoom},
			attempt{latency: 5 * time.Millisecond},
		)
		v, took, err := timed(t.Context(), h, s, nil)
		require.NoError(t, err)
		assert.Equal(t, 101, v)
		assert.Equal(t, []time.Duration{0, 5 * time.Millisecond}, s.began)
		assert.Equal(t, 10*time.Millisecond, took)
	})
}

func TestPushbackDelaysNextHedge(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := mustNew(t, Config{Delay: time.Second, MaxAttempts: 2})
		s := newScript(t,
			attempt{latency: 5 * time.Millisecond, err: seawall.WithPushback(errBoom, 30*time.Millisecond)},
			attempt{latency: 5 * time.Millisecond},
		)
		_, _, err := timed(t.Context(), h, s, nil)
		require.NoError(t, err)
		assert.Equal(t, []time.Duration{0, 35 * time.Millisecond}, s.began)
	})
}

func TestFatalErrorEndsAll(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := mustNew(t, Config{Delay: 10 * time.Millisecond, MaxAttempts: 3})
		fatal := seawall.Permanent(errBoom)
		s := newScript(t,
			attempt{latency: time.Second},
			attempt{latency: 5 * time.Millisecond, err: fatal},
		)
		_, took, err := timed(t.Context(), h, s, nil)
		assert.Equal(t, fatal, err)
		assert.Equal(t, 15*time.Millisecond, took)
		bubble.Sleep(time.Second)
		synctest.Wait()
		assert.Len(t, s.began, 2, "no hedge after a fatal error")
		assert.ErrorIs(t, s.ctxErr[0], context.Canceled)
	})
}

func TestStopHedgingKeepsAttemptsInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := mustNew(t, Config{Delay: 10 * time.Millisecond, MaxAttempts: 3})
		s := newScript(t,
			attempt{latency: 50 * time.Millisecond},
			attempt{latency: 2 * time.Millisecond, err: StopHedging(errBoom)},
		)
		v, took, err := timed(t.Context(), h, s, nil)
		require.NoError(t, err)
		assert.Equal(t, 100, v, "the first attempt, kept running, wins")
		assert.Equal(t, 50*time.Millisecond, took)
		assert.Len(t, s.began, 2, "no hedge after the server said stop")
	})
}

func TestAllFailReturnsFirstError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := mustNew(t, Config{Delay: 10 * time.Millisecond, MaxAttempts: 3})
		e0, e1, e2 := errors.New("e0"), errors.New("e1"), errors.New("e2")
		s := newScript(t,
			attempt{latency: 50 * time.Millisecond, err: e0},
			attempt{latency: 5 * time.Millisecond, err: e1},
			attempt{latency: 5 * time.Millisecond, err: e2},
		)
		_, took, err := timed(t.Context(), h, s, nil)
		assert.Equal(t, e0, err)
		assert.Equal(t, 50*time.Millisecond, took)
		assert.Equal(t, []time.Duration{0, 10 * time.Millisecond, 15 * time.Millisecond}, s.began)
	})
}

type fakeBudget struct {
	allow    atomic.Bool
	asked    atomic.Int64
	requests atomic.Int64
}

func (b *fakeBudget) AllowRetry() bool { b.asked.Add(1); return b.allow.Load() }
func (b *fakeBudget) Request()         { b.requests.Add(1) }

func TestEmptyBudgetStartsNoHedgeKeepsInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := &fakeBudget{}
		h := mustNew(t, Config{Delay: 10 * time.Millisecond, MaxAttempts: 3, Budget: b})
		s := newScript(t, attempt{latency: 50 * time.Millisecond})
		v, took, err := timed(t.Context(), h, s, nil)
		require.NoError(t, err)
		assert.Equal(t, 100, v)
		assert.Equal(t, 50*time.Millisecond, took)
		assert.NoError(t, s.ctxErr[0], "the attempt in flight is not cancelled")
		assert.Equal(t, int64(1), b.asked.Load(), "asked once, then no more hedges")
		assert.Equal(t, int64(1), b.requests.Load(), "Request called once per call")
		m := h.Metrics()
		assert.Equal(t, uint64(1), m.BudgetRefusals)
		assert.Zero(t, m.Hedges)
	})
}

func TestBudgetSpentMidCallKeepsHedgeInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := &fakeBudget{}
		b.allow.Store(true)
		h := mustNew(t, Config{Delay: 10 * time.Millisecond, MaxAttempts: 3, Budget: b})
		s := newScript(t,
			attempt{latency: 100 * time.Millisecond},
			attempt{latency: 30 * time.Millisecond},
		)
		go func() { bubble.Sleep(15 * time.Millisecond); b.allow.Store(false) }()
		v, took, err := timed(t.Context(), h, s, nil)
		require.NoError(t, err)
		assert.Equal(t, 101, v, "the hedge in flight when the budget ran dry still wins")
		assert.Equal(t, 40*time.Millisecond, took)
		assert.Len(t, s.began, 2)
		assert.Equal(t, uint64(1), h.Metrics().BudgetRefusals)
	})
}

func TestClosedGateStartsNoHedge(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := mustNew(t, Config{Delay: 10 * time.Millisecond, Gate: func() bool { return false }})
		s := newScript(t, attempt{latency: 50 * time.Millisecond, err: errBoom})
		_, took, err := timed(t.Context(), h, s, nil)
		assert.Equal(t, errBoom, err)
		assert.Equal(t, 10*time.Millisecond, took-40*time.Millisecond)
		m := h.Metrics()
		assert.Equal(t, uint64(1), m.GateRefusals)
		assert.Zero(t, m.Hedges)
	})
}

func TestCallGateIsAskedPerHedge(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := mustNew(t, Config{Delay: 10 * time.Millisecond, MaxAttempts: 3})
		s := newScript(t,
			attempt{latency: 100 * time.Millisecond},
			attempt{latency: 100 * time.Millisecond},
		)
		open := true
		asked := 0
		gate := func() bool { asked++; o := open; open = false; return o } // open for the first hedge only
		v, err := GetGated(t.Context(), h, gate, s.op, nil)
		require.NoError(t, err)
		assert.Equal(t, 100, v, "the first attempt answers first")
		assert.Equal(t, 2, asked, "asked before each hedge")
		assert.Len(t, s.began, 2, "the second hedge did not start")
		m := h.Metrics()
		assert.Equal(t, uint64(1), m.Hedges)
		assert.Equal(t, uint64(1), m.GateRefusals)
	})
}

func TestGateClosedAfterNonFatalErrorEndsCall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := mustNew(t, Config{Delay: time.Second, Gate: func() bool { return false }})
		s := newScript(t, attempt{latency: 5 * time.Millisecond, err: errBoom})
		_, took, err := timed(t.Context(), h, s, nil)
		assert.Equal(t, errBoom, err)
		assert.Equal(t, 5*time.Millisecond, took, "no wait for a hedge that cannot start")
	})
}

// A gate refusal racing the first attempt's non-fatal error: the error
// comes while the timer's fire is asking the gate. The fire decides (here:
// no hedge), the gate is asked once, and the call ends with the error.
func TestGateAskedOnceWhenErrorComesDuringIt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		asking := make(chan struct{})
		var asked atomic.Int32
		h := mustNew(t, Config{Delay: 10 * time.Millisecond, MaxAttempts: 3, Gate: func() bool {
			if asked.Add(1) == 1 {
				close(asking)
			}
			bubble.Sleep(time.Millisecond) // the first attempt fails meanwhile
			return false
		}})
		v, err := Get(t.Context(), h, func(ctx context.Context) (int, error) {
			<-asking
			return 0, errBoom
		}, nil)
		assert.Equal(t, errBoom, err)
		assert.Zero(t, v)
		synctest.Wait()
		assert.Equal(t, int32(1), asked.Load(), "a refusal starts no more hedges, nor asks again")
		m := h.Metrics()
		assert.Equal(t, uint64(1), m.GateRefusals)
		assert.Zero(t, m.Hedges)
	})
}

// The same race with a gate that lets the hedge start: the fire asking it
// starts the hedge, and no second fire starts another at once.
func TestHedgeStartsOnceWhenErrorComesDuringGate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		asking := make(chan struct{})
		var asked atomic.Int32
		h := mustNew(t, Config{Delay: 10 * time.Millisecond, MaxAttempts: 3, Gate: func() bool {
			if asked.Add(1) == 1 {
				close(asking)
			}
			bubble.Sleep(time.Millisecond)
			return true
		}})
		s := newScript(t, attempt{err: errBoom}, attempt{latency: 5 * time.Millisecond}, attempt{})
		var n atomic.Int32
		v, err := Get(t.Context(), h, func(ctx context.Context) (int, error) {
			if n.Add(1) == 1 {
				<-asking
			}
			return s.op(ctx)
		}, nil)
		require.NoError(t, err)
		assert.Equal(t, 101, v)
		// The first attempt reaches the script at 10ms, once the gate is asked.
		assert.Equal(t, []time.Duration{10 * time.Millisecond, 11 * time.Millisecond}, s.began, "one hedge, when the gate answered")
		assert.Equal(t, uint64(1), h.Metrics().Hedges)
	})
}

func TestContextCancelEndsAllAttempts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := mustNew(t, Config{Delay: 10 * time.Millisecond, MaxAttempts: 3})
		s := newScript(t,
			attempt{latency: time.Second},
			attempt{latency: time.Second},
			attempt{latency: time.Second},
		)
		ctx, cancel := context.WithCancel(t.Context())
		go func() { bubble.Sleep(25 * time.Millisecond); cancel() }()
		_, took, err := timed(ctx, h, s, nil)
		assert.ErrorIs(t, err, context.Canceled)
		assert.Equal(t, 25*time.Millisecond, took)
		synctest.Wait()
		require.Len(t, s.ctxErr, 3)
		for i, e := range s.ctxErr {
			assert.ErrorIs(t, e, context.Canceled, "attempt %d", i)
		}
	})
}

func TestContextCancelReturnsWithoutWaitingForHedges(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := mustNew(t, Config{Delay: 10 * time.Millisecond, MaxAttempts: 2})
		// The first attempt fails at once; the hedge ignores its context.
		s := newScript(t,
			attempt{latency: 0, err: errBoom},
			attempt{latency: time.Second, ignoreCtx: true},
		)
		ctx, cancel := context.WithCancel(t.Context())
		go func() { bubble.Sleep(20 * time.Millisecond); cancel() }()
		_, took, err := timed(ctx, h, s, s.release)
		assert.ErrorIs(t, err, context.Canceled)
		assert.Equal(t, 20*time.Millisecond, took)
		bubble.Sleep(time.Second)
		synctest.Wait()
		assert.Equal(t, []int{101}, s.released, "a value that came too late is released")
	})
}

func TestPercentileDelayFollowsLatencies(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := mustNew(t, Config{}) // p95, no hedge until warm
		_, ok := h.Delay()
		assert.False(t, ok, "no hedge before any latency is known")
		op := func(ctx context.Context) (int, error) { bubble.Sleep(10 * time.Millisecond); return 1, nil }
		for range minSamples {
			_, err := Get(t.Context(), h, op, nil)
			require.NoError(t, err)
		}
		d, ok := h.Delay()
		require.True(t, ok)
		assert.GreaterOrEqual(t, d, 10*time.Millisecond, "never below the latency it stands for")
		assert.LessOrEqual(t, d, 10*time.Millisecond*107/100, "within a bucket")
		assert.Zero(t, h.Metrics().Hedges)

		slow := func(ctx context.Context) (int, error) { bubble.Sleep(40 * time.Millisecond); return 1, nil }
		for range 3 * decayEvery {
			_, err := Get(t.Context(), h, slow, nil)
			require.NoError(t, err)
		}
		d, _ = h.Delay()
		assert.GreaterOrEqual(t, d, 40*time.Millisecond, "the delay follows a slower dependency")
	})
}

func TestHedgePanicReachesCaller(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := mustNew(t, Config{Delay: 10 * time.Millisecond})
		var n atomic.Int32
		assert.PanicsWithValue(t, "kaboom", func() {
			_ = h.Do(t.Context(), func(ctx context.Context) error {
				if n.Add(1) == 2 {
					panic("kaboom")
				}
				<-ctx.Done()
				return ctx.Err()
			})
		})
	})
}

func TestFirstAttemptPanicCancelsHedges(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := mustNew(t, Config{Delay: 10 * time.Millisecond})
		var n atomic.Int32
		hedgeErr := make(chan error, 1)
		assert.PanicsWithValue(t, "kaboom", func() {
			_ = h.Do(t.Context(), func(ctx context.Context) error {
				if n.Add(1) == 2 {
					<-ctx.Done()
					hedgeErr <- ctx.Err()
					return ctx.Err()
				}
				bubble.Sleep(20 * time.Millisecond)
				panic("kaboom")
			})
		})
		assert.ErrorIs(t, <-hedgeErr, context.Canceled)
	})
}

func TestDoIsAPolicy(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := mustNew(t, Config{Delay: 10 * time.Millisecond})
		var p seawall.ChainPolicy = h
		var n atomic.Int32
		v, err := seawall.Get(t.Context(), p, func(ctx context.Context) (string, error) {
			if n.Add(1) == 1 {
				<-ctx.Done()
				return "", ctx.Err()
			}
			return "hedge", nil
		})
		require.NoError(t, err)
		assert.Equal(t, "hedge", v)
		err = seawall.Pipeline(h).Do(t.Context(), func(context.Context) error { return errBoom })
		assert.Equal(t, errBoom, err, "the first attempt's error, all having failed")
	})
}

func TestMaxAttemptsOneRunsOpOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := mustNew(t, Config{Delay: time.Millisecond, MaxAttempts: 1})
		s := newScript(t, attempt{latency: time.Second, err: errBoom})
		_, _, err := timed(t.Context(), h, s, nil)
		assert.Equal(t, errBoom, err)
		assert.Len(t, s.began, 1)
	})
}

// percentile returns the p-quantile of sorted latencies as the repository's
// histograms read it: the value with p·n samples strictly below it.
func percentile(sorted []time.Duration, p float64) time.Duration {
	return sorted[min(int(p*float64(len(sorted))), len(sorted)-1)]
}

// tail runs calls calls, sequentially, against a service of long-tailed
// latency, through a Hedge of cfg: every attempt takes 8–12ms, except the
// first attempts of exactly 1% of the calls, chosen by a seeded rand, and
// 1% of the hedges, drawn by it, which are 100× slower. It returns the
// calls' latencies, sorted, the hedges started, and the slow attempts.
func tail(t *testing.T, cfg Config, calls int) ([]time.Duration, uint64, int) {
	h := mustNew(t, cfg)
	var mu sync.Mutex
	rng := rand.New(rand.NewPCG(1, 2))
	slowCall := make([]bool, calls)
	for _, i := range rng.Perm(calls)[:calls/100] {
		slowCall[i] = true
	}
	slow, call, first := 0, 0, false
	op := func(ctx context.Context) (int, error) {
		mu.Lock()
		lat := 8*time.Millisecond + time.Duration(rng.Int64N(int64(4*time.Millisecond)))
		if first && slowCall[call] || !first && rng.Float64() < 0.01 {
			lat *= 100
			slow++
		}
		first = false
		mu.Unlock()
		if !sleep(ctx, lat) {
			return 0, ctx.Err()
		}
		return 1, nil
	}
	lats := make([]time.Duration, 0, calls)
	for i := range calls {
		mu.Lock()
		call, first = i, true
		mu.Unlock()
		start := time.Now()
		_, err := Get(t.Context(), h, op, nil)
		require.NoError(t, err)
		lats = append(lats, time.Since(start))
	}
	slices.Sort(lats)
	return lats, h.Metrics().Hedges, slow
}

// TestTailLatency is the claim hedging makes: with a p95 hedge, a service
// whose 1% of attempts are 100× slower has its p99 latency cut by 5× or
// more, for at most 10% more attempts.
func TestTailLatency(t *testing.T) {
	const calls = 10_000
	synctest.Test(t, func(t *testing.T) {
		base, _, slowBase := tail(t, Config{MaxAttempts: 1}, calls)
		hedged, hedges, slowHedged := tail(t, Config{Percentile: 0.95}, calls)
		p99b, p99h := percentile(base, 0.99), percentile(hedged, 0.99)
		p999b, p999h := percentile(base, 0.999), percentile(hedged, 0.999)
		extra := float64(hedges) / calls
		t.Logf("%d calls: unhedged p50 %v p99 %v p99.9 %v (%d slow attempts)", calls,
			percentile(base, 0.5), p99b, p999b, slowBase)
		t.Logf("p95 hedge: p50 %v p99 %v p99.9 %v (%d slow attempts); p99 cut %.1f×, p99.9 cut %.1f×; %d hedges, %.2f%% extra attempts",
			percentile(hedged, 0.5), p99h, p999h, slowHedged,
			float64(p99b)/float64(p99h), float64(p999b)/float64(p999h), hedges, 100*extra)
		assert.GreaterOrEqual(t, float64(p99b)/float64(p99h), 5.0, "p99 cut")
		assert.LessOrEqual(t, extra, 0.10, "extra attempts")
	})
}
