package bulkhead

import (
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"runtime"
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

func mustNew(t testing.TB, cfg Config) *Bulkhead {
	t.Helper()
	b, err := New(cfg)
	require.NoError(t, err)
	return b
}

// fill takes n slots with TryAcquire.
func fill(t *testing.T, b *Bulkhead, n int) {
	t.Helper()
	for i := range n {
		require.True(t, b.TryAcquire(), "slot %d of %d", i+1, n)
	}
}

// queue records the order in which waiters got their slot, and lets the
// test release each waiter's slot when it chooses.
type queue struct {
	mu    sync.Mutex
	order []int
	errs  map[int]error
	done  []chan struct{}
}

func newQueue() *queue { return &queue{errs: map[int]error{}} }

// start starts waiter i, which acquires a slot of b with ctx, records i,
// and holds the slot until q.finish(i); it returns once the waiter is
// blocked, in the queue or holding its slot, so waiters queue in the order
// they are started.
func (q *queue) start(b *Bulkhead, ctx context.Context, i int) {
	done := make(chan struct{})
	q.mu.Lock()
	for len(q.done) <= i {
		q.done = append(q.done, nil)
	}
	q.done[i] = done
	q.mu.Unlock()
	go func() {
		err := b.Acquire(ctx)
		q.mu.Lock()
		if err != nil {
			q.errs[i] = err
			q.mu.Unlock()
			return
		}
		q.order = append(q.order, i)
		q.mu.Unlock()
		<-done
		b.Release()
	}()
	synctest.Wait()
}

// finish makes waiter i release its slot, and waits for the effects.
func (q *queue) finish(i int) {
	close(q.done[i])
	synctest.Wait()
}

func (q *queue) admitted() []int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return append([]int{}, q.order...)
}

func (q *queue) err(i int) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.errs[i]
}

func TestErrFullIsARejection(t *testing.T) {
	assert.ErrorIs(t, ErrFull, seawall.ErrRejected)
	assert.Equal(t, "bulkhead: full", ErrFull.Error())
	assert.NotErrorIs(t, seawall.ErrRejected, ErrFull)
}

func TestTryAcquireRelease(t *testing.T) {
	b := mustNew(t, Config{MaxConcurrent: 2})
	assert.Equal(t, 2, b.Limit())
	fill(t, b, 2)
	assert.False(t, b.TryAcquire(), "a third call at a limit of 2")
	assert.Equal(t, Metrics{Limit: 2, InFlight: 2, Admitted: 2, Rejected: 1}, b.Metrics())

	b.Release()
	assert.True(t, b.TryAcquire(), "a released slot is free again")
	b.Release()
	b.Release()
	assert.Equal(t, Metrics{Limit: 2, InFlight: 0, Admitted: 3, Rejected: 1}, b.Metrics())
}

func TestZeroConfigAdmits25(t *testing.T) {
	b := mustNew(t, Config{})
	fill(t, b, 25)
	assert.False(t, b.TryAcquire())
	err := b.Acquire(context.Background())
	assert.ErrorIs(t, err, ErrFull, "no queue by default: rejected at once")
	assert.ErrorIs(t, err, seawall.ErrRejected)
}

func TestReleaseWithoutAcquirePanics(t *testing.T) {
	b := mustNew(t, Config{MaxConcurrent: 1})
	assert.PanicsWithValue(t, "bulkhead: Release without a matching acquire", b.Release)
	assert.Equal(t, Metrics{Limit: 1}, b.Metrics(), "the misuse leaves the bulkhead as it was")
	require.True(t, b.TryAcquire(), "the slot is still usable")
	b.Release()
	assert.Panics(t, b.Release, "one release too many")
	require.True(t, b.TryAcquire())
	assert.False(t, b.TryAcquire(), "the limit is still 1")
	b.Release()
}

