package retry

import (
	"context"
	"errors"
	"fmt"
	"math"
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

// noBudget turns the budget off in tests of a Retry's own mechanics
// (attempts, delays, hints, deadlines), whose requests fail more often than
// a default budget lends: a quiet caller gets one floor retry per Window.
var noBudget = BudgetConfig{Disabled: true}

func mustNew(t testing.TB, cfg Config) *Retry {
	t.Helper()
	r, err := New(cfg)
	require.NoError(t, err)
	return r
}

// attempts is an operation that fails with errs[i] on attempt i (nil
// beyond the list) and records when each attempt started.
type attempts struct {
	errs   []error
	starts []time.Time
}

func (a *attempts) op(context.Context) error {
	a.starts = append(a.starts, time.Now())
	if i := len(a.starts) - 1; i < len(a.errs) {
		return a.errs[i]
	}
	return nil
}

// gaps returns the waits between attempts.
func (a *attempts) gaps() []time.Duration {
	var g []time.Duration
	for i := 1; i < len(a.starts); i++ {
		g = append(g, a.starts[i].Sub(a.starts[i-1]))
	}
	return g
}

func fails(n int, err error) []error {
	errs := make([]error, n)
	for i := range errs {
		errs[i] = err
	}
	return errs
}

func TestSuccessFirstTime(t *testing.T) {
	r := mustNew(t, Config{})
	a := &attempts{}
	require.NoError(t, r.Do(t.Context(), a.op))
	assert.Len(t, a.starts, 1)
	assert.Equal(t, Metrics{Budget: r.Metrics().Budget}, r.Metrics())
}

func TestRetriesUntilSuccess(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := mustNew(t, Config{Budget: noBudget, MaxAttempts: 4})
		a := &attempts{errs: fails(3, errBoom)}
		require.NoError(t, r.Do(t.Context(), a.op))
		assert.Len(t, a.starts, 4)
		assert.Equal(t, uint64(3), r.Metrics().Retries)
	})
}

func TestGivesUpAfterMaxAttempts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := mustNew(t, Config{Budget: noBudget, MaxAttempts: 3})
		a := &attempts{errs: fails(10, errBoom)}
		err := r.Do(t.Context(), a.op)
		assert.Len(t, a.starts, 3, "MaxAttempts includes the first")
		require.ErrorIs(t, err, errBoom)
		var re *Error
		require.ErrorAs(t, err, &re)
		assert.Equal(t, 3, re.Attempts)
		assert.Nil(t, re.Reason)
		assert.Equal(t, "retry: 3 attempts; last error: boom", err.Error())
		assert.Equal(t, uint64(1), r.Metrics().GaveUp)
	})
}

func TestMaxAttemptsOneNeverRetries(t *testing.T) {
	r := mustNew(t, Config{MaxAttempts: 1})
	a := &attempts{errs: fails(10, errBoom)}
	err := r.Do(t.Context(), a.op)
	assert.Len(t, a.starts, 1)
	assert.Equal(t, "retry: 1 attempt; last error: boom", err.Error())
}

