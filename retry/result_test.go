package retry

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seawall-go/seawall"
)

// statuses is an operation that returns vals[i] on attempt i (the last one
// beyond the list), and records when each attempt started.
type statuses struct {
	vals   []string
	errs   []error // errs[i], if any, is attempt i's error
	starts []time.Time
}

func (s *statuses) op(context.Context) (string, error) {
	s.starts = append(s.starts, time.Now())
	i := len(s.starts) - 1
	var err error
	if i < len(s.errs) {
		err = s.errs[i]
	}
	return s.vals[min(i, len(s.vals)-1)], err
}

func pending(s string) bool { return s == "pending" }

func TestGetIfRetriesUntilAccepted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var retried []error
		r := mustNew(t, Config{MaxAttempts: 5, Delay: time.Second, Jitter: NoJitter, Budget: noBudget,
			OnRetry: func(_ int, err error, _ time.Duration) { retried = append(retried, err) }})
		s := &statuses{vals: []string{"pending", "pending", "done"}}
		start := time.Now()
		v, err := GetIf(t.Context(), r, s.op, pending)
		require.NoError(t, err)
		assert.Equal(t, "done", v)
		assert.Len(t, s.starts, 3)
		assert.Equal(t, 3*time.Second, time.Since(start), "waits the backoff: 1s, then 2s")
		assert.Equal(t, []error{ErrResult, ErrResult}, retried)
		assert.Equal(t, uint64(2), r.Metrics().Retries)
	})
}

// Errors and rejected values mix: each is retried as it comes.
func TestGetIfErrorsAndValues(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := mustNew(t, Config{MaxAttempts: 5, Delay: time.Millisecond, Budget: noBudget})
		s := &statuses{vals: []string{"", "pending", "done"}, errs: []error{errBoom}}
		v, err := GetIf(t.Context(), r, s.op, pending)
		require.NoError(t, err)
		assert.Equal(t, "done", v)
		assert.Len(t, s.starts, 3)
	})
}

func TestGetIfExhausted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := mustNew(t, Config{MaxAttempts: 3, Delay: time.Millisecond, Budget: noBudget})
		s := &statuses{vals: []string{"pending"}}
		v, err := GetIf(t.Context(), r, s.op, pending)
		assert.Equal(t, "pending", v, "the last value is returned")
		require.ErrorIs(t, err, ErrResult)
		var re *Error
		require.ErrorAs(t, err, &re)
		assert.Equal(t, 3, re.Attempts)
		assert.Nil(t, re.Reason)
		assert.Equal(t, "retry: 3 attempts; last error: retry: result not accepted", err.Error())
		m := r.Metrics()
		assert.Equal(t, uint64(1), m.GaveUpBy[ReasonAttempts])
		assert.Equal(t, uint64(2), m.Retries)
	})
}

// A value retried even when Retryable would retry no error: the caller
// classified it.
func TestGetIfIgnoresRetryable(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := mustNew(t, Config{MaxAttempts: 2, Delay: time.Millisecond, Budget: noBudget,
			Retryable: func(error) bool { return false }})
		s := &statuses{vals: []string{"pending", "done"}}
		v, err := GetIf(t.Context(), r, s.op, pending)
		require.NoError(t, err)
		assert.Equal(t, "done", v)
		// An error is still classified by Retryable.
		s = &statuses{vals: []string{"", "done"}, errs: []error{errBoom}}
		_, err = GetIf(t.Context(), r, s.op, pending)
		assert.ErrorIs(t, err, errBoom)
		assert.Len(t, s.starts, 1)
	})
}

func TestGetIfBudgetRefuses(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// No floor, no traffic before: the budget lends no retry at all.
		r := mustNew(t, Config{MaxAttempts: 3, Delay: time.Millisecond, Budget: BudgetConfig{NoFloor: true}})
		s := &statuses{vals: []string{"pending", "done"}}
		v, err := GetIf(t.Context(), r, s.op, pending)
		assert.Equal(t, "pending", v)
		assert.ErrorIs(t, err, ErrResult)
		assert.ErrorIs(t, err, ErrBudgetExhausted)
		assert.ErrorIs(t, err, seawall.ErrRejected)
		assert.Len(t, s.starts, 1)
		m := r.Metrics()
		assert.Equal(t, uint64(1), m.GaveUpBy[ReasonBudget])
		assert.Equal(t, uint64(1), m.Budget.Requests)
	})
}

func TestGetIfCancelledBetweenAttempts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := mustNew(t, Config{MaxAttempts: 5, Delay: time.Hour, Jitter: NoJitter, Budget: noBudget})
		ctx, cancel := context.WithCancel(t.Context())
		s := &statuses{vals: []string{"pending"}}
		time.AfterFunc(time.Minute, cancel)
		start := time.Now()
		v, err := GetIf(ctx, r, s.op, pending)
		assert.Equal(t, time.Minute, time.Since(start), "returns when the context ends, not after the delay")
		assert.Equal(t, "pending", v)
		assert.ErrorIs(t, err, context.Canceled)
		assert.ErrorIs(t, err, ErrResult)
		assert.Len(t, s.starts, 1)
		assert.Equal(t, uint64(1), r.Metrics().GaveUpBy[ReasonContext])
	})
}

func TestGetIfNeverSleepsPastDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := mustNew(t, Config{MaxAttempts: 5, Delay: time.Hour, Jitter: NoJitter, Budget: noBudget})
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		s := &statuses{vals: []string{"pending"}}
		start := time.Now()
		_, err := GetIf(ctx, r, s.op, pending)
		assert.Zero(t, time.Since(start))
		assert.ErrorIs(t, err, ErrDeadline)
		assert.ErrorIs(t, err, ErrResult)
	})
}

func TestGetIfNilPredicate(t *testing.T) {
	r := mustNew(t, Config{})
	v, err := GetIf(t.Context(), r, (&statuses{vals: []string{"pending"}}).op, nil)
	require.NoError(t, err)
	assert.Equal(t, "pending", v)
}

func TestGetIfFirstSuccessAllocatesNothing(t *testing.T) {
	for _, bc := range []BudgetConfig{{}, {Mode: TokensMode}, noBudget} {
		r := mustNew(t, Config{Budget: bc})
		ctx := context.Background()
		op := func(context.Context) (int, error) { return 200, nil }
		retryIf := func(code int) bool { return code >= 500 }
		allocs := testing.AllocsPerRun(100, func() {
			if v, err := GetIf(ctx, r, op, retryIf); err != nil || v != 200 {
				panic(err)
			}
		})
		assert.Zero(t, allocs, "budget %+v", bc)
	}
}

// The budget counts a call retried on its value like any other: a request,
// a failed attempt per rejected value, and a retry.
func TestGetIfCountsInBudget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := mustNew(t, Config{MaxAttempts: 3, Delay: time.Millisecond, Budget: BudgetConfig{Mode: TokensMode, MaxTokens: 10}})
		s := &statuses{vals: []string{"pending", "done"}}
		_, err := GetIf(t.Context(), r, s.op, pending)
		require.NoError(t, err)
		assert.Equal(t, uint64(1), r.Metrics().Retries)
		b := r.Budget().Metrics()
		assert.Equal(t, uint64(1), b.Requests)
		assert.Equal(t, uint64(1), b.Retries)
	})
}

// The loop path (MaxElapsed or AttemptTimeout set) behaves as the fast one.
func TestGetIfSlowPath(t *testing.T) {
	for _, cfg := range []Config{
		{MaxElapsed: time.Hour},
		{AttemptTimeout: time.Minute},
	} {
		synctest.Test(t, func(t *testing.T) {
			cfg.MaxAttempts, cfg.Delay, cfg.Budget = 3, time.Millisecond, noBudget
			r := mustNew(t, cfg)
			s := &statuses{vals: []string{"pending", "done"}}
			v, err := GetIf(t.Context(), r, s.op, pending)
			require.NoError(t, err)
			assert.Equal(t, "done", v)

			v, err = GetIf(t.Context(), r, (&statuses{vals: []string{"pending"}}).op, pending)
			assert.Equal(t, "pending", v)
			assert.ErrorIs(t, err, ErrResult)

			s = &statuses{vals: []string{"partial"}, errs: []error{seawall.Permanent(errBoom)}}
			v, err = GetIf(t.Context(), r, s.op, pending)
			assert.Equal(t, "partial", v, "the last attempt's value, even with an error")
			assert.ErrorIs(t, err, errBoom)
			assert.Len(t, s.starts, 1)
		})
	}
}

// A first attempt whose error is not retried ends the call at once.
func TestGetIfNotRetryable(t *testing.T) {
	r := mustNew(t, Config{Budget: noBudget})
	s := &statuses{vals: []string{"partial"}, errs: []error{seawall.Permanent(errBoom)}}
	v, err := GetIf(t.Context(), r, s.op, pending)
	assert.Equal(t, "partial", v)
	var re *Error
	require.ErrorAs(t, err, &re)
	assert.Equal(t, 1, re.Attempts)
	assert.Len(t, s.starts, 1)
}

func TestGetIfPanicReleasesAttempt(t *testing.T) {
	r := mustNew(t, Config{AttemptTimeout: time.Minute, Budget: noBudget})
	var attemptCtx context.Context
	assert.PanicsWithValue(t, "kaboom", func() {
		_, _ = GetIf(t.Context(), r, func(ctx context.Context) (int, error) {
			attemptCtx = ctx
			panic("kaboom")
		}, nil)
	})
	require.NotNil(t, attemptCtx)
	assert.ErrorIs(t, attemptCtx.Err(), context.Canceled, "the attempt's context was released")
}
