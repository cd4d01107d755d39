package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"math"
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

// A Limiter can be used where code expects the shape of x/time/rate's.
var _ interface{ Allow() bool } = (*Limiter)(nil)

// A Limiter is a seawall.Policy.
var _ seawall.Policy = (*Limiter)(nil)

func mustNew(t *testing.T, cfg Config) *Limiter {
	t.Helper()
	l, err := New(cfg)
	require.NoError(t, err)
	return l
}

// TestAdmissionCount: polled every step over 10 simulated seconds
// (both ends included), a limiter at rate R with burst B admits the B
// tokens of its full bucket at once, then one every 1/R: exactly
// B + floor(10·R) events. The rates are chosen so that no admission falls
// within a nanosecond of the end, where rounding 1/R to the nanosecond
// would decide (2.5/s puts one exactly at 10s: admitted, the bound is
// inclusive).
func TestAdmissionCount(t *testing.T) {
	for _, tc := range []struct {
		rate  float64
		burst int
		step  time.Duration
	}{
		{1, 1, time.Millisecond},
		{10, 5, time.Millisecond},
		{100, 1, time.Millisecond},
		{1000, 50, 100 * time.Microsecond},
		{3, 2, time.Millisecond},        // 1/R = 333333333ns, rounded
		{0.75, 3, time.Millisecond},     // fractional: 7.5 refills in 10s
		{2.5, 1, time.Millisecond},      // the last one exactly at 10s
		{0.3, 4, 10 * time.Millisecond}, // fewer refills than the burst
	} {
		t.Run(fmt.Sprintf("R=%v,B=%d", tc.rate, tc.burst), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				l := mustNew(t, Config{Rate: tc.rate, Burst: tc.burst})
				const period = 10 * time.Second
				admitted := 0
				for elapsed := time.Duration(0); ; elapsed += tc.step {
					for l.Allow() {
						admitted++
					}
					if elapsed >= period {
						break
					}
					bubble.Sleep(tc.step)
				}
				want := tc.burst + int(math.Floor(tc.rate*period.Seconds()))
				assert.Equal(t, want, admitted)
				m := l.Metrics()
				assert.Equal(t, uint64(admitted), m.Allowed)
				assert.Positive(t, m.Limited)
			})
		})
	}
}

// TestAllowNExplicitTimes drives AllowN with times given by the caller, as
// with x/time/rate, outside any bubble: no clock is read.
func TestAllowNExplicitTimes(t *testing.T) {
	l := mustNew(t, Config{Rate: 10, Burst: 3}) // a token every 100ms
	t0 := time.Now()
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	for i, step := range []struct {
		t    time.Duration
		n    int
		want bool
	}{
		{0, 2, true},
		{0, 1, true},
		{0, 1, false}, // empty
		{99 * time.Millisecond, 1, false},
		{100 * time.Millisecond, 1, true},
		{100 * time.Millisecond, 1, false},
		{350 * time.Millisecond, 3, false}, // 2.5 tokens
		{350 * time.Millisecond, 2, true},
		{399 * time.Millisecond, 1, false}, // 0.5 left at 350: 0.99 at 399
		{400 * time.Millisecond, 1, true},
		{450 * time.Millisecond, 1, false},
		{450 * time.Millisecond, 4, false}, // more than the burst: never
		{10 * time.Second, 4, false},
		{10 * time.Second, 3, true}, // full again, whole burst at once
		{10 * time.Second, 0, true}, // nothing asked
		{5 * time.Second, 1, false}, // earlier than the last call: no tokens back
	} {
		got := l.AllowN(at(step.t), step.n)
		assert.Equal(t, step.want, got, "step %d: AllowN(t0+%v, %d)", i, step.t, step.n)
	}
}

// TestAllowNBeforeEpoch: a new limiter is full at any time, even one before
// it was made.
func TestAllowNBeforeEpoch(t *testing.T) {
	l := mustNew(t, Config{Rate: 1, Burst: 2})
	assert.True(t, l.AllowN(time.Now().Add(-time.Hour), 2))
	assert.False(t, l.AllowN(time.Now().Add(-time.Hour), 1))
}