// TestDelays checks every delay against its formula: exact without jitter,
// within the jitter's bounds otherwise, and that the wait between attempts
// is the delay announced to OnRetry.
func TestDelays(t *testing.T) {
	const delay, maxDelay = 100 * time.Millisecond, 1 * time.Second
	for _, tc := range []struct {
		jitter     Jitter
		multiplier float64
		lo, hi     func(n int, prev time.Duration) time.Duration // bounds of retry n's delay
	}{
		{NoJitter, 2, exp(delay, 2, maxDelay), exp(delay, 2, maxDelay)},
		{NoJitter, 1, exp(delay, 1, maxDelay), exp(delay, 1, maxDelay)}, // constant
		{FullJitter, 2, func(int, time.Duration) time.Duration { return 0 }, exp(delay, 2, maxDelay)},
		{EqualJitter, 3, func(n int, p time.Duration) time.Duration { return exp(delay, 3, maxDelay)(n, p) / 2 }, exp(delay, 3, maxDelay)},
		{DecorrelatedJitter, 2, func(int, time.Duration) time.Duration { return delay },
			func(_ int, prev time.Duration) time.Duration { return min(3*prev, maxDelay) }},
	} {
		t.Run(fmt.Sprintf("%s-x%v", tc.jitter, tc.multiplier), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var announced []time.Duration
				r := mustNew(t, Config{MaxAttempts: 12, Delay: delay, MaxDelay: maxDelay, Multiplier: tc.multiplier, Jitter: tc.jitter,
					Budget:  BudgetConfig{Disabled: true},
					OnRetry: func(_ int, _ error, d time.Duration) { announced = append(announced, d) }})
				seen := map[time.Duration]bool{}
				for range 20 {
					a := &attempts{errs: fails(11, errBoom)}
					require.NoError(t, r.Do(t.Context(), a.op))
					gaps := a.gaps()
					require.Equal(t, announced[len(announced)-11:], gaps, "the wait is the announced delay")
					prev := delay // decorrelated jitter's previous delay, before the first retry
					for i, d := range gaps {
						n := i + 1
						require.GreaterOrEqual(t, d, tc.lo(n, prev), "retry %d", n)
						require.LessOrEqual(t, d, tc.hi(n, prev), "retry %d", n)
						prev = d
						seen[d] = true
					}
				}
				if tc.jitter != NoJitter {
					assert.Greater(t, len(seen), 50, "jitter spreads the delays")
				}
			})
		})
	}
}

// TestDecorrelatedJitterSpreadsEveryDelay: decorrelated jitter draws the
// first delay too, from [Delay, 3 × Delay], so that callers that failed
// together do not retry together, and every later one from [Delay,
// 3 × the previous delay], capped at MaxDelay.
//
// The first delays are uniform over [Delay, 3 × Delay]: each quarter of that
// range expects n/4 = 500 of the n = 2000 loops. A quarter gets fewer than
// n/8 = 250 (half its share) with probability below exp(-(1/2)² × 500 / 2)
// = exp(-62.5) ≈ 7e-28 (Chernoff), so below 3e-27 for any of the four: the
// test does not flake. Before the fix, every first delay was exactly Delay.
func TestDecorrelatedJitterSpreadsEveryDelay(t *testing.T) {
	const delay, maxDelay, n = 500 * time.Millisecond, 4 * time.Second, 2000
	synctest.Test(t, func(t *testing.T) {
		var announced []time.Duration
		r := mustNew(t, Config{MaxAttempts: 8, Delay: delay, MaxDelay: maxDelay, Jitter: DecorrelatedJitter,
			Budget:  BudgetConfig{Disabled: true},
			OnRetry: func(_ int, _ error, d time.Duration) { announced = append(announced, d) }})
		var quarters [4]int
		capped := 0
		for range n {
			a := &attempts{errs: fails(7, errBoom)}
			require.NoError(t, r.Do(t.Context(), a.op))
			gaps := a.gaps()
			require.Equal(t, announced[len(announced)-7:], gaps, "the wait is the announced delay")
			first := gaps[0]
			require.GreaterOrEqual(t, first, delay, "first delay")
			require.LessOrEqual(t, first, 3*delay, "first delay")
			quarters[min(int((first-delay)*4/(2*delay)), 3)]++
			for i := 1; i < len(gaps); i++ {
				require.GreaterOrEqual(t, gaps[i], delay, "retry %d", i+1)
				require.LessOrEqual(t, gaps[i], min(maxDelay, 3*gaps[i-1]), "retry %d", i+1)
				if gaps[i] == maxDelay {
					capped++
				}
			}
		}
		for i, q := range quarters {
			assert.GreaterOrEqual(t, q, n/8, "first delays in quarter %d of [Delay, 3×Delay]: %v", i, quarters)
		}
		assert.Positive(t, capped, "later delays reach MaxDelay")
	})
}

