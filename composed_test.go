package seawall_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seawall-go/seawall"
	"github.com/seawall-go/seawall/breaker"
	"github.com/seawall-go/seawall/bulkhead"
	"github.com/seawall-go/seawall/internal/bubble"
	"github.com/seawall-go/seawall/ratelimit"
	"github.com/seawall-go/seawall/retry"
)

// TestPipelineOfSeawallPoliciesAllocatesNothing composes the four policies
// in the order of the composed benchmark (limiter → retry → breaker →
// bulkhead) and checks that a successful call allocates nothing: each
// implements ChainPolicy.
func TestPipelineOfSeawallPoliciesAllocatesNothing(t *testing.T) {
	lim, r, b, bh := newFourFast(t)
	for _, p := range []seawall.Policy{lim, r, b, bh} {
		_, ok := p.(seawall.ChainPolicy)
		assert.True(t, ok, "%T does not implement seawall.ChainPolicy", p)
	}
	p := seawall.Pipeline(lim, r, b, bh)

	ctx := context.Background()
	calls := 0
	op := func(context.Context) error { calls++; return nil }
	allocs := testing.AllocsPerRun(100, func() {
		if err := p.Do(ctx, op); err != nil {
			t.Fatal(err)
		}
	})
	assert.Zero(t, allocs)
	assert.Equal(t, 101, calls) // AllocsPerRun runs once more to warm up
}

// newFourFast returns the four seawall policies as the composed benchmark
// configures them: on a successful call none refuses, retries or waits.
func newFourFast(t *testing.T) (*ratelimit.Limiter, *retry.Retry, *breaker.Breaker, *bulkhead.Bulkhead) {
	t.Helper()
	lim, err := ratelimit.New(ratelimit.Config{Rate: 1e9, Burst: 1e9})
	require.NoError(t, err)
	r, err := retry.New(retry.Config{})
	require.NoError(t, err)
	b, err := breaker.New(breaker.Config{})
	require.NoError(t, err)
	bh, err := bulkhead.New(bulkhead.Config{})
	require.NoError(t, err)
	return lim, r, b, bh
}

// newFour returns the four seawall policies configured so that a short
// script of failures exercises their slow paths: the limiter refuses, the
// retry retries, the breaker trips and the bulkhead releases slots on
// failure and on panic.
func newFour(t *testing.T) (*ratelimit.Limiter, *retry.Retry, *breaker.Breaker, *bulkhead.Bulkhead) {
	t.Helper()
	lim, err := ratelimit.New(ratelimit.Config{Rate: 0.001, Burst: 15})
	require.NoError(t, err)
	r, err := retry.New(retry.Config{MaxAttempts: 3, Delay: time.Millisecond, Budget: retry.BudgetConfig{Disabled: true}})
	require.NoError(t, err)
	b, err := breaker.New(breaker.Config{ConsecutiveFailures: 4, OpenDuration: time.Hour})
	require.NoError(t, err)
	bh, err := bulkhead.New(bulkhead.Config{MaxConcurrent: 1})
	require.NoError(t, err)
	return lim, r, b, bh
}

