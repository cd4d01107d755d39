package adaptive

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

	"github.com/seawall-go/seawall"
	"github.com/seawall-go/seawall/internal/bubble"
)

var errBoom = errors.New("boom")

func mustNew(t testing.TB, cfg Config) *Limiter {
	t.Helper()
	l, err := New(cfg)
	require.NoError(t, err)
	return l
}

// TestPolicy: a Limiter is a seawall.Policy and a seawall.ChainPolicy.
func TestPolicy(t *testing.T) {
	var _ seawall.Policy = (*Limiter)(nil)
	var _ seawall.ChainPolicy = (*Limiter)(nil)
}

// TestRejection: a call over the limit is refused at once (no queue by
// default) with an error that matches ErrLimited and seawall.ErrRejected,
// carries a retry-after hint of at least 1ms (so seawall.IsOverload says
// shedding, not failure), and is not ErrCircuitOpen; Do does not run op.
func TestRejection(t *testing.T) {
	l := mustNew(t, Config{MinLimit: 1, MaxLimit: 1, InitialLimit: 1})
	p, err := l.Acquire(context.Background())
	require.NoError(t, err)

	_, err = l.Acquire(context.Background())
	require.Error(t, err)
	assert.ErrorIs(t, err, ErrLimited)
	assert.ErrorIs(t, err, seawall.ErrRejected)
	assert.NotErrorIs(t, err, seawall.ErrCircuitOpen)
	assert.True(t, seawall.IsOverload(err))
	d, ok := seawall.RetryAfter(err)
	assert.True(t, ok)
	assert.Equal(t, time.Millisecond, d)
	assert.Equal(t, "adaptive: limited", err.Error())

	ran := false
	err = l.Do(context.Background(), func(context.Context) error { ran = true; return nil })
	assert.ErrorIs(t, err, ErrLimited)
	assert.False(t, ran)
	_, ok = l.TryAcquire()
	assert.False(t, ok)
	assert.Equal(t, uint64(3), l.Metrics().Rejected)

	p.Done(nil)
	p2, ok := l.TryAcquire()
	assert.True(t, ok, "the slot came back")
	p2.Done(nil)
	assert.Equal(t, 0, l.Metrics().InFlight)
}

// TestHintIsSampledLatency: once a window has been sampled, the hint of a
// refusal is the window's latency, rounded to the millisecond.
func TestHintIsSampledLatency(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := mustNew(t, Config{MinLimit: 1, MaxLimit: 1, InitialLimit: 1, MinSamples: 1, ProbeSamples: 1})
		for range 40 {
			p, ok := l.TryAcquire()
			require.True(t, ok)
			bubble.Sleep(37 * time.Millisecond)
			p.Done(nil)
		}
		m := l.Metrics()
		require.False(t, m.Probing)
		require.InEpsilon(t, 37*time.Millisecond, m.Sampled, 0.04)
		p, _ := l.TryAcquire()
		_, err := l.Acquire(context.Background())
		d, ok := seawall.RetryAfter(err)
		require.True(t, ok)
		assert.Equal(t, m.Sampled.Round(time.Millisecond), d)
		p.Done(nil)
	})
}

// TestContextEnds: Acquire returns the context's error unchanged, for a
// context already done and for one that ends while the call waits in the
// queue, and leaves nothing held.
func TestContextEnds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := mustNew(t, Config{MinLimit: 1, MaxLimit: 1, InitialLimit: 1, MaxWaiting: 1, MaxWait: time.Hour})
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := l.Acquire(ctx)
		assert.True(t, err == context.Canceled, "%v", err) // unchanged, not wrapped

		p, err := l.Acquire(context.Background())
		require.NoError(t, err)
		ctx, cancel = context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err = l.Acquire(ctx)
		assert.True(t, err == context.DeadlineExceeded, "%v", err)
		assert.Equal(t, 50*time.Millisecond, time.Since(start))
		p.Done(nil)
		m := l.Metrics()
		assert.Equal(t, 0, m.InFlight)
		assert.Equal(t, 0, m.Waiting)
	})
}