// TestDecorrelatedJitterHugeMaxDelay: 3 × a previous delay near the
// largest Duration saturates instead of overflowing to a negative bound.
func TestDecorrelatedJitterHugeMaxDelay(t *testing.T) {
	r := mustNew(t, Config{Jitter: DecorrelatedJitter, Delay: time.Hour, MaxDelay: math.MaxInt64})
	l := Loop{r: r, st: &loopState{}}
	above := 0
	for range 100 {
		l.st.prev = math.MaxInt64 / 2
		d := l.exponential(2)
		require.GreaterOrEqual(t, d, time.Hour)
		if d > math.MaxInt64/2 {
			above++
		}
	}
	assert.Positive(t, above, "draws above the previous delay: the bound did not collapse") // P(none) = 2^-100
}

// exp returns the exponential delay of retry n, capped.
func exp(delay time.Duration, mult float64, maxDelay time.Duration) func(int, time.Duration) time.Duration {
	return func(n int, _ time.Duration) time.Duration {
		d := float64(delay)
		for range n - 1 {
			d *= mult
		}
		return min(time.Duration(d), maxDelay)
	}
}

func TestDelayFunc(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := mustNew(t, Config{Budget: noBudget, MaxAttempts: 10, DelayFunc: func(n int, err error) time.Duration {
			if n == 4 {
				return -1 // stop
			}
			return time.Duration(n) * time.Second
		}})
		a := &attempts{errs: fails(10, errBoom)}
		err := r.Do(t.Context(), a.op)
		assert.Equal(t, []time.Duration{time.Second, 2 * time.Second, 3 * time.Second}, a.gaps())
		var re *Error
		require.ErrorAs(t, err, &re)
		assert.Equal(t, 4, re.Attempts)
	})
}

// fakeBackOff has the shape of a cenkalti/backoff/v4 BackOff.
type fakeBackOff struct {
	next   []time.Duration
	i      int
	resets int
}

func (f *fakeBackOff) NextBackOff() time.Duration {
	if f.i >= len(f.next) {
		return -1 // backoff.Stop
	}
	f.i++
	return f.next[f.i-1]
}
func (f *fakeBackOff) Reset() { f.i = 0; f.resets++ }

func TestBackOffAdapter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var made []*fakeBackOff
		r := mustNew(t, Config{Budget: noBudget, MaxAttempts: 10, BackOff: func() BackOff {
			b := &fakeBackOff{next: []time.Duration{time.Second, 3 * time.Second}}
			made = append(made, b)
			return b
		}})
		for range 2 {
			a := &attempts{errs: fails(10, errBoom)}
			err := r.Do(t.Context(), a.op)
			require.ErrorIs(t, err, errBoom)
			assert.Equal(t, []time.Duration{time.Second, 3 * time.Second}, a.gaps(), "Stop ends the retries")
		}
		assert.Len(t, made, 2, "a BackOff per call: it is stateful")
	})
}

func TestHintIsHonouredAndCapped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := mustNew(t, Config{Budget: noBudget, MaxAttempts: 2, Delay: 10 * time.Millisecond, Jitter: NoJitter, MaxHint: time.Minute})
		for _, tc := range []struct {
			hint, want time.Duration
		}{
			{2 * time.Second, 2 * time.Second},        // at least the hint
			{time.Millisecond, 10 * time.Millisecond}, // but not less than the backoff
			{365 * 24 * time.Hour, time.Minute},       // an absurd hint is capped
			{0, 10 * time.Millisecond},
		} {
			a := &attempts{errs: []error{seawall.WithRetryAfter(errBoom, tc.hint)}}
			require.NoError(t, r.Do(t.Context(), a.op))
			assert.Equal(t, []time.Duration{tc.want}, a.gaps(), "hint %v", tc.hint)
		}
	})
}