// TestTryHintIsExact: the retry-after hint of a refusal is the exact time
// until the tokens asked for are in the bucket: a nanosecond earlier they
// are still refused, at the hint they are granted.
func TestTryHintIsExact(t *testing.T) {
	for _, tc := range []struct {
		rate  float64
		burst int
		n     int
	}{
		{1, 1, 1},
		{10, 5, 3},
		{3, 3, 3},
		{0.5, 2, 2},
	} {
		t.Run(fmt.Sprintf("R=%v,B=%d,n=%d", tc.rate, tc.burst, tc.n), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				l := mustNew(t, Config{Rate: tc.rate, Burst: tc.burst})
				require.NoError(t, l.Try(tc.burst)) // empty it
				bubble.Sleep(time.Duration(float64(time.Second) / tc.rate / 3))
				err := l.Try(tc.n)
				require.Error(t, err)
				assert.ErrorIs(t, err, ErrLimited)
				assert.ErrorIs(t, err, seawall.ErrRejected)
				assert.Equal(t, "ratelimit: limited", err.Error())
				hint, ok := seawall.RetryAfter(err)
				require.True(t, ok, "the refusal carries a hint")
				interval := time.Duration(math.Round(float64(time.Second) / tc.rate))
				want := time.Duration(tc.n)*interval - interval/3 // the tokens' worth, less the refill so far
				assert.InDelta(t, want, hint, 1, "the hint is the time until %d tokens", tc.n)

				bubble.Sleep(hint - 1)
				err = l.Try(tc.n)
				require.Error(t, err, "a nanosecond before the hint")
				h2, _ := seawall.RetryAfter(err)
				assert.Equal(t, time.Duration(1), h2)
				bubble.Sleep(1)
				assert.NoError(t, l.Try(tc.n), "at the hint")
			})
		})
	}
}

func TestTryExceedsBurst(t *testing.T) {
	l := mustNew(t, Config{Rate: 10, Burst: 3})
	err := l.Try(4)
	require.Error(t, err)
	assert.NotErrorIs(t, err, ErrLimited, "waiting would never help: not a rejection to retry")
	assert.Contains(t, err.Error(), "n 4 exceeds Burst 3")
	assert.NoError(t, l.Try(3), "nothing was taken")
	assert.NoError(t, l.Try(0))
	assert.NoError(t, l.Try(-1))
}

// TestRefusalAllocatesOnlyItsError: Allow allocates nothing, allowed or
// refused; Try allocates only the error it returns.
func TestRefusalAllocatesOnlyItsError(t *testing.T) {
	l := mustNew(t, Config{Rate: 1e-3, Burst: 1})
	assert.Zero(t, testing.AllocsPerRun(100, func() { l.Allow() }))
	assert.Zero(t, testing.AllocsPerRun(100, func() { _ = l.AllowN(time.Now(), 1) }))
	assert.Equal(t, 1.0, testing.AllocsPerRun(100, func() { _ = l.Try(1) }))
	assert.Zero(t, testing.AllocsPerRun(100, func() { _ = l.Reserve() }))
	l2 := mustNew(t, Config{Rate: 1e9, Burst: 1e9})
	assert.Zero(t, testing.AllocsPerRun(100, func() { _ = l2.Try(1) }))
}

func TestReserve(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := mustNew(t, Config{Rate: 10, Burst: 2}) // a token every 100ms
		var delays []time.Duration
		for range 5 {
			r := l.Reserve()
			require.True(t, r.OK())
			delays = append(delays, r.Delay())
		}
		ms := time.Millisecond
		assert.Equal(t, []time.Duration{0, 0, 100 * ms, 200 * ms, 300 * ms}, delays,
			"the bucket's two tokens at once, then one every 100ms, each reservation behind the last")

		bubble.Sleep(150 * ms)
		r := l.Reserve()
		assert.Equal(t, 250*ms, r.Delay(), "behind the three pending: 400ms after the start")
		assert.Equal(t, 250*ms, r.DelayFrom(time.Now()))
		assert.Equal(t, 350*ms, r.DelayFrom(time.Now().Add(-100*ms)))
		assert.Zero(t, r.DelayFrom(time.Now().Add(time.Hour)))

		bad := l.ReserveN(time.Now(), 3)
		assert.False(t, bad.OK(), "more than the burst")
		assert.Equal(t, InfDuration, bad.Delay())
		bad.Cancel() // does nothing
		assert.True(t, l.ReserveN(time.Now(), 0).OK())
		assert.Zero(t, l.ReserveN(time.Now(), 0).Delay())
	})
}