// TestDefaultWait: by default a call over the limit waits at most half the
// time its context has left, then is refused with ErrLimited while its
// caller still waits; a call without a deadline, or with NoQueue, is
// refused at once; a slot freed in time goes to the waiting call.
func TestDefaultWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := mustNew(t, Config{MinLimit: 1, MaxLimit: 1, InitialLimit: 1})
		p, err := l.Acquire(context.Background())
		require.NoError(t, err)

		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err = l.Acquire(ctx)
		assert.ErrorIs(t, err, ErrLimited)
		assert.Equal(t, 50*time.Millisecond, time.Since(start), "half the 100ms left")
		assert.NoError(t, ctx.Err(), "refused while the caller still waits")

		start = time.Now()
		_, err = l.Acquire(context.Background())
		assert.ErrorIs(t, err, ErrLimited)
		assert.Zero(t, time.Since(start), "no deadline: no wait")

		ctx, cancel = context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		got := make(chan error, 1)
		go func() {
			q, err := l.Acquire(ctx)
			if err == nil {
				q.Done(nil)
			}
			got <- err
		}()
		bubble.Sleep(400 * time.Millisecond)
		p.Done(nil) // within the 500ms the waiting call may wait
		assert.NoError(t, <-got, "the freed slot goes to the waiting call")

		nq := mustNew(t, Config{MinLimit: 1, MaxLimit: 1, InitialLimit: 1, NoQueue: true})
		p, err = nq.Acquire(context.Background())
		require.NoError(t, err)
		start = time.Now()
		_, err = nq.Acquire(ctx)
		assert.ErrorIs(t, err, ErrLimited)
		assert.Zero(t, time.Since(start), "NoQueue: no wait")
		p.Done(nil)
	})
}

// TestQueue: with MaxWaiting, a call over the limit waits for a slot (FIFO,
// the bulkhead's), and is refused with ErrLimited after MaxWait.
func TestQueue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := mustNew(t, Config{MinLimit: 1, MaxLimit: 1, InitialLimit: 1, MaxWaiting: 1, MaxWait: 30 * time.Millisecond})
		p, err := l.Acquire(context.Background())
		require.NoError(t, err)
		got := make(chan error, 1)
		go func() {
			q, err := l.Acquire(context.Background())
			if err == nil {
				q.Done(nil)
			}
			got <- err
		}()
		synctest.Wait()
		assert.Equal(t, 1, l.Metrics().Waiting)
		_, err = l.Acquire(context.Background())
		assert.ErrorIs(t, err, ErrLimited, "the queue is full")
		bubble.Sleep(10 * time.Millisecond)
		p.Done(nil)
		assert.NoError(t, <-got, "the waiter got the slot")

		p, err = l.Acquire(context.Background())
		require.NoError(t, err)
		start := time.Now()
		_, err = l.Acquire(context.Background())
		assert.ErrorIs(t, err, ErrLimited)
		assert.True(t, seawall.IsOverload(err))
		assert.Equal(t, 30*time.Millisecond, time.Since(start))
		p.Done(nil)
	})
}

// TestOutcomes: which outcomes of Done feed the window's latency sample and
// which count as drops.
func TestOutcomes(t *testing.T) {
	for _, tt := range []struct {
		err             error
		sample, dropped bool
	}{
		{nil, true, false},
		{context.Canceled, false, false},
		{fmt.Errorf("wrapped: %w", context.Canceled), false, false},
		{context.DeadlineExceeded, true, true},
		{fmt.Errorf("wrapped: %w", context.DeadlineExceeded), true, true},
		{errBoom, false, true},
		{seawall.WithRetryAfter(seawall.NewRejection("downstream: full"), time.Second), false, true},
	} {
		t.Run(fmt.Sprint(tt.err), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				l := mustNew(t, Config{})
				p, ok := l.TryAcquire()
				require.True(t, ok)
				bubble.Sleep(5 * time.Millisecond)
				p.Done(tt.err)
				assert.Equal(t, tt.sample, l.hist.count() == 1, "latency sample")
				assert.Equal(t, tt.dropped, l.drops.Load() == 1, "drop")
				assert.Equal(t, 0, l.Metrics().InFlight)
			})
		})
	}
}

// TestZeroPermit: Done on the zero Permit does nothing.
func TestZeroPermit(t *testing.T) {
	var p Permit
	assert.NotPanics(t, func() { p.Done(nil) })
}

// TestDo: Do runs op under a permit and returns its error unchanged, and
// DoChain runs a pipeline's rest; both record the latency.
func TestDo(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := mustNew(t, Config{})
		err := l.Do(context.Background(), func(context.Context) error {
			assert.Equal(t, 1, l.Metrics().InFlight)
			bubble.Sleep(time.Millisecond)
			return errBoom
		})
		assert.Same(t, errBoom, err)
		err = seawall.Pipeline(l).Do(context.Background(), func(context.Context) error {
			assert.Equal(t, 1, l.Metrics().InFlight)
			bubble.Sleep(time.Millisecond)
			return nil
		})
		assert.NoError(t, err)
		assert.Equal(t, uint64(1), l.hist.count(), "the success is a sample")
		assert.Equal(t, uint64(1), l.drops.Load(), "the error is a drop")
		assert.Equal(t, uint64(2), l.Metrics().Admitted)
		assert.Equal(t, 0, l.Metrics().InFlight)
	})
}