func TestReleaseWithoutAcquirePanicsWithWaiters(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := mustNew(t, Config{MaxConcurrent: 1, MaxWaiting: 1})
		fill(t, b, 1)
		q := newQueue()
		q.start(b, t.Context(), 0)
		b.Release() // hands the slot to waiter 0
		synctest.Wait()
		require.Equal(t, []int{0}, q.admitted())
		q.finish(0)
		assert.Panics(t, b.Release)
		assert.Equal(t, 0, b.Metrics().InFlight)
		assert.Equal(t, 0, b.Metrics().Waiting)
	})
}

// TestFIFO: waiters get slots in the order they queued, one per release,
// and no newcomer overtakes them.
func TestFIFO(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := mustNew(t, Config{MaxConcurrent: 1, MaxWaiting: 10})
		fill(t, b, 1)
		q := newQueue()
		const n = 8
		for i := range n {
			q.start(b, t.Context(), i)
			bubble.Sleep(time.Millisecond)
		}
		require.Empty(t, q.admitted())
		require.Equal(t, n, b.Metrics().Waiting)

		b.Release()
		synctest.Wait()
		for i := range n {
			require.Equal(t, seq(i+1), q.admitted(), "after %d releases", i+1)
			assert.False(t, b.TryAcquire(), "TryAcquire must not take a slot ahead of the queue")
			assert.Equal(t, n-1-i, b.Metrics().Waiting)
			assert.Equal(t, 1, b.Metrics().InFlight)
			q.finish(i)
		}
		m := b.Metrics()
		assert.Equal(t, 0, m.InFlight)
		assert.Equal(t, 0, m.Waiting)
		assert.Equal(t, uint64(1+n), m.Admitted)
	})
}

// seq returns 0, 1, …, n-1.
func seq(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}

func TestQueueFullRejectsAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := mustNew(t, Config{MaxConcurrent: 1, MaxWaiting: 2})
		fill(t, b, 1)
		q := newQueue()
		q.start(b, t.Context(), 0)
		q.start(b, t.Context(), 1)
		require.Equal(t, 2, b.Metrics().Waiting)

		start := time.Now()
		ran := false
		err := b.Do(t.Context(), func(context.Context) error { ran = true; return nil })
		assert.ErrorIs(t, err, ErrFull)
		assert.ErrorIs(t, err, seawall.ErrRejected)
		assert.False(t, ran, "a rejected call does not run")
		assert.Zero(t, time.Since(start), "rejected without waiting")
		assert.Equal(t, uint64(1), b.Metrics().Rejected)

		b.Release()
		q.finish(0)
		q.finish(1)
		assert.Equal(t, []int{0, 1}, q.admitted())
		assert.Equal(t, 0, b.Metrics().InFlight)
	})
}

func TestNoQueueRejectsAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := mustNew(t, Config{MaxConcurrent: 2, MaxWait: time.Hour})
		fill(t, b, 2)
		start := time.Now()
		err := b.Acquire(t.Context())
		assert.ErrorIs(t, err, ErrFull)
		assert.Zero(t, time.Since(start))
		assert.Equal(t, Metrics{Limit: 2, InFlight: 2, Admitted: 2, Rejected: 1}, b.Metrics())
		b.Release()
		b.Release()
	})
}

func TestMaxWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const maxWait = 150 * time.Millisecond
		b := mustNew(t, Config{MaxConcurrent: 1, MaxWaiting: 5, MaxWait: maxWait})
		fill(t, b, 1)
		start := time.Now()
		err := b.Acquire(context.Background())
		assert.ErrorIs(t, err, ErrFull)
		assert.Equal(t, maxWait, time.Since(start), "rejected after exactly MaxWait")
		m := b.Metrics()
		assert.Equal(t, 0, m.Waiting, "the waiter left the queue")
		assert.Equal(t, uint64(1), m.Rejected)
		assert.Zero(t, m.WaitTime, "only admitted waiters count")

		b.Release()
		assert.Equal(t, 0, b.Metrics().InFlight, "the slot went to no one")
		fill(t, b, 1)
		b.Release()
	})
}

func TestMaxWaitAdmittedInTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := mustNew(t, Config{MaxConcurrent: 1, MaxWaiting: 5, MaxWait: time.Second})
		fill(t, b, 1)
		go func() {
			bubble.Sleep(time.Second - time.Nanosecond)
			b.Release()
		}()
		start := time.Now()
		require.NoError(t, b.Acquire(context.Background()))
		assert.Equal(t, time.Second-time.Nanosecond, time.Since(start))
		m := b.Metrics()
		assert.Equal(t, time.Second-time.Nanosecond, m.WaitTime)
		assert.Equal(t, Metrics{Limit: 1, InFlight: 1, Admitted: 2, WaitTime: time.Second - time.Nanosecond}, m)
		b.Release()
	})
}

// TestMaxWaitRacesRelease: when MaxWait passes at the instant the slot is
// released, the waiter either gets the slot (and holds it) or is rejected
// (and the slot is free); never both, never neither.
func TestMaxWaitRacesRelease(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := mustNew(t, Config{MaxConcurrent: 1, MaxWaiting: 1, MaxWait: time.Second})
		var got [2]int
		for range 200 {
			fill(t, b, 1)
			go func() {
				bubble.Sleep(time.Second)
				b.Release()
			}()
			err := b.Acquire(context.Background())
			synctest.Wait() // the releaser is done
			m := b.Metrics()
			require.Equal(t, 0, m.Waiting)
			if err == nil {
				got[0]++
				require.Equal(t, 1, m.InFlight, "admitted: the waiter holds the slot")
				b.Release()
			} else {
				got[1]++
				require.ErrorIs(t, err, ErrFull)
				require.Equal(t, 0, m.InFlight, "rejected: the slot is free")
			}
		}
		t.Logf("admitted %d, rejected %d", got[0], got[1])
	})
}

func TestWaitTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := mustNew(t, Config{MaxConcurrent: 1, MaxWaiting: 5})
		fill(t, b, 1)
		q := newQueue()
		q.start(b, t.Context(), 0)
		bubble.Sleep(2 * time.Second)
		q.start(b, t.Context(), 1)
		bubble.Sleep(3 * time.Second)
		b.Release()
		synctest.Wait()
		q.finish(0)
		// Waiter 0 waited 5s; waiter 1, 3s.
		assert.Equal(t, 8*time.Second, b.Metrics().WaitTime)
		q.finish(1)
	})
}

// TestCancelWhileWaiting: a waiter whose context ends returns ctx.Err() at
// once, unchanged, and leaves the queue; the next release does not hand the
// slot to it.
func TestCancelWhileWaiting(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := mustNew(t, Config{MaxConcurrent: 1, MaxWaiting: 5})
		fill(t, b, 1)
		q := newQueue()
		ctx, cancel := context.WithCancel(t.Context())
		q.start(b, t.Context(), 0)
		q.start(b, ctx, 1)
		q.start(b, t.Context(), 2)
		require.Equal(t, 3, b.Metrics().Waiting)

		cancel()
		synctest.Wait() // no fake time passes: the waiter returns at once
		assert.Equal(t, context.Canceled, q.err(1), "ctx.Err(), unchanged")
		assert.Equal(t, 2, b.Metrics().Waiting)

		b.Release()
		synctest.Wait()
		q.finish(0)
		q.finish(2)
		assert.Equal(t, []int{0, 2}, q.admitted(), "the slots skip the gone waiter")
		m := b.Metrics()
		assert.Equal(t, 0, m.InFlight, "no slot leaked to the gone waiter")
		assert.Equal(t, 0, m.Waiting)
		assert.Equal(t, uint64(3), m.Admitted)
		assert.Zero(t, m.Rejected, "a cancelled wait is not a rejection")
	})
}