// TestReserveCancelRestoresTokens: cancelling the latest reservation gives
// its tokens back in full; cancelling one that later reservations queue
// behind gives back nothing (they keep their times, and the tokens would
// let new arrivals act alongside them, over the burst); cancelling one whose
// time has come gives back nothing.
func TestReserveCancelRestoresTokens(t *testing.T) {
	ms := time.Millisecond
	t.Run("latest", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			l := mustNew(t, Config{Rate: 10, Burst: 2})
			require.NoError(t, l.Try(2))
			r := l.ReserveN(time.Now(), 2)
			assert.Equal(t, 200*ms, r.Delay())
			r.Cancel()
			assert.Equal(t, 100*ms, l.Reserve().Delay(), "as if r had never been made")
		})
	})
	t.Run("partially", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			l := mustNew(t, Config{Rate: 10, Burst: 3})
			require.NoError(t, l.Try(3))
			r := l.ReserveN(time.Now(), 2) // at 200ms
			later := l.Reserve()           // at 300ms
			assert.Equal(t, 300*ms, later.Delay())
			r.Cancel() // one of r's two tokens is behind later: one comes back
			assert.Equal(t, 300*ms, l.Reserve().Delay())
			assert.Equal(t, 400*ms, l.Reserve().Delay())
		})
	})
	t.Run("behind", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			l := mustNew(t, Config{Rate: 1, Burst: 1})
			require.True(t, l.Allow())
			r := l.Reserve()     // at 1s
			later := l.Reserve() // at 2s
			assert.Equal(t, 2*time.Second, later.Delay())
			r.Cancel()
			assert.Equal(t, 3*time.Second, l.Reserve().Delay(), "nothing given back")
		})
	})
	t.Run("time has come", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			l := mustNew(t, Config{Rate: 10, Burst: 1})
			require.True(t, l.Allow())
			r := l.Reserve() // at 100ms
			bubble.Sleep(100 * ms)
			r.Cancel()
			assert.False(t, l.Allow(), "the token was used")
		})
	})
	t.Run("twice", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			l := mustNew(t, Config{Rate: 10, Burst: 1})
			require.True(t, l.Allow())
			r := l.Reserve()
			r.Cancel()
			r.Cancel()
			assert.Equal(t, 100*ms, l.Reserve().Delay(), "the second Cancel gives nothing more")
		})
	})
	t.Run("after SetRate", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			l := mustNew(t, Config{Rate: 10, Burst: 1})
			require.True(t, l.Allow())
			r := l.Reserve()
			require.NoError(t, l.SetRate(20))
			r.Cancel()
			assert.False(t, l.Allow(), "a reservation made under other settings gives nothing back")
		})
	})
}

func TestWait(t *testing.T) {
	ms := time.Millisecond
	t.Run("waits for the token", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			l := mustNew(t, Config{Rate: 10, Burst: 1})
			start := time.Now()
			for i := range 4 {
				require.NoError(t, l.Wait(t.Context()))
				assert.Equal(t, time.Duration(i)*100*ms, time.Since(start))
			}
		})
	})
	t.Run("cancel while waiting", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			l := mustNew(t, Config{Rate: 1, Burst: 1})
			require.True(t, l.Allow())
			ctx, cancel := context.WithCancel(t.Context())
			start := time.Now()
			time.AfterFunc(200*ms, cancel)
			err := l.Wait(ctx)
			assert.Equal(t, context.Canceled, err, "ctx.Err(), unchanged")
			assert.Equal(t, 200*ms, time.Since(start), "promptly")
			assert.Equal(t, 800*ms, l.Reserve().Delay(), "the cancelled wait gave its token back")
		})
	})
	t.Run("deadline too soon", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			l := mustNew(t, Config{Rate: 1, Burst: 1})
			require.True(t, l.Allow())
			ctx, cancel := context.WithTimeout(t.Context(), 500*ms)
			defer cancel()
			start := time.Now()
			err := l.Wait(ctx)
			assert.Zero(t, time.Since(start), "fails at once, without sleeping")
			assert.ErrorIs(t, err, ErrLimited)
			assert.ErrorIs(t, err, seawall.ErrRejected)
			assert.NoError(t, ctx.Err(), "the caller's context is still good")
			hint, ok := seawall.RetryAfter(err)
			assert.True(t, ok)
			assert.Equal(t, time.Second, hint)
			assert.Equal(t, time.Second, l.Reserve().Delay(), "nothing was taken")
		})
	})
	t.Run("deadline exactly at the token", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			l := mustNew(t, Config{Rate: 1, Burst: 1})
			require.True(t, l.Allow())
			ctx, cancel := context.WithTimeout(t.Context(), time.Second)
			defer cancel()
			assert.ErrorIs(t, l.Wait(ctx), ErrLimited, "acting at the deadline is too late")
		})
	})
	t.Run("deadline after the token", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			l := mustNew(t, Config{Rate: 1, Burst: 1})
			require.True(t, l.Allow())
			ctx, cancel := context.WithTimeout(t.Context(), time.Second+1)
			defer cancel()
			start := time.Now()
			assert.NoError(t, l.Wait(ctx))
			assert.Equal(t, time.Second, time.Since(start))
		})
	})
	t.Run("done on entry", func(t *testing.T) {
		l := mustNew(t, Config{Rate: 1, Burst: 1})
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		assert.Equal(t, context.Canceled, l.Wait(ctx))
		assert.True(t, l.Allow(), "nothing was taken")
	})
	t.Run("exceeds burst", func(t *testing.T) {
		l := mustNew(t, Config{Rate: 1, Burst: 2})
		err := l.WaitN(t.Context(), 3)
		require.Error(t, err)
		assert.NotErrorIs(t, err, ErrLimited)
		assert.NoError(t, l.WaitN(t.Context(), 0))
	})
}

