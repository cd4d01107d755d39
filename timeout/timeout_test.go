package timeout

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/seawall-go/seawall"
	"github.com/seawall-go/seawall/breaker"
	"github.com/seawall-go/seawall/internal/bubble"
	"github.com/seawall-go/seawall/retry"
)

const d = time.Second

func newT(t *testing.T, cfg Config) *Timeout {
	t.Helper()
	to, err := New(cfg)
	require.NoError(t, err)
	return to
}

// honest is an operation that returns when its context ends.
func honest(ctx context.Context) error {
	<-ctx.Done()
	return ctx.Err()
}

// bothModes runs f for the waiting mode and for Abandon mode, each in a
// bubble.
func bothModes(t *testing.T, f func(t *testing.T, to *Timeout)) {
	for _, abandon := range []bool{false, true} {
		name := "mode=wait"
		if abandon {
			name = "mode=abandon"
		}
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f(t, newT(t, Config{Timeout: d, Abandon: abandon}))
			})
		})
	}
}

func requireTimeout(t *testing.T, err error) *Error {
	t.Helper()
	require.Error(t, err)
	assert.ErrorIs(t, err, ErrTimeout)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	te, ok := errors.AsType[*Error](err)
	require.True(t, ok, "%v is not a *timeout.Error", err)
	assert.Equal(t, d, te.Timeout)
	return te
}

func TestSuccess(t *testing.T) {
	bothModes(t, func(t *testing.T, to *Timeout) {
		start := time.Now()
		err := to.Do(t.Context(), func(ctx context.Context) error {
			dl, ok := ctx.Deadline()
			assert.True(t, ok)
			assert.Equal(t, start.Add(d), dl)
			bubble.Sleep(d / 2)
			return nil
		})
		assert.NoError(t, err)
		assert.Equal(t, Metrics{Timeout: d, Calls: 1}, to.Metrics())
	})
}

func TestExpiry(t *testing.T) {
	bothModes(t, func(t *testing.T, to *Timeout) {
		start := time.Now()
		err := to.Do(t.Context(), honest)
		assert.Equal(t, d, time.Since(start))
		requireTimeout(t, err)
		assert.Equal(t, "timeout: timed out after 1s", err.Error())
		synctest.Wait()
		m := to.Metrics()
		assert.Equal(t, uint64(1), m.Calls)
		assert.Equal(t, uint64(1), m.TimedOut)
		assert.Equal(t, int64(0), m.Running)
	})
}

// An operation that reports the deadline itself, at the deadline, before
// the context's timer has run (at the same instant in a bubble), timed out:
// the clock says so, whatever the derived context's error.
func TestExpiryNoticedByTheOperation(t *testing.T) {
	bothModes(t, func(t *testing.T, to *Timeout) {
		server := errors.New("rpc error: code = DeadlineExceeded")
		err := to.Do(t.Context(), func(ctx context.Context) error {
			dl, _ := ctx.Deadline()
			bubble.Sleep(time.Until(dl))
			return server
		})
		te := requireTimeout(t, err)
		if !to.abandon { // in Abandon mode the timer may win the instant, and the result is discarded
			assert.Equal(t, server, te.Err)
			assert.ErrorIs(t, err, server)
		}
		assert.Equal(t, uint64(1), to.Metrics().TimedOut)
		synctest.Wait()
	})
}

func TestOperationErrorUnchanged(t *testing.T) {
	bothModes(t, func(t *testing.T, to *Timeout) {
		boom := errors.New("boom")
		err := to.Do(t.Context(), func(context.Context) error { return boom })
		assert.Same(t, boom, err)
		// The operation's own context.DeadlineExceeded, before the
		// deadline (a deadline further down), is its error too.
		err = to.Do(t.Context(), func(context.Context) error { return context.DeadlineExceeded })
		assert.Equal(t, context.DeadlineExceeded, err)
		assert.NotErrorIs(t, err, ErrTimeout)
		assert.Equal(t, uint64(0), to.Metrics().TimedOut)
	})
}

func TestCallerCancelledFirst(t *testing.T) {
	bothModes(t, func(t *testing.T, to *Timeout) {
		ctx, cancel := context.WithCancel(t.Context())
		time.AfterFunc(d/2, cancel)
		err := to.Do(ctx, honest)
		assert.Equal(t, context.Canceled, err)
		assert.NotErrorIs(t, err, ErrTimeout)
		assert.Equal(t, uint64(0), to.Metrics().TimedOut)
	})
}