func TestCancelOnlyWaiter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := mustNew(t, Config{MaxConcurrent: 1, MaxWaiting: 5})
		fill(t, b, 1)
		ctx, cancel := context.WithTimeout(context.Background(), 250*time.Millisecond)
		defer cancel()
		start := time.Now()
		err := b.Acquire(ctx)
		assert.Equal(t, context.DeadlineExceeded, err)
		assert.Equal(t, 250*time.Millisecond, time.Since(start), "returned when the deadline passed")
		assert.Equal(t, 0, b.Metrics().Waiting)

		b.Release()
		assert.Equal(t, 0, b.Metrics().InFlight, "the slot went to no one")
		assert.True(t, b.TryAcquire(), "and is free: TryAcquire is not blocked by a gone waiter")
		b.Release()
	})
}

func TestAcquireWithEndedContext(t *testing.T) {
	b := mustNew(t, Config{MaxConcurrent: 1, MaxWaiting: 1})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	assert.Equal(t, context.Canceled, b.Acquire(ctx), "even with a free slot")
	ran := false
	assert.Equal(t, context.Canceled, b.Do(ctx, func(context.Context) error { ran = true; return nil }))
	assert.False(t, ran)
	assert.Equal(t, Metrics{Limit: 1}, b.Metrics())
}

// TestCancelRacesHandOff hammers the race between a waiter's context ending
// and a slot being handed to it, at the same fake instant: a slot must never
// be lost nor counted twice.
func TestCancelRacesHandOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const limit, goroutines, rounds = 3, 40, 30
		b := mustNew(t, Config{MaxConcurrent: limit, MaxWaiting: goroutines})
		var acquired, released, cancelled, inOp, maxInOp atomic.Int64
		var wg sync.WaitGroup
		for g := range goroutines {
			wg.Go(func() {
				r := rand.New(rand.NewPCG(uint64(g), 1))
				for range rounds {
					ctx, cancel := context.WithCancel(context.Background())
					// The context ends at the same fake instant as some
					// releases: every hold and cancel is a whole millisecond.
					// (A goroutine, not time.AfterFunc: under -race, many
					// AfterFunc timers firing in a bubble crash the race
					// runtime of go1.26.8 on this machine.)
					d := time.Duration(r.IntN(3)) * time.Millisecond
					canceller := make(chan struct{})
					go func() {
						defer close(canceller)
						bubble.Sleep(d)
						cancel()
					}()
					err := b.Acquire(ctx)
					if err != nil {
						require.Equal(t, context.Canceled, err)
						cancelled.Add(1)
					} else {
						acquired.Add(1)
						maxInOp.Store(max(maxInOp.Load(), inOp.Add(1)))
						bubble.Sleep(time.Duration(r.IntN(2)) * time.Millisecond)
						inOp.Add(-1)
						released.Add(1)
						b.Release()
					}
					<-canceller
				}
			})
		}
		wg.Wait()
		m := b.Metrics()
		assert.Equal(t, acquired.Load(), released.Load())
		assert.Equal(t, int64(goroutines*rounds), acquired.Load()+cancelled.Load())
		assert.Positive(t, cancelled.Load(), "precondition: some waits were cancelled")
		assert.Equal(t, 0, m.InFlight, "no slot lost or counted twice")
		assert.Equal(t, 0, m.Waiting)
		assert.Equal(t, uint64(acquired.Load()), m.Admitted)
		assert.LessOrEqual(t, maxInOp.Load(), int64(limit))
		fill(t, b, limit) // every slot is free again
		assert.False(t, b.TryAcquire())
		for range limit {
			b.Release()
		}
	})
}