// TestPushback checks that a pushback sets the next delay exactly, below
// or above the backoff, capped by MaxHint, and ends retries when it would
// pass the deadline.
func TestPushback(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// No budget: every request here fails twice, which a budget's floor
		// would (rightly) stop lending to; this test is about the gaps.
		r := mustNew(t, Config{MaxAttempts: 3, Delay: time.Second, Multiplier: 2, Jitter: NoJitter, MaxHint: time.Minute,
			Budget: noBudget})
		for _, tc := range []struct {
			pushback time.Duration
			want     []time.Duration
		}{
			{10 * time.Millisecond, []time.Duration{10 * time.Millisecond, 2 * time.Second}}, // below the backoff, which goes on
			{5 * time.Second, []time.Duration{5 * time.Second, 2 * time.Second}},
			{0, []time.Duration{0, 2 * time.Second}},
			{-time.Second, []time.Duration{0, 2 * time.Second}},
			{time.Hour, []time.Duration{time.Minute, 2 * time.Second}}, // capped
		} {
			a := &attempts{errs: []error{seawall.WithPushback(errBoom, tc.pushback), errBoom}}
			require.NoError(t, r.Do(t.Context(), a.op))
			assert.Equal(t, tc.want, a.gaps(), "pushback %v", tc.pushback)
		}

		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		a := &attempts{errs: []error{seawall.WithPushback(errBoom, 30*time.Second)}}
		assert.ErrorIs(t, r.Do(ctx, a.op), ErrDeadline)
		assert.Len(t, a.starts, 1)

		err := seawall.WithPushback(errBoom, time.Second)
		assert.ErrorIs(t, err, errBoom)
		d, ok := seawall.RetryAfter(err)
		assert.True(t, ok)
		assert.Equal(t, time.Second, d)
		assert.Nil(t, seawall.WithPushback(nil, time.Second))
	})
}

func TestHintPastDeadlineStopsAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := mustNew(t, Config{MaxAttempts: 5})
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		start := time.Now()
		a := &attempts{errs: []error{seawall.WithRetryAfter(errBoom, 30*time.Second)}}
		err := r.Do(ctx, a.op)
		assert.Equal(t, start, time.Now(), "no wait at all")
		assert.Len(t, a.starts, 1)
		assert.ErrorIs(t, err, ErrDeadline)
		assert.ErrorIs(t, err, errBoom)
		d, ok := seawall.RetryAfter(err)
		assert.True(t, ok, "the server's hint still reaches the caller")
		assert.Equal(t, 30*time.Second, d)
	})
}

func TestNeverSleepsPastDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := mustNew(t, Config{Budget: noBudget, MaxAttempts: 100, Delay: 300 * time.Millisecond, Multiplier: 1, Jitter: NoJitter})
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		deadline, _ := ctx.Deadline()
		a := &attempts{errs: fails(100, errBoom)}
		err := r.Do(ctx, a.op)
		assert.False(t, time.Now().After(deadline), "returned at %v, deadline %v", time.Now(), deadline)
		assert.Len(t, a.starts, 4, "attempts at 0, 300, 600, 900ms; a fifth would start at the deadline")
		assert.ErrorIs(t, err, ErrDeadline)
		assert.ErrorIs(t, err, errBoom)
	})
}

func TestMaxElapsed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := mustNew(t, Config{Budget: noBudget, MaxAttempts: 100, MaxElapsed: time.Second, Delay: 400 * time.Millisecond, Multiplier: 1, Jitter: NoJitter})
		start := time.Now()
		a := &attempts{errs: fails(100, errBoom)}
		err := r.Do(t.Context(), a.op)
		assert.Len(t, a.starts, 3)
		assert.LessOrEqual(t, time.Since(start), time.Second)
		assert.ErrorIs(t, err, ErrDeadline)
	})
}

func TestCancelDuringWaitReturnsPromptly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := mustNew(t, Config{MaxAttempts: 5, Delay: time.Hour, Jitter: NoJitter})
		ctx, cancel := context.WithCancel(t.Context())
		time.AfterFunc(3*time.Second, cancel)
		start := time.Now()
		err := r.Do(ctx, (&attempts{errs: fails(5, errBoom)}).op)
		assert.Equal(t, 3*time.Second, time.Since(start), "returns when the context ends")
		assert.ErrorIs(t, err, context.Canceled)
		assert.ErrorIs(t, err, errBoom, "joined with the last operation error")
		assert.Contains(t, err.Error(), "1 attempt")
	})
}