// TestPipelineRunsChainsAsDoDoes runs one script of outcomes through a
// Pipeline of the four policies (which passes Chains to DoChain) and through
// the same policies nested by hand with Do, and checks that every call ends
// alike and the policies end in the same state.
func TestPipelineRunsChainsAsDoDoes(t *testing.T) {
	errBoom := errors.New("boom")
	// Each call's attempts take outcomes from the script in turn: nil is a
	// success, "panic" panics, anything else fails.
	script := []any{nil, errBoom, nil, errBoom, errBoom, errBoom, "panic", nil, errBoom, errBoom, errBoom, errBoom, nil}
	type outcome struct {
		err      string
		panicked bool
	}
	run := func(t *testing.T, nested bool) (outs []outcome, st breaker.State, bm bulkhead.Metrics, lm ratelimit.Metrics) {
		lim, r, b, bh := newFour(t)
		i := 0
		op := func(context.Context) error {
			o := script[i%len(script)]
			i++
			switch o := o.(type) {
			case nil:
				return nil
			case string:
				panic(o)
			default:
				return o.(error)
			}
		}
		p := seawall.Pipeline(lim, r, b, bh)
		for range 25 {
			var out outcome
			func() {
				defer func() { out.panicked = recover() != nil }()
				var err error
				if nested {
					err = lim.Do(t.Context(), func(ctx context.Context) error {
						return r.Do(ctx, func(ctx context.Context) error {
							return b.Do(ctx, func(ctx context.Context) error {
								return bh.Do(ctx, op)
							})
						})
					})
				} else {
					err = p.Do(t.Context(), op)
				}
				if err != nil {
					out.err = err.Error()
				}
			}()
			outs = append(outs, out)
		}
		return outs, b.State(), bh.Metrics(), lim.Metrics()
	}
	synctest.Test(t, func(t *testing.T) {
		wantOuts, wantState, wantBH, wantLim := run(t, true)
		gotOuts, gotState, gotBH, gotLim := run(t, false)
		assert.Equal(t, wantOuts, gotOuts)
		assert.Equal(t, wantState, gotState)
		assert.Equal(t, breaker.Open, gotState, "the script trips the breaker")
		assert.Equal(t, wantBH, gotBH)
		assert.Zero(t, gotBH.InFlight, "every slot released, panics included")
		assert.Equal(t, wantLim, gotLim)
		assert.Positive(t, gotLim.Limited, "the script runs the limiter dry")
	})
}

// TestRetryDoesNotWaitOutAnOpenBreaker is the regression test of a retry
// outside a breaker: the breaker trips on the first failure and stays open
// 5s, and the context has no deadline. The open breaker's rejection carries
// a retry-after hint, which a retry had waited out, sleeping every caller to
// the half-open instant. The call must run op once and end at the
// breaker's first refusal, with an error matching breaker.ErrOpen; a
// Retryable that accepts seawall.ErrCircuitOpen opts in to waiting.
func TestRetryDoesNotWaitOutAnOpenBreaker(t *testing.T) {
	errDown := errors.New("down")
	setup := func(t *testing.T, retryable func(error) bool) seawall.Policy {
		t.Helper()
		r, err := retry.New(retry.Config{MaxAttempts: 3, Delay: time.Millisecond, Jitter: retry.NoJitter,
			Retryable: retryable, Budget: retry.BudgetConfig{Disabled: true}})
		require.NoError(t, err)
		b, err := breaker.New(breaker.Config{ConsecutiveFailures: 1, OpenDuration: 5 * time.Second})
		require.NoError(t, err)
		return seawall.Pipeline(r, b)
	}
	t.Run("default", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			p := setup(t, nil)
			runs := 0
			start := time.Now()
			err := p.Do(context.Background(), func(context.Context) error { runs++; return errDown })
			assert.Equal(t, 1, runs, "op runs once: the retry stops at the open breaker")
			assert.Equal(t, time.Millisecond, time.Since(start),
				"the call returns after one backoff delay, at the breaker's first refusal")
			assert.ErrorIs(t, err, breaker.ErrOpen)
			assert.ErrorIs(t, err, seawall.ErrCircuitOpen)
		})
	})
	t.Run("opt in to waiting", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			p := setup(t, func(err error) bool {
				return errors.Is(err, seawall.ErrCircuitOpen) || retry.DefaultRetryable(err)
			})
			runs := 0
			start := time.Now()
			err := p.Do(context.Background(), func(context.Context) error {
				runs++
				if runs == 1 {
					return errDown
				}
				return nil
			})
			require.NoError(t, err)
			assert.Equal(t, 2, runs, "the half-open probe succeeds")
			assert.Equal(t, 5*time.Second, time.Since(start), "the retry waited the breaker's hint")
		})
	})
}