// TestMaxInFlight: however many goroutines call Do at once, no more than
// the limit run their operation at the same time, and the bulkhead does
// fill up.
func TestMaxInFlight(t *testing.T) {
	t.Run("bubble", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			const limit = 4
			b := mustNew(t, Config{MaxConcurrent: limit, MaxWaiting: 1000})
			in, peak := runMany(t, b, 64, 20, func(r *rand.Rand) { bubble.Sleep(time.Duration(1+r.IntN(5)) * time.Millisecond) })
			assert.Zero(t, in)
			assert.Equal(t, int64(limit), peak, "the bulkhead fills up, and no further")
			assert.Equal(t, Metrics{Limit: limit, Admitted: 64 * 20, WaitTime: b.Metrics().WaitTime}, b.Metrics())
		})
	})
	t.Run("real goroutines", func(t *testing.T) {
		const limit = 3
		b := mustNew(t, Config{MaxConcurrent: limit, MaxWaiting: 1000})
		in, peak := runMany(t, b, 32, 500, func(*rand.Rand) {
			for range 100 {
				runtime.Gosched()
			}
		})
		assert.Zero(t, in)
		assert.LessOrEqual(t, peak, int64(limit))
		assert.Equal(t, 0, b.Metrics().InFlight)
	})
}

// runMany runs goroutines × calls Do calls whose op calls work, and returns
// the ops in progress at the end and the most ever in progress at once.
func runMany(t *testing.T, b *Bulkhead, goroutines, calls int, work func(*rand.Rand)) (in, peak int64) {
	var inOp, maxInOp atomic.Int64
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(g), 2))
			for range calls {
				err := b.Do(context.Background(), func(context.Context) error {
					n := inOp.Add(1)
					for {
						m := maxInOp.Load()
						if n <= m || maxInOp.CompareAndSwap(m, n) {
							break
						}
					}
					work(r)
					inOp.Add(-1)
					return nil
				})
				assert.NoError(t, err)
			}
		})
	}
	wg.Wait()
	return inOp.Load(), maxInOp.Load()
}

func TestSetLimitRaiseAdmitsWaitersInOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := mustNew(t, Config{MaxConcurrent: 1, MaxWaiting: 10})
		fill(t, b, 1)
		q := newQueue()
		for i := range 4 {
			q.start(b, t.Context(), i)
		}
		require.NoError(t, b.SetLimit(3))
		synctest.Wait()
		assert.Equal(t, 3, b.Limit())
		assert.ElementsMatch(t, []int{0, 1}, q.admitted(), "two new slots, to the two oldest waiters")
		assert.Equal(t, 3, b.Metrics().InFlight)
		assert.Equal(t, 2, b.Metrics().Waiting)

		require.NoError(t, b.SetLimit(10))
		synctest.Wait()
		assert.ElementsMatch(t, []int{0, 1, 2, 3}, q.admitted())
		assert.True(t, b.TryAcquire(), "no waiter left: a newcomer gets a slot")
		b.Release()
		b.Release()
		for i := range 4 {
			q.finish(i)
		}
		assert.Equal(t, 0, b.Metrics().InFlight)
	})
}

func TestSetLimitLowerRevokesNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := mustNew(t, Config{MaxConcurrent: 3, MaxWaiting: 10})
		fill(t, b, 3)
		q := newQueue()
		q.start(b, t.Context(), 0)
		require.NoError(t, b.SetLimit(1))
		assert.Equal(t, 1, b.Limit())
		assert.Equal(t, 3, b.Metrics().InFlight, "calls in flight go on")

		b.Release()
		synctest.Wait()
		assert.Empty(t, q.admitted(), "2 in flight at a limit of 1: the waiter waits")
		assert.False(t, b.TryAcquire())
		b.Release()
		synctest.Wait()
		assert.Empty(t, q.admitted(), "1 in flight at a limit of 1")
		b.Release()
		synctest.Wait()
		assert.Equal(t, []int{0}, q.admitted(), "below the new limit at last")
		q.finish(0)
		fill(t, b, 1)
		assert.False(t, b.TryAcquire())
		b.Release()
	})
}

func TestSetLimitRange(t *testing.T) {
	b := mustNew(t, Config{MaxConcurrent: 7})
	for _, n := range []int{0, -1, 1<<30 + 1} {
		err := b.SetLimit(n)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "bulkhead: limit")
		assert.Equal(t, 7, b.Limit(), "a bad limit changes nothing")
	}
	require.NoError(t, b.SetLimit(1))
	require.NoError(t, b.SetLimit(1<<30))
	assert.Equal(t, 1<<30, b.Limit())
}