func TestClassification(t *testing.T) {
	errRejected := seawall.NewRejection("local: rejected")
	for _, tc := range []struct {
		name    string
		err     error
		cfg     Config
		retried bool
	}{
		{"plain error", errBoom, Config{}, true},
		{"permanent", seawall.Permanent(errBoom), Config{}, false},
		{"permanent despite Retryable", seawall.Permanent(errBoom), Config{Retryable: func(error) bool { return true }}, false},
		{"canceled", context.Canceled, Config{}, false},
		{"deadline exceeded", fmt.Errorf("get: %w", context.DeadlineExceeded), Config{}, false},
		{"rejection without hint", errRejected, Config{}, false},
		{"rejection with hint", seawall.WithRetryAfter(errRejected, time.Millisecond), Config{}, true},
		{"custom Retryable", errBoom, Config{Retryable: func(err error) bool { return false }}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				tc.cfg.MaxAttempts = 2
				r := mustNew(t, tc.cfg)
				a := &attempts{errs: fails(2, tc.err)}
				err := r.Do(t.Context(), a.op)
				assert.ErrorIs(t, err, tc.err)
				assert.Equal(t, tc.retried, len(a.starts) == 2)
			})
		})
	}
}

func TestAttemptTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := mustNew(t, Config{Budget: noBudget, MaxAttempts: 3, AttemptTimeout: 100 * time.Millisecond, Delay: time.Millisecond, Jitter: NoJitter})
		var deadlines []time.Time
		calls := 0
		err := r.Do(t.Context(), func(ctx context.Context) error {
			d, ok := ctx.Deadline()
			require.True(t, ok, "each attempt has a deadline")
			deadlines = append(deadlines, d)
			calls++
			if calls < 3 {
				<-ctx.Done() // hangs until its attempt timeout
				return ctx.Err()
			}
			return nil
		})
		require.NoError(t, err, "timed-out attempts are retried")
		require.Len(t, deadlines, 3)
		assert.Equal(t, 101*time.Millisecond, deadlines[1].Sub(deadlines[0]), "a fresh timeout per attempt")
	})
}

// An attempt that reports its deadline itself, at the deadline, perhaps
// before the context's timer has run (at the same instant in a bubble),
// timed out, and is retried, whatever the error it reports.
func TestAttemptTimeoutNoticedByTheOperation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := mustNew(t, Config{Budget: noBudget, MaxAttempts: 2, AttemptTimeout: 100 * time.Millisecond, Delay: time.Millisecond, Jitter: NoJitter})
		server := deadlineErr("rpc error: code = DeadlineExceeded")
		calls := 0
		err := r.Do(t.Context(), func(ctx context.Context) error {
			calls++
			if calls == 1 {
				d, _ := ctx.Deadline()
				bubble.Sleep(time.Until(d))
				return server // not retryable by itself
			}
			return nil
		})
		require.NoError(t, err)
		assert.Equal(t, 2, calls)
	})
}

// deadlineErr is an error that DefaultRetryable refuses: it matches
// context.DeadlineExceeded, as a transport's deadline error does.
type deadlineErr string

func (e deadlineErr) Error() string        { return string(e) }
func (e deadlineErr) Is(target error) bool { return target == context.DeadlineExceeded }

func TestAttemptTimeoutDoesNotOutliveCaller(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := mustNew(t, Config{MaxAttempts: 10, AttemptTimeout: time.Second, Delay: time.Millisecond})
		ctx, cancel := context.WithTimeout(t.Context(), 1500*time.Millisecond)
		defer cancel()
		start := time.Now()
		err := r.Do(ctx, func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() })
		assert.LessOrEqual(t, time.Since(start), 1500*time.Millisecond)
		assert.ErrorIs(t, err, context.DeadlineExceeded)
	})
}