// TestPipelinePanicReleasesEverything panics in the operation of the four
// policies composed as in the benchmark (limiter → retry → breaker →
// bulkhead), with the breaker half-open so that the call is its only
// probe, the bulkhead of one slot and an attempt timeout on the retry. The
// panic must reach the caller unchanged, after op ran once (a panic is not
// retried), and leave nothing held: the bulkhead slot is free, the probe
// is recorded as a failure (the breaker re-opens, and admits the next
// probe after its open duration, which a leaked probe slot would block),
// and the attempt's context is cancelled. The limiter holds no reservation
// (Try takes a token, as Limiter.Do does, and a token spent is not given
// back): its counters show the one call allowed.
func TestPipelinePanicReleasesEverything(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lim, err := ratelimit.New(ratelimit.Config{Rate: 1000, Burst: 10})
		require.NoError(t, err)
		r, err := retry.New(retry.Config{MaxAttempts: 3, AttemptTimeout: time.Minute})
		require.NoError(t, err)
		b, err := breaker.New(breaker.Config{ConsecutiveFailures: 1, OpenDuration: time.Second, HalfOpenProbes: 1})
		require.NoError(t, err)
		bh, err := bulkhead.New(bulkhead.Config{MaxConcurrent: 1})
		require.NoError(t, err)
		p := seawall.Pipeline(lim, r, b, bh)
		ctx := context.Background()

		// Trip the breaker, and wait out its open period: the next call is
		// the half-open probe.
		p1, err := b.Allow()
		require.NoError(t, err)
		p1.Done(errors.New("down"))
		require.Equal(t, breaker.Open, b.State())
		bubble.Sleep(time.Second)
		require.Equal(t, breaker.HalfOpen, b.State())

		runs := 0
		var attemptCtx context.Context
		var got any
		func() {
			defer func() { got = recover() }()
			_ = p.Do(ctx, func(ctx context.Context) error {
				runs++
				attemptCtx = ctx
				assert.Equal(t, 1, bh.Metrics().InFlight, "op runs in the slot")
				panic("boom")
			})
		}()
		assert.Equal(t, "boom", got, "the panic reaches the caller unchanged")
		assert.Equal(t, 1, runs, "a panic is not retried")
		assert.Zero(t, bh.Metrics().InFlight, "the bulkhead slot is released")
		require.NotNil(t, attemptCtx)
		assert.ErrorIs(t, attemptCtx.Err(), context.Canceled, "the attempt's context is released")
		assert.Equal(t, breaker.Open, b.State(), "the probe is recorded as a failure")
		assert.Equal(t, uint64(2), b.Metrics().Failures, "the trip, and the probe")
		assert.Equal(t, ratelimit.Metrics{Allowed: 1}, lim.Metrics())

		// Nothing is left held: after the open period the next call is
		// admitted as a probe, runs in the slot and closes the breaker.
		bubble.Sleep(time.Second)
		require.NoError(t, p.Do(ctx, func(context.Context) error { return nil }))
		assert.Equal(t, breaker.Closed, b.State())
		assert.Zero(t, bh.Metrics().InFlight)
	})
}

// TestChainsAllocateNothing: running a chain allocates nothing, whether it
// is a pipeline of seawall policies (nested pipelines included), or a
// single operation (seawall.Op) passed to each policy's DoChain.
func TestChainsAllocateNothing(t *testing.T) {
	lim, r, b, bh := newFourFast(t)
	ctx := context.Background()
	calls := 0
	op := func(context.Context) error { calls++; return nil }

	nested := seawall.Pipeline(seawall.Pipeline(lim, r), seawall.Pipeline(), seawall.Pipeline(b, seawall.Pipeline(bh)))
	assert.Zero(t, testing.AllocsPerRun(100, func() {
		if err := nested.Do(ctx, op); err != nil {
			t.Fatal(err)
		}
	}), "nested pipelines")
	assert.Equal(t, 101, calls)

	for _, p := range []seawall.ChainPolicy{lim, r, b, bh} {
		calls = 0
		assert.Zero(t, testing.AllocsPerRun(100, func() {
			if err := p.DoChain(ctx, seawall.Op(op)); err != nil {
				t.Fatal(err)
			}
		}), "%T.DoChain(ctx, seawall.Op(op))", p)
		assert.Equal(t, 101, calls)
	}
}