// A caller's deadline earlier than the timeout rules, and its expiry is
// the caller's: ctx.Err(), not ErrTimeout.
func TestCallerDeadlineEarlier(t *testing.T) {
	bothModes(t, func(t *testing.T, to *Timeout) {
		ctx, cancel := context.WithTimeout(t.Context(), d/2)
		defer cancel()
		start := time.Now()
		err := to.Do(ctx, honest)
		assert.Equal(t, d/2, time.Since(start))
		assert.Equal(t, context.DeadlineExceeded, err)
		assert.NotErrorIs(t, err, ErrTimeout)
		assert.Equal(t, uint64(0), to.Metrics().TimedOut)

		// The same deadline as the timeout's: the caller's too.
		ctx2, cancel2 := context.WithTimeout(t.Context(), d)
		defer cancel2()
		err = to.Do(ctx2, honest)
		assert.Equal(t, context.DeadlineExceeded, err)
		assert.NotErrorIs(t, err, ErrTimeout)
	})
}

// A caller whose deadline is later than the timeout gets ErrTimeout.
func TestCallerDeadlineLater(t *testing.T) {
	bothModes(t, func(t *testing.T, to *Timeout) {
		ctx, cancel := context.WithTimeout(t.Context(), 2*d)
		defer cancel()
		requireTimeout(t, to.Do(ctx, honest))
	})
}

func TestSuccessAfterDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		to := newT(t, Config{Timeout: d})
		err := to.Do(t.Context(), func(context.Context) error {
			bubble.Sleep(2 * d) // ignores its context, then succeeds
			return nil
		})
		assert.NoError(t, err)
		assert.Equal(t, uint64(0), to.Metrics().TimedOut)
	})
}

// By default Do waits for an operation that ignores its context.
func TestWaitsForStubbornOperation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		to := newT(t, Config{Timeout: d})
		start := time.Now()
		err := to.Do(t.Context(), func(context.Context) error {
			bubble.Sleep(3 * d)
			return errors.New("late")
		})
		assert.Equal(t, 3*d, time.Since(start))
		requireTimeout(t, err)
		assert.Equal(t, "timeout: timed out after 1s: late", err.Error())
	})
}

// The waiting mode runs the operation on the caller's goroutine and starts
// none of its own.
func TestWaitModeStartsNoGoroutine(t *testing.T) {
	to := newT(t, Config{Timeout: time.Hour})
	ignore := goleak.IgnoreCurrent()
	for _, run := range []func(op func(context.Context) error) error{
		func(op func(context.Context) error) error { return to.Do(t.Context(), op) },
		func(op func(context.Context) error) error {
			return seawall.Pipeline(to).Do(t.Context(), op)
		},
	} {
		err := run(func(context.Context) error {
			assert.NoError(t, goleak.Find(ignore))
			return errors.New("fails")
		})
		assert.Error(t, err)
	}
}

func TestPanic(t *testing.T) {
	bothModes(t, func(t *testing.T, to *Timeout) {
		assert.PanicsWithValue(t, "oops", func() {
			_ = to.Do(t.Context(), func(context.Context) error { panic("oops") })
		})
		synctest.Wait()
		assert.Equal(t, int64(0), to.Metrics().Running)
	})
}

// Abandon mode returns at the deadline, leaving the operation running; its
// result is discarded.
func TestAbandon(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		to := newT(t, Config{Timeout: d, Abandon: true})
		release := make(chan struct{})
		start := time.Now()
		err := to.Do(t.Context(), func(context.Context) error {
			<-release // ignores its context
			return errors.New("discarded")
		})
		assert.Equal(t, d, time.Since(start))
		te := requireTimeout(t, err)
		assert.NoError(t, te.Err)
		assert.Equal(t, Metrics{Timeout: d, Calls: 1, TimedOut: 1, Abandoned: 1, Running: 1}, to.Metrics())

		close(release)
		synctest.Wait()
		assert.Equal(t, int64(0), to.Metrics().Running)
	})
}