func TestOnRetry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		type call struct {
			attempt int
			err     error
			delay   time.Duration
		}
		var calls []call
		r := mustNew(t, Config{Budget: noBudget, MaxAttempts: 3, Delay: time.Second, Jitter: NoJitter,
			OnRetry: func(attempt int, err error, delay time.Duration) { calls = append(calls, call{attempt, err, delay}) }})
		e1, e2 := errors.New("first"), errors.New("second")
		_ = r.Do(t.Context(), (&attempts{errs: []error{e1, e2, errBoom}}).op)
		assert.Equal(t, []call{{1, e1, time.Second}, {2, e2, 2 * time.Second}}, calls)
	})
}

func TestPanicReleasesAttemptContext(t *testing.T) {
	r := mustNew(t, Config{AttemptTimeout: time.Hour})
	var attemptCtx context.Context
	assert.PanicsWithValue(t, "kaboom", func() {
		_ = r.Do(t.Context(), func(ctx context.Context) error {
			attemptCtx = ctx
			panic("kaboom")
		})
	})
	require.NotNil(t, attemptCtx)
	assert.ErrorIs(t, attemptCtx.Err(), context.Canceled, "the attempt's context was released")
}

func TestBudgetExhaustion(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, err := NewBudget(BudgetConfig{})
		require.NoError(t, err)
		r := mustNew(t, Config{MaxAttempts: 4, Delay: time.Millisecond, SharedBudget: b})
		assert.Same(t, b, r.Budget())
		exhausted := 0
		for range 200 {
			err := r.Do(t.Context(), (&attempts{errs: fails(4, errBoom)}).op)
			if errors.Is(err, ErrBudgetExhausted) {
				exhausted++
				assert.ErrorIs(t, err, seawall.ErrRejected)
				assert.ErrorIs(t, err, errBoom, "the last error is still there")
				assert.Contains(t, err.Error(), "budget exhausted")
			}
		}
		assert.Positive(t, exhausted)
		assert.Equal(t, uint64(exhausted), r.Metrics().Budget.Exhausted)
	})
}

func TestLoop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := mustNew(t, Config{Budget: noBudget, MaxAttempts: 5, Delay: time.Millisecond})
		var got []int
		l := r.Loop(t.Context())
		for l.Next() {
			got = append(got, l.Attempt())
			if l.Attempt() < 3 {
				l.Record(errBoom)
			} else {
				l.Record(nil)
			}
		}
		require.NoError(t, l.Err())
		assert.Equal(t, []int{1, 2, 3}, got)
		assert.False(t, l.Next(), "a finished loop stays finished")
	})
}

func TestLoopSetMaxAttempts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := mustNew(t, Config{Budget: noBudget, MaxAttempts: 3, Delay: time.Millisecond})
		for _, tc := range []struct{ set, want int }{{1, 1}, {5, 5}, {0, 1}, {-3, 1}} {
			l := r.Loop(t.Context())
			l.SetMaxAttempts(tc.set)
			n := 0
			for l.Next() {
				n++
				l.Record(errBoom)
			}
			assert.Equal(t, tc.want, n, "SetMaxAttempts(%d)", tc.set)
			var re *Error
			require.ErrorAs(t, l.Err(), &re)
			assert.Equal(t, tc.want, re.Attempts)
		}
		l := r.Loop(t.Context())
		l.SetMaxAttempts(5000)
		assert.Equal(t, 1000, l.maxAttempts())
	})
}

func TestLoopNextWithoutRecordPanics(t *testing.T) {
	r := mustNew(t, Config{})
	l := r.Loop(t.Context())
	require.True(t, l.Next())
	assert.Panics(t, func() { l.Next() })
}

