package throttle

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/seawall-go/seawall"
	"github.com/seawall-go/seawall/internal/bubble"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// refusal is a backend's refusal as the transports surface it.
var refusal = seawall.WithRetryAfter(seawall.NewRejection("backend: overloaded"), time.Second)

func mustNew(t *testing.T, cfg Config) *Throttle {
	t.Helper()
	th, err := New(cfg)
	require.NoError(t, err)
	return th
}

// never is a Rand that never rejects; always one that rejects whenever the
// probability is above 0.
func never() float64  { return 1 }
func always() float64 { return 0 }

// feed records accepts and refusals now, admitted whatever the
// probability.
func feed(t *testing.T, th *Throttle, accepts, refusals int) {
	t.Helper()
	for range accepts {
		Permit{th}.Done(nil)
	}
	for range refusals {
		Permit{th}.Done(refusal)
	}
}

// TestProbability: the SRE formula at fixed counts, exactly, with K and
// the cap; Allow rejects exactly when Rand returns less than it.
func TestProbability(t *testing.T) {
	for _, tc := range []struct {
		name              string
		cfg               Config
		accepts, refusals int
		want              float64
	}{
		{"nothing yet", Config{}, 0, 0, 0},
		{"all accepted", Config{}, 100, 0, 0},
		{"half refused: 2 per accept is K", Config{}, 50, 50, 0},
		{"one refusal alone", Config{}, 0, 1, 1.0 / 2},
		{"K=2: 30 requests, 10 accepts", Config{}, 10, 20, (30.0 - 2*10) / 31},
		{"K=1.5: 30 requests, 10 accepts", Config{K: 1.5}, 10, 20, (30.0 - 1.5*10) / 31},
		{"K=1: any refusal counts", Config{K: 1}, 99, 1, 1.0 / 101},
		{"capped at 0.9 by default", Config{}, 0, 99, 0.9},
		{"cap 1: uncapped", Config{MaxProbability: 1}, 0, 99, 99.0 / 100},
		{"cap 0.25", Config{MaxProbability: 0.25}, 1, 9, 0.25},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				th := mustNew(t, tc.cfg)
				feed(t, th, tc.accepts, tc.refusals)
				assert.Equal(t, tc.want, th.Probability())
				m := th.Metrics()
				assert.Equal(t, Metrics{Probability: tc.want, Requests: uint64(tc.accepts + tc.refusals),
					Accepts: uint64(tc.accepts), Refused: uint64(tc.refusals)}, m)

				// Allow rejects when Rand draws below the probability, and
				// admits at or above it; at 0 it rejects nothing.
				for _, draw := range []float64{tc.want - 1e-9, tc.want} {
					th := mustNew(t, Config{K: tc.cfg.K, MaxProbability: tc.cfg.MaxProbability,
						Rand: func() float64 { return draw }})
					feed(t, th, tc.accepts, tc.refusals)
					_, err := th.Allow()
					if draw < tc.want && tc.want > 0 {
						assert.ErrorIs(t, err, ErrThrottled, "draw %v", draw)
					} else {
						assert.NoError(t, err, "draw %v", draw)
					}
				}
			})
		})
	}
}

// TestRandOnlyWhenNeeded: no draw is made while the probability is 0.
func TestRandOnlyWhenNeeded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		draws := 0
		th := mustNew(t, Config{Rand: func() float64 { draws++; return 0.5 }})
		for range 10 {
			require.NoError(t, th.Do(t.Context(), func(context.Context) error { return nil }))
		}
		assert.Zero(t, draws)
		feed(t, th, 0, 30) // 40 requests, 10 accepts: p = 20/41
		_, _ = th.Allow()
		assert.Equal(t, 1, draws)
	})
}

// TestSelfRejectionsAreRequests: a request the throttle rejects counts as
// a request at once, raising the probability, and is not an accept.
func TestSelfRejectionsAreRequests(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		th := mustNew(t, Config{Rand: always, MaxProbability: 1})
		feed(t, th, 0, 1) // p = 1/2
		for i := range 5 {
			_, err := th.Allow()
			require.ErrorIs(t, err, ErrThrottled)
			req := float64(2 + i) // the refusal and the rejections so far
			assert.Equal(t, req/(req+1), th.Probability(), "after %d rejections", i+1)
		}
		assert.Equal(t, Metrics{Probability: 6.0 / 7, Requests: 6, Accepts: 0, Throttled: 5, Refused: 1}, th.Metrics())
	})
}

// TestDeterministicRejections: with an injected source, exactly the draws
// below the probability are rejected, in order.
func TestDeterministicRejections(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		draws := []float64{0.1, 0.6, 0.3, 0.95, 0.0}
		i := 0
		th := mustNew(t, Config{Rand: func() float64 { d := draws[i]; i++; return d }})
		feed(t, th, 10, 30) // 40 requests, 10 accepts: p = 20/41 ≈ 0.488
		var got []bool
		for range draws {
			_, err := th.Allow() // admitted requests are not recorded: p moves only with rejections
			got = append(got, err != nil)
		}
		// 0.1 < 20/41; 0.6 ≥ 21/42; 0.3 < 21/42; 0.95 ≥ 22/43; 0 < 22/43.
		assert.Equal(t, []bool{true, false, true, false, true}, got)
		assert.Equal(t, uint64(3), th.Metrics().Throttled)
	})
}