func TestDo(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := mustNew(t, Config{Rate: 2, Burst: 1})
		calls := 0
		op := func(context.Context) error { calls++; return errors.New("boom") }
		assert.EqualError(t, l.Do(t.Context(), op), "boom", "op's error, unchanged")
		start := time.Now()
		err := l.Do(t.Context(), op)
		assert.Zero(t, time.Since(start), "Do does not wait")
		assert.ErrorIs(t, err, ErrLimited)
		hint, _ := seawall.RetryAfter(err)
		assert.Equal(t, 500*time.Millisecond, hint)
		assert.Equal(t, 1, calls, "a refused op is not run")
		bubble.Sleep(hint)
		assert.Error(t, l.Do(t.Context(), op))
		assert.Equal(t, 2, calls)
	})
}

func TestSetRate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := mustNew(t, Config{Rate: 10, Burst: 4})
		require.NoError(t, l.Try(2)) // 2 tokens left
		require.NoError(t, l.SetRate(1))
		assert.Equal(t, 1.0, l.Rate())
		assert.NoError(t, l.Try(2), "the tokens are kept")
		err := l.Try(1)
		hint, _ := seawall.RetryAfter(err)
		assert.Equal(t, time.Second, hint, "refilled at the new rate")
		bubble.Sleep(10 * time.Second)
		assert.NoError(t, l.Try(4), "full again at the new rate")

		require.NoError(t, l.SetRate(100))
		for range 3 {
			bubble.Sleep(10 * time.Millisecond)
			assert.True(t, l.Allow())
			assert.False(t, l.Allow())
		}

		assert.ErrorContains(t, l.SetRate(0), "Rate 0")
		assert.ErrorContains(t, l.SetRate(math.NaN()), "Rate NaN")
		assert.ErrorContains(t, l.SetRate(1e-9), "Burst 4 at Rate 1e-09")
		assert.Equal(t, 100.0, l.Rate(), "a bad rate changes nothing")
	})
}

func TestSetBurst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := mustNew(t, Config{Rate: 1, Burst: 2})
		require.NoError(t, l.SetBurst(5))
		assert.Equal(t, 5, l.Burst())
		assert.NoError(t, l.Try(2), "the two tokens kept")
		assert.False(t, l.Allow(), "a bigger bucket is not filled at once")
		bubble.Sleep(5 * time.Second)
		assert.NoError(t, l.Try(5), "it refills to the new burst")

		bubble.Sleep(5 * time.Second)
		require.NoError(t, l.SetBurst(1))
		assert.NoError(t, l.Try(1))
		assert.False(t, l.Allow(), "tokens over the new burst are dropped")
		assert.Error(t, l.Try(2))

		assert.ErrorContains(t, l.SetBurst(0), "Burst 0")
		assert.ErrorContains(t, l.SetBurst(-3), "Burst -3")
		assert.Equal(t, 1, l.Burst())
	})
}

func TestInfiniteRate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := mustNew(t, Config{Rate: math.Inf(1)})
		assert.True(t, math.IsInf(l.Rate(), 1))
		assert.Equal(t, 1, l.Burst())
		for range 10_000 {
			require.True(t, l.Allow())
		}
		assert.True(t, l.AllowN(time.Now(), 1_000_000), "the burst is ignored")
		assert.NoError(t, l.Try(1_000_000))
		r := l.ReserveN(time.Now(), 1_000_000)
		assert.True(t, r.OK())
		assert.Zero(t, r.Delay())
		r.Cancel()
		start := time.Now()
		assert.NoError(t, l.WaitN(t.Context(), 1_000_000))
		assert.Zero(t, time.Since(start))
		assert.Equal(t, uint64(10_004), l.Metrics().Allowed)

		// Back to a finite rate: a full bucket.
		require.NoError(t, l.SetRate(1))
		assert.True(t, l.Allow())
		assert.False(t, l.Allow())
		require.NoError(t, l.SetRate(math.Inf(1)))
		assert.True(t, l.Allow())
	})
}