func TestAbandonCallerCancelled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		to := newT(t, Config{Timeout: d, Abandon: true})
		ctx, cancel := context.WithCancel(t.Context())
		time.AfterFunc(d/4, cancel)
		release := make(chan struct{})
		err := to.Do(ctx, func(context.Context) error { <-release; return nil })
		assert.Equal(t, context.Canceled, err)
		assert.Equal(t, Metrics{Timeout: d, Calls: 1, Abandoned: 1, Running: 1}, to.Metrics())
		close(release)
		synctest.Wait()
		assert.Equal(t, int64(0), to.Metrics().Running)
	})
}

// Pipeline(retry, timeout): each attempt has the timeout, and an attempt
// that timed out is retried while the caller's context is alive.
func TestPipelineRetryThenTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r, err := retry.New(retry.Config{MaxAttempts: 3, Delay: time.Millisecond, Jitter: retry.NoJitter, Multiplier: 1, Budget: retry.BudgetConfig{Disabled: true}})
		require.NoError(t, err)
		to := newT(t, Config{Timeout: d})
		attempts := 0
		start := time.Now()
		err = seawall.Pipeline(r, to).Do(t.Context(), func(ctx context.Context) error {
			attempts++
			if attempts == 1 {
				return honest(ctx) // times out
			}
			return nil
		})
		assert.NoError(t, err)
		assert.Equal(t, 2, attempts)
		assert.Equal(t, d+time.Millisecond, time.Since(start))
		assert.Equal(t, uint64(1), to.Metrics().TimedOut)

		// Every attempt timing out: retried up to MaxAttempts, and the
		// last timeout is the error.
		attempts = 0
		err = seawall.Pipeline(r, to).Do(t.Context(), func(ctx context.Context) error {
			attempts++
			return honest(ctx)
		})
		assert.Equal(t, 3, attempts)
		assert.ErrorIs(t, err, ErrTimeout)
	})
}

// Pipeline(timeout, retry): the timeout bounds the whole call, retries
// and waits included; the retry stops when its context ends.
func TestPipelineTimeoutThenRetry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r, err := retry.New(retry.Config{MaxAttempts: 100, Delay: 100 * time.Millisecond, Jitter: retry.NoJitter, Multiplier: 1, Budget: retry.BudgetConfig{Disabled: true}})
		require.NoError(t, err)
		to := newT(t, Config{Timeout: d})
		attempts := 0
		start := time.Now()
		err = seawall.Pipeline(to, r).Do(t.Context(), func(ctx context.Context) error {
			attempts++
			if attempts == 3 {
				return honest(ctx) // the third attempt runs into the total timeout
			}
			return errors.New("transient")
		})
		assert.Equal(t, d, time.Since(start))
		assert.Equal(t, 3, attempts)
		requireTimeout(t, err)
	})
}

// The caller's own deadline, reported by the operation, is not retried.
func TestRetryDoesNotRetryCallerDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r, err := retry.New(retry.Config{MaxAttempts: 3, Delay: time.Millisecond})
		require.NoError(t, err)
		to := newT(t, Config{Timeout: d})
		ctx, cancel := context.WithTimeout(t.Context(), d/2)
		defer cancel()
		attempts := 0
		err = seawall.Pipeline(r, to).Do(ctx, func(ctx context.Context) error {
			attempts++
			return honest(ctx)
		})
		assert.Equal(t, 1, attempts)
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		assert.NotErrorIs(t, err, ErrTimeout)
		assert.True(t, retry.DefaultRetryable(&Error{Timeout: d}))
		assert.False(t, retry.DefaultRetryable(context.DeadlineExceeded))
	})
}

func TestNewValidates(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{}, "timeout: Timeout is required (> 0)"},
		{Config{Timeout: -time.Second}, "timeout: Timeout -1s must be > 0"},
	} {
		_, err := New(tc.cfg)
		assert.EqualError(t, err, tc.want)
	}
	to, err := New(Config{Timeout: time.Nanosecond})
	require.NoError(t, err)
	assert.Equal(t, time.Nanosecond, to.Timeout())
}

// A breaker counts a timeout as a failure (the dependency was too slow),
// and a caller's cancellation as nothing.
func TestBreakerClassifiesTimeout(t *testing.T) {
	assert.Equal(t, breaker.Failure, breaker.DefaultClassify(&Error{Timeout: d}))
	assert.Equal(t, breaker.Ignore, breaker.DefaultClassify(context.Canceled))
}