// TestWindowSlides: counts of buckets older than the window are forgotten,
// a bucket at a time; the window's younger buckets are kept. In virtual
// time, with the default window of 2 minutes in buckets of 1s.
func TestWindowSlides(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		th := mustNew(t, Config{Rand: always, NoLift: true}) // the formula alone: the accepts at 60s do not lift it
		feed(t, th, 0, 20)                                   // at 0s: 20 refusals
		bubble.Sleep(60 * time.Second)
		feed(t, th, 5, 0) // at 60s: 5 accepts
		m := th.Metrics()
		assert.Equal(t, uint64(25), m.Requests)
		assert.Equal(t, uint64(5), m.Accepts)
		assert.Equal(t, (25.0-10)/26, m.Probability)
		_, err := th.Allow() // the fast path, from the sums taken when 60s began
		assert.ErrorIs(t, err, ErrThrottled)

		bubble.Sleep(59*time.Second + 999*time.Millisecond) // 119.999s: the bucket of 0s is the oldest of the window
		assert.Equal(t, uint64(26), th.Metrics().Requests)

		bubble.Sleep(time.Millisecond) // 120s: it has left
		m = th.Metrics()
		assert.Equal(t, uint64(6), m.Requests, "the 0s bucket is forgotten, the 60s one kept")
		assert.Equal(t, uint64(5), m.Accepts)
		assert.Zero(t, m.Probability)
		_, err = th.Allow()
		assert.NoError(t, err, "Allow forgets the old bucket too")

		bubble.Sleep(60 * time.Second) // 180s: everything has left
		assert.Equal(t, Metrics{Throttled: 1, Refused: 20}, th.Metrics())
	})
}

// TestWindowWraps: over several windows, far more visits than the ring
// holds samples, the window's counts stay those of (now−Window, now]
// exactly when every event is followed by a visit (here Metrics), the
// samples then lying on the events.
func TestWindowWraps(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		th := mustNew(t, Config{Window: 10 * time.Second, Rand: never})
		const step = 100 * time.Millisecond // 100 steps a window
		var events []bool                   // true: an accept
		for i := range 450 {                // 35s of refusals, then 10s of accepts
			accept := i >= 350
			if accept {
				feed(t, th, 1, 0)
			} else {
				feed(t, th, 0, 1)
			}
			events = append(events, accept)
			m := th.Metrics()
			var req, acc uint64
			for _, e := range events[max(0, len(events)-100):] { // the step 10s ago has left
				req++
				if e {
					acc++
				}
			}
			require.Equal(t, [2]uint64{req, acc}, [2]uint64{m.Requests, m.Accepts}, "step %d", i)
			bubble.Sleep(step)
		}
		assert.Zero(t, th.Probability(), "the refusals have left")
	})
}

// TestLateOutcomeCounted: a request counts when its outcome is recorded,
// in the window of its arrival (Allow reads no clock, so a Permit does not
// know when it was admitted).
func TestLateOutcomeCounted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		th := mustNew(t, Config{})
		p, err := th.Allow()
		require.NoError(t, err)
		bubble.Sleep(2 * time.Minute)
		feed(t, th, 1, 0)
		p.Done(refusal)
		m := th.Metrics()
		assert.Equal(t, [2]uint64{2, 1}, [2]uint64{m.Requests, m.Accepts}, "requests, accepts")
		assert.Zero(t, m.Probability, "2 requests, 1 accept: K × accepts = requests")
	})
}

// TestDoneOutcomes: how each outcome counts.
func TestDoneOutcomes(t *testing.T) {
	errBoom := errors.New("boom")
	for _, tc := range []struct {
		name                         string
		cfg                          Config
		err                          error
		req, acc, refused, forgotten uint64
	}{
		{"success: accept", Config{}, nil, 1, 1, 0, 0},
		{"error: accept", Config{}, errBoom, 1, 1, 0, 0},
		{"timeout: accept", Config{}, context.DeadlineExceeded, 1, 1, 0, 0},
		{"overload: refusal", Config{}, refusal, 1, 0, 1, 0},
		{"wrapped overload: refusal", Config{}, fmt.Errorf("call: %w", refusal), 1, 0, 1, 0},
		{"rejection without a hint: forgotten", Config{}, seawall.NewRejection("bulkhead: full"), 0, 0, 0, 1},
		{"open breaker: forgotten", Config{}, seawall.WithRetryAfter(circuitOpen{}, time.Second), 0, 0, 0, 1},
		{"another throttle: forgotten", Config{}, ErrThrottled, 0, 0, 0, 1},
		{"cancelled: forgotten", Config{}, fmt.Errorf("get: %w", context.Canceled), 0, 0, 0, 1},
		{"custom Rejected", Config{Rejected: func(err error) bool { return errors.Is(err, errBoom) }}, errBoom, 1, 0, 1, 0},
		{"custom Rejected: overload no longer a refusal", Config{Rejected: func(error) bool { return false }}, refusal, 0, 0, 0, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			th := mustNew(t, tc.cfg)
			p, err := th.Allow()
			require.NoError(t, err)
			p.Done(tc.err)
			m := th.Metrics()
			assert.Equal(t, [4]uint64{tc.req, tc.acc, tc.refused, tc.forgotten},
				[4]uint64{m.Requests, m.Accepts, m.Refused, m.Forgotten}, "requests, accepts, refused, forgotten")
		})
	}
}