// TestPanic: a panicking op gives its permit back, as a drop, before the
// panic continues, through Do and through DoChain.
func TestPanic(t *testing.T) {
	l := mustNew(t, Config{MinLimit: 1, MaxLimit: 1, InitialLimit: 1})
	assert.PanicsWithValue(t, "op", func() {
		_ = l.Do(context.Background(), func(context.Context) error { panic("op") })
	})
	assert.PanicsWithValue(t, "chain", func() {
		_ = seawall.Pipeline(l).Do(context.Background(), func(context.Context) error { panic("chain") })
	})
	assert.Equal(t, 0, l.Metrics().InFlight)
	assert.Equal(t, uint64(2), l.drops.Load())
	p, ok := l.TryAcquire()
	assert.True(t, ok)
	p.Done(nil)
}

// TestAllocs: admitting and recording allocate nothing: TryAcquire and
// Acquire with Done, Do, and a pipeline through DoChain, including the
// calls that end a window and move the limit (InitialLimit above the
// goroutines, MinSamples 1, so that every few calls update).
func TestAllocs(t *testing.T) {
	l := mustNew(t, Config{Window: time.Millisecond, MinSamples: 1, ProbeSamples: 1})
	ctx := context.Background()
	op := func(context.Context) error { return nil }
	pipe := seawall.Pipeline(l)
	for name, f := range map[string]func(){
		"TryAcquire": func() {
			p, _ := l.TryAcquire()
			p.Done(nil)
		},
		"Acquire": func() {
			p, _ := l.Acquire(ctx)
			p.Done(nil)
		},
		"Do":       func() { _ = l.Do(ctx, op) },
		"Pipeline": func() { _ = pipe.Do(ctx, op) },
		"Error": func() {
			p, _ := l.Acquire(ctx)
			p.Done(errBoom)
		},
	} {
		assert.Zero(t, testing.AllocsPerRun(1000, f), name)
	}
	synctest.Test(t, func(t *testing.T) {
		l := mustNew(t, Config{Window: time.Millisecond, MinSamples: 1, ProbeSamples: 1})
		sleep := testing.AllocsPerRun(100, func() { bubble.Sleep(time.Millisecond) })
		allocs := testing.AllocsPerRun(100, func() {
			p, _ := l.TryAcquire()
			bubble.Sleep(time.Millisecond)
			p.Done(nil)
		})
		m := l.Metrics()
		require.Greater(t, m.Windows, uint64(20), "windows ended")
		require.Positive(t, m.Sampled)
		// Each window allocates the refusals' hinted error once: at most
		// one allocation a window, never one a call.
		assert.LessOrEqual(t, allocs-sleep, 1.0, "with a window ending at every call")
	})
}

// TestConcurrent: many goroutines admit and record at once (run it with
// -race); every permit comes back.
func TestConcurrent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := mustNew(t, Config{MinLimit: 2, MaxLimit: 16, InitialLimit: 8, MinSamples: 5, MaxWaiting: 64})
		var wg sync.WaitGroup
		for i := range 64 {
			wg.Go(func() {
				for j := range 200 {
					_ = l.Do(context.Background(), func(context.Context) error {
						bubble.Sleep(time.Duration(1+(i+j)%7) * time.Millisecond)
						return nil
					})
					assert.LessOrEqual(t, l.Limit(), 16)
				}
			})
		}
		wg.Wait()
		m := l.Metrics()
		assert.Equal(t, 0, m.InFlight)
		assert.Equal(t, uint64(64*200), m.Admitted+m.Rejected)
		assert.Positive(t, m.Probes)
	})
}

// TestAIMD: the AIMD limit adds 1 a window while latency is under
// LatencyThreshold × the baseline and there are no drops, and backs off by
// Backoff on a drop (an error or a timeout) or on a latency over it.
func TestAIMD(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := mustNew(t, Config{Algorithm: AIMD, InitialLimit: 10, MinSamples: 10, ProbeSamples: 10, Window: 10 * time.Millisecond})
		// window runs calls of latency d with the limit saturated, until the
		// limit has moved once after the first probe.
		window := func(d time.Duration, err error) float64 {
			t.Helper()
			before := l.Metrics()
			for l.Metrics().Estimate == before.Estimate || l.Metrics().Probing {
				var ps []Permit
				for {
					p, ok := l.TryAcquire()
					if !ok {
						break
					}
					ps = append(ps, p)
				}
				bubble.Sleep(d)
				for _, p := range ps {
					p.Done(err)
				}
			}
			return l.Metrics().Estimate
		}
		assert.Equal(t, 11.0, window(5*time.Millisecond, nil), "increase")
		assert.Equal(t, 12.0, window(5*time.Millisecond, nil), "increase")
		assert.InDelta(t, 12*0.9, window(5*time.Millisecond, errBoom), 1e-9, "backoff on errors")
		assert.InDelta(t, 12*0.9*0.9, window(5*time.Millisecond, context.DeadlineExceeded), 1e-9, "backoff on timeouts")
		assert.InDelta(t, 12*0.9*0.9*0.9, window(11*time.Millisecond, nil), 1e-9, "backoff on latency over 2× the baseline")
	})
}