// TestSetLimitConcurrent changes the limit while calls come and go, under
// the race detector; at the end, with a high limit, everyone is served and
// nothing is held.
func TestSetLimitConcurrent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := mustNew(t, Config{MaxConcurrent: 2, MaxWaiting: 100})
		var wg sync.WaitGroup
		var peak atomic.Int64
		for g := range 16 {
			wg.Go(func() {
				r := rand.New(rand.NewPCG(uint64(g), 3))
				for range 50 {
					err := b.Do(context.Background(), func(context.Context) error {
						peak.Store(max(peak.Load(), int64(b.Metrics().InFlight)))
						bubble.Sleep(time.Duration(r.IntN(3)) * time.Millisecond)
						return nil
					})
					assert.NoError(t, err)
				}
			})
		}
		stop := make(chan struct{})
		setters := sync.WaitGroup{}
		for g := range 2 {
			setters.Go(func() {
				r := rand.New(rand.NewPCG(uint64(g), 4))
				for {
					select {
					case <-stop:
						return
					default:
					}
					assert.NoError(t, b.SetLimit(1+r.IntN(6)))
					bubble.Sleep(time.Millisecond)
				}
			})
		}
		wg.Wait()
		close(stop)
		setters.Wait()
		require.NoError(t, b.SetLimit(6))
		m := b.Metrics()
		assert.Equal(t, 0, m.InFlight)
		assert.Equal(t, 0, m.Waiting)
		assert.Equal(t, uint64(16*50), m.Admitted)
		assert.LessOrEqual(t, peak.Load(), int64(6))
		fill(t, b, 6)
		for range 6 {
			b.Release()
		}
	})
}

func TestDo(t *testing.T) {
	b := mustNew(t, Config{MaxConcurrent: 1})
	type key struct{}
	ctx := context.WithValue(context.Background(), key{}, "v")
	err := b.Do(ctx, func(ctx context.Context) error {
		assert.Equal(t, "v", ctx.Value(key{}), "op gets the caller's context")
		assert.Equal(t, 1, b.Metrics().InFlight, "op runs in a slot")
		assert.False(t, b.TryAcquire())
		return errBoom
	})
	assert.Same(t, errBoom, err, "op's error, unchanged")
	assert.Equal(t, 0, b.Metrics().InFlight)
	var _ seawall.Policy = b
}

func TestDoPanicReleasesTheSlot(t *testing.T) {
	b := mustNew(t, Config{MaxConcurrent: 1})
	assert.PanicsWithValue(t, "op failed", func() {
		_ = b.Do(context.Background(), func(context.Context) error { panic("op failed") })
	})
	assert.Equal(t, 0, b.Metrics().InFlight, "the slot was released before the panic went on")
	assert.NoError(t, b.Do(context.Background(), func(context.Context) error { return nil }))
}

func TestDoPanicHandsTheSlotToAWaiter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := mustNew(t, Config{MaxConcurrent: 1, MaxWaiting: 1})
		proceed := make(chan struct{})
		go func() {
			defer func() { _ = recover() }()
			_ = b.Do(context.Background(), func(context.Context) error {
				<-proceed
				panic("op failed")
			})
		}()
		synctest.Wait()
		q := newQueue()
		q.start(b, context.Background(), 0)
		close(proceed)
		synctest.Wait()
		assert.Equal(t, []int{0}, q.admitted())
		q.finish(0)
		assert.Equal(t, 0, b.Metrics().InFlight)
	})
}

func TestMetricsJSON(t *testing.T) {
	b := mustNew(t, Config{})
	fill(t, b, 1)
	out, err := json.Marshal(b.Metrics())
	require.NoError(t, err)
	assert.JSONEq(t, `{"limit":25,"inFlight":1,"waiting":0,"admitted":1,"rejected":0,"waitTime":0}`, string(out))
	b.Release()
}