// circuitOpen is a local breaker's open rejection, as breaker.ErrOpen is.
type circuitOpen struct{}

func (circuitOpen) Error() string { return "breaker: open" }
func (circuitOpen) Is(target error) bool {
	return target == seawall.ErrRejected || target == seawall.ErrCircuitOpen
}

// TestErrThrottled: a local rejection is a seawall rejection without a
// hint, so no retry repeats it, and no other throttle counts it as a
// backend's refusal.
func TestErrThrottled(t *testing.T) {
	assert.ErrorIs(t, ErrThrottled, seawall.ErrRejected)
	_, hinted := seawall.RetryAfter(ErrThrottled)
	assert.False(t, hinted)
	assert.False(t, seawall.IsOverload(ErrThrottled))
}

// TestDo: Do runs op when admitted and returns its error unchanged; when
// rejected it does not run op.
func TestDo(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		th := mustNew(t, Config{Rand: always})
		errBoom := errors.New("boom")
		assert.Equal(t, errBoom, th.Do(t.Context(), func(context.Context) error { return errBoom }))
		assert.Equal(t, refusal, th.DoChain(t.Context(), seawall.Op(func(context.Context) error { return refusal })))
		// 2 requests, 1 accept: p = 0, op runs.
		ran := false
		assert.Equal(t, refusal, th.Do(t.Context(), func(context.Context) error { ran = true; return refusal }))
		require.True(t, ran)
		ran = false
		// 3 requests, 1 accept: p = 1/4, and Rand draws 0.
		err := th.Do(t.Context(), func(context.Context) error { ran = true; return nil })
		assert.ErrorIs(t, err, ErrThrottled)
		assert.False(t, ran, "a rejected op does not run")
	})
}

// TestDoPanic: a panicking op is not recorded, and the panic continues.
func TestDoPanic(t *testing.T) {
	th := mustNew(t, Config{})
	assert.PanicsWithValue(t, "boom", func() {
		_ = th.Do(t.Context(), func(context.Context) error { panic("boom") })
	})
	assert.Equal(t, Metrics{}, th.Metrics())
}

// TestZeroPermit: the zero Permit records nothing.
func TestZeroPermit(t *testing.T) {
	Permit{}.Done(nil)
	Permit{}.Done(refusal)
}

// TestConcurrent: concurrent callers lose no count, under -race; every
// request is an accept, a refusal or a local rejection.
func TestConcurrent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		th := mustNew(t, Config{})
		const goroutines, calls = 8, 2000
		var wg sync.WaitGroup
		for g := range goroutines {
			wg.Go(func() {
				for i := range calls {
					p, err := th.Allow()
					if err != nil {
						continue
					}
					if (g+i)%3 != 0 {
						p.Done(refusal)
					} else {
						p.Done(nil)
					}
					if i%500 == 0 {
						bubble.Sleep(300 * time.Millisecond) // buckets start while others record
					}
				}
			})
		}
		wg.Wait()
		m := th.Metrics()
		assert.Equal(t, uint64(goroutines*calls), m.Requests)
		assert.Equal(t, m.Requests, m.Accepts+m.Refused+m.Throttled)
		assert.Positive(t, m.Throttled)
	})
}

// TestNoAllocs: the primitive and Do allocate nothing, admitting or
// rejecting.
func TestNoAllocs(t *testing.T) {
	th := mustNew(t, Config{})
	op := func(context.Context) error { return nil }
	ctx := context.Background()
	assert.Zero(t, testing.AllocsPerRun(1000, func() {
		p, err := th.Allow()
		if err == nil {
			p.Done(nil)
		}
	}), "Allow, Done")
	assert.Zero(t, testing.AllocsPerRun(1000, func() { _ = th.Do(ctx, op) }), "Do")
	assert.Zero(t, testing.AllocsPerRun(1000, func() { _ = th.DoChain(ctx, seawall.Op(op)) }), "DoChain")

	th = mustNew(t, Config{Rand: always})
	feed(t, th, 0, 10)
	assert.Zero(t, testing.AllocsPerRun(1000, func() {
		p, err := th.Allow()
		if err == nil {
			p.Done(refusal)
		}
	}), "rejecting")
	assert.Positive(t, th.Metrics().Throttled)
}