// TestConcurrentNeverOverAdmits: many goroutines hammering one limiter for
// a fixed simulated period get, in total, no more than the bucket allows,
// R·T + B, and (since they never stop asking) no fewer either.
func TestConcurrentNeverOverAdmits(t *testing.T) {
	for _, tc := range []struct {
		rate  float64
		burst int
	}{{100, 10}, {1000, 1}, {7.5, 30}} {
		t.Run(fmt.Sprintf("R=%v,B=%d", tc.rate, tc.burst), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				const workers, period = 16, 2 * time.Second
				l := mustNew(t, Config{Rate: tc.rate, Burst: tc.burst})
				var admitted atomic.Int64
				end := time.Now().Add(period)
				var wg sync.WaitGroup
				for w := range workers {
					wg.Go(func() {
						for i := 0; !time.Now().After(end); i++ {
							switch (w + i) % 3 {
							case 0:
								if l.Allow() {
									admitted.Add(1)
								}
							case 1:
								if l.Try(1) == nil {
									admitted.Add(1)
								}
							default:
								if l.AllowN(time.Now(), 2) {
									admitted.Add(2)
								}
							}
							bubble.Sleep(time.Duration(1+(w*7+i)%5) * 100 * time.Microsecond)
						}
					})
				}
				wg.Wait()
				limit := int64(tc.rate*period.Seconds()) + int64(tc.burst)
				assert.LessOrEqual(t, admitted.Load(), limit)
				assert.GreaterOrEqual(t, admitted.Load(), limit-2, "busy callers use the whole bucket")
			})
		})
	}
}

// TestConcurrentWaiters: goroutines waiting together are released one
// interval apart, and none is let through early.
func TestConcurrentWaiters(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const waiters = 20
		l := mustNew(t, Config{Rate: 10, Burst: 1})
		start := time.Now()
		var mu sync.Mutex
		var got []time.Duration
		var wg sync.WaitGroup
		for range waiters {
			wg.Go(func() {
				assert.NoError(t, l.Wait(t.Context()))
				mu.Lock()
				got = append(got, time.Since(start))
				mu.Unlock()
			})
		}
		wg.Wait()
		seen := map[time.Duration]bool{}
		for _, d := range got {
			assert.Zero(t, d%(100*time.Millisecond), "released on a token's time: %v", d)
			assert.False(t, seen[d], "two waiters released at %v", d)
			seen[d] = true
		}
		assert.Len(t, seen, waiters)
	})
}

func TestMetrics(t *testing.T) {
	l := mustNew(t, Config{Rate: 1e-3, Burst: 2})
	l.Allow()
	l.Allow()
	l.Allow()
	_ = l.Try(1)
	_ = l.Try(5)
	assert.Equal(t, Metrics{Allowed: 2, Limited: 3}, l.Metrics())
}

// TestSetRateConcurrent changes the settings while goroutines use the
// limiter: under -race, every call sees a consistent set of settings, and
// the settings last set are those reported.
func TestSetRateConcurrent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := mustNew(t, Config{Rate: 100, Burst: 10})
		end := time.Now().Add(time.Second)
		var wg sync.WaitGroup
		for w := range 8 {
			wg.Go(func() {
				for i := 0; !time.Now().After(end); i++ {
					switch (w + i) % 4 {
					case 0:
						l.Allow()
					case 1:
						_ = l.Try(1 + i%3)
					case 2:
						r := l.Reserve()
						if i%2 == 0 {
							r.Cancel()
						}
						assert.GreaterOrEqual(t, r.Delay(), time.Duration(0))
					default:
						ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
						_ = l.Wait(ctx)
						cancel()
					}
					bubble.Sleep(time.Millisecond)
				}
			})
		}
		wg.Go(func() {
			rates := []float64{1, 100, math.Inf(1), 1000, 0.5}
			for i := 0; !time.Now().After(end); i++ {
				assert.NoError(t, l.SetRate(rates[i%len(rates)]))
				assert.NoError(t, l.SetBurst(1+i%20))
				bubble.Sleep(7 * time.Millisecond)
			}
			assert.NoError(t, l.SetRate(42))
			assert.NoError(t, l.SetBurst(7))
		})
		wg.Wait()
		assert.Equal(t, 42.0, l.Rate())
		assert.Equal(t, 7, l.Burst())
		m := l.Metrics()
		assert.Positive(t, m.Allowed)
		assert.Positive(t, m.Limited)
	})
}