// TestLoopAllocatesNothing: the loop form allocates nothing on the success
// path, even with a body that captures variables.
func TestLoopAllocatesNothing(t *testing.T) {
	for _, budget := range []BudgetConfig{{}, {Mode: TokensMode}, {Disabled: true}} {
		r := mustNew(t, Config{Budget: budget})
		ctx := context.Background()
		var sum int
		call := func(context.Context) (int, error) { return 1, nil }
		allocs := testing.AllocsPerRun(1000, func() {
			l := r.Loop(ctx)
			for l.Next() {
				v, err := call(l.Context())
				sum += v
				l.Record(err)
			}
			if l.Err() != nil {
				t.Fatal(l.Err())
			}
		})
		assert.Zero(t, allocs, "budget %+v", budget)
		allocs = testing.AllocsPerRun(1000, func() {
			_ = r.Do(ctx, func(context.Context) error { sum++; return nil })
		})
		assert.Zero(t, allocs, "nor does Do's success path; budget %+v", budget)
		c := seawall.Op(func(context.Context) error { sum++; return nil })
		allocs = testing.AllocsPerRun(1000, func() { _ = r.DoChain(ctx, c) })
		assert.Zero(t, allocs, "nor does DoChain's; budget %+v", budget)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{MaxAttempts: -1}, "retry: MaxAttempts -1 out of range [1,1000]"},
		{Config{MaxAttempts: 1001}, "retry: MaxAttempts 1001 out of range"},
		{Config{MaxElapsed: -1}, "retry: MaxElapsed -1ns is negative"},
		{Config{Delay: -time.Second}, "retry: Delay -1s is negative"},
		{Config{MaxDelay: -time.Second}, "retry: MaxDelay -1s is negative"},
		{Config{Delay: time.Second, MaxDelay: time.Millisecond}, "retry: MaxDelay 1ms is below Delay 1s"},
		{Config{MaxDelay: time.Millisecond}, "retry: MaxDelay 1ms is below Delay 100ms"},
		{Config{Multiplier: 0.5}, "retry: Multiplier 0.5 out of range [1,100]"},
		{Config{Multiplier: 101}, "retry: Multiplier 101 out of range"},
		{Config{Jitter: "lots"}, `retry: Jitter "lots" unknown`},
		{Config{DelayFunc: func(int, error) time.Duration { return 0 }, BackOff: func() BackOff { return nil }}, "retry: DelayFunc and BackOff both set"},
		{Config{MaxHint: -1}, "retry: MaxHint -1ns is negative"},
		{Config{AttemptTimeout: -1}, "retry: AttemptTimeout -1ns is negative"},
	} {
		_, err := New(tc.cfg)
		if assert.Error(t, err, "%+v", tc.cfg) {
			assert.True(t, strings.HasPrefix(err.Error(), tc.want), "got %q, want prefix %q", err, tc.want)
		}
	}
}

// TestConcurrentRetriesShareTheBudget: many goroutines share one Retry (and
// so one budget) against a dependency that always fails. Under -race, the
// attempts they make in all stay within what the budget allows: each
// request's first attempt, plus 10% of requests, plus the floor of one
// retry per window.
func TestConcurrentRetriesShareTheBudget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := mustNew(t, Config{MaxAttempts: 4, Delay: time.Millisecond})
		const workers, perWorker = 16, 500
		start := time.Now()
		var attempts atomic.Int64
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				for range perWorker {
					_ = r.Do(t.Context(), func(context.Context) error {
						attempts.Add(1)
						return errBoom
					})
					bubble.Sleep(time.Millisecond) // spread over about half a second
				}
			})
		}
		wg.Wait()
		requests := workers * perWorker
		// The floor is one retry per window, and the requests fit in one.
		require.Less(t, time.Since(start), DefaultBudgetWindow)
		bound := float64(requests) + 0.1*float64(requests) + 1
		assert.LessOrEqual(t, float64(attempts.Load()), bound)
		assert.Greater(t, attempts.Load(), int64(requests), "some retries were allowed")
		m := r.Metrics()
		assert.Equal(t, uint64(requests), m.Budget.Requests)
		assert.Equal(t, uint64(attempts.Load())-uint64(requests), m.Retries)
		assert.Equal(t, uint64(requests), m.GaveUp)
		t.Logf("%d requests made %d attempts (%.3f per request); budget %+v", requests, attempts.Load(), float64(attempts.Load())/float64(requests), m.Budget)
	})
}
