package seawall_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seawall-go/seawall"
)

type ctxKey string

// recorder logs, in order, when each policy is entered and left and when the
// operation runs.
type recorder struct{ log []string }

// policy returns a pass-through policy that records its entry and exit.
func (r *recorder) policy(name string) seawall.Policy {
	return seawall.PolicyFunc(func(ctx context.Context, op func(context.Context) error) error {
		r.log = append(r.log, name+">")
		err := op(ctx)
		r.log = append(r.log, "<"+name)
		return err
	})
}

func (r *recorder) op(context.Context) error {
	r.log = append(r.log, "op")
	return nil
}

func TestPipelineOrderFirstIsOutermost(t *testing.T) {
	var r recorder
	p := seawall.Pipeline(r.policy("a"), r.policy("b"), r.policy("c"))

	require.NoError(t, p.Do(context.Background(), r.op))
	assert.Equal(t, []string{"a>", "b>", "c>", "op", "<c", "<b", "<a"}, r.log)
}

func TestPipelineReusable(t *testing.T) {
	var r recorder
	p := seawall.Pipeline(r.policy("a"), r.policy("b"))

	for range 3 {
		r.log = nil
		require.NoError(t, p.Do(context.Background(), r.op))
		assert.Equal(t, []string{"a>", "b>", "op", "<b", "<a"}, r.log)
	}
}

func TestPipelineCopiesItsArguments(t *testing.T) {
	var r recorder
	policies := []seawall.Policy{r.policy("a"), r.policy("b")}
	p := seawall.Pipeline(policies...)
	policies[0] = r.policy("x") // must not affect p

	require.NoError(t, p.Do(context.Background(), r.op))
	assert.Equal(t, []string{"a>", "b>", "op", "<b", "<a"}, r.log)
}

// stackDepth returns the number of frames above the caller.
func stackDepth() int {
	pcs := make([]uintptr, 512)
	return runtime.Callers(0, pcs)
}

func TestPipelineFlattensNestedPipelines(t *testing.T) {
	want := []string{"a>", "b>", "c>", "op", "<c", "<b", "<a"}

	run := func(t *testing.T, build func(r *recorder) seawall.Policy) int {
		t.Helper()
		var r recorder
		depth := 0
		err := build(&r).Do(context.Background(), func(ctx context.Context) error {
			depth = stackDepth()
			return r.op(ctx)
		})
		require.NoError(t, err)
		assert.Equal(t, want, r.log)
		return depth
	}

	flat := run(t, func(r *recorder) seawall.Policy {
		return seawall.Pipeline(r.policy("a"), r.policy("b"), r.policy("c"))
	})
	for name, build := range map[string]func(r *recorder) seawall.Policy{
		"inner last": func(r *recorder) seawall.Policy {
			return seawall.Pipeline(r.policy("a"), seawall.Pipeline(r.policy("b"), r.policy("c")))
		},
		"inner first": func(r *recorder) seawall.Policy {
			return seawall.Pipeline(seawall.Pipeline(r.policy("a"), r.policy("b")), r.policy("c"))
		},
		"deeply nested": func(r *recorder) seawall.Policy {
			return seawall.Pipeline(seawall.Pipeline(seawall.Pipeline(r.policy("a")),
				seawall.Pipeline(r.policy("b"), seawall.Pipeline(r.policy("c")))))
		},
		"with empty pipelines": func(r *recorder) seawall.Policy {
			return seawall.Pipeline(seawall.Pipeline(), r.policy("a"), seawall.Pipeline(),
				r.policy("b"), seawall.Pipeline(seawall.Pipeline()), r.policy("c"))
		},
	} {
		t.Run(name, func(t *testing.T) {
			// Same order, and no extra layer of wrapping: op runs at the same
			// stack depth as in the flat pipeline.
			assert.Equal(t, flat, run(t, build), "op ran at a different stack depth: nested pipeline was not flattened")
		})
	}
}

func TestPipelineEmptyRunsOpDirectly(t *testing.T) {
	ctx := context.WithValue(context.Background(), ctxKey("k"), "v")
	errOp := errors.New("op failed")

	for _, p := range []seawall.Policy{seawall.Pipeline(), seawall.Pipeline(seawall.Pipeline())} {
		calls := 0
		err := p.Do(ctx, func(got context.Context) error {
			calls++
			assert.True(t, got == ctx, "op got a different context")
			return errOp
		})
		assert.Equal(t, 1, calls)
		assert.True(t, err == errOp, "got %v, want op's error unchanged", err)
	}
}

func TestPipelineSinglePolicyCalledDirectly(t *testing.T) {
	ctx := context.WithValue(context.Background(), ctxKey("k"), "v")
	var r recorder
	var policyCtx, opCtx context.Context
	inner := r.policy("a")
	p := seawall.Pipeline(seawall.PolicyFunc(func(ctx context.Context, op func(context.Context) error) error {
		policyCtx = ctx
		return inner.Do(ctx, op)
	}))

	err := p.Do(ctx, func(ctx context.Context) error {
		opCtx = ctx
		return r.op(ctx)
	})
	require.NoError(t, err)
	assert.Equal(t, []string{"a>", "op", "<a"}, r.log)
	assert.True(t, policyCtx == ctx, "policy got a different context")
	assert.True(t, opCtx == ctx, "op got a different context")
}

func TestPipelinePolicyReplacesContext(t *testing.T) {
	with := func(key, val string) seawall.Policy {
		return seawall.PolicyFunc(func(ctx context.Context, op func(context.Context) error) error {
			return op(context.WithValue(ctx, ctxKey(key), val))
		})
	}
	var seenByB any
	b := seawall.PolicyFunc(func(ctx context.Context, op func(context.Context) error) error {
		seenByB = ctx.Value(ctxKey("a"))
		return op(context.WithValue(ctx, ctxKey("b"), "from b"))
	})
	p := seawall.Pipeline(with("a", "from a"), b, with("c", "from c"))

	var got [3]any
	err := p.Do(context.Background(), func(ctx context.Context) error {
		got = [3]any{ctx.Value(ctxKey("a")), ctx.Value(ctxKey("b")), ctx.Value(ctxKey("c"))}
		return nil
	})
	require.NoError(t, err)
	assert.Equal(t, "from a", seenByB, "inner policy must see the outer policy's context")
	assert.Equal(t, [3]any{"from a", "from b", "from c"}, got)
}

func TestPipelineCancellationReachesOp(t *testing.T) {
	var r recorder
	p := seawall.Pipeline(r.policy("a"), r.policy("b"))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()

	err := p.Do(ctx, func(ctx context.Context) error { return ctx.Err() })
	assert.True(t, err == context.Canceled, "got %v, want context.Canceled unchanged", err)
}

func TestPipelineReturnsOpErrorUnchanged(t *testing.T) {
	var r recorder
	errOp := errors.New("op failed")
	wrapped := fmt.Errorf("call: %w", errOp)
	p := seawall.Pipeline(r.policy("a"), r.policy("b"), r.policy("c"))

	for _, want := range []error{errOp, wrapped} {
		err := p.Do(context.Background(), func(context.Context) error { return want })
		assert.True(t, err == want, "got %v, want %v unchanged", err, want)
		assert.ErrorIs(t, err, errOp)
	}
}

func TestPipelineRefusingPolicyStopsChain(t *testing.T) {
	var r recorder
	errRefused := seawall.NewRejection("test: refused")
	refuse := seawall.PolicyFunc(func(context.Context, func(context.Context) error) error {
		r.log = append(r.log, "refuse")
		return errRefused
	})
	p := seawall.Pipeline(r.policy("a"), refuse, r.policy("c"))

	err := p.Do(context.Background(), r.op)
	assert.True(t, err == errRefused, "got %v, want the refusal unchanged", err)
	assert.ErrorIs(t, err, seawall.ErrRejected)
	assert.Equal(t, []string{"a>", "refuse", "<a"}, r.log, "neither the inner policy nor op may run")
}

func TestPipelineNilPolicyPanics(t *testing.T) {
	var r recorder
	assert.PanicsWithValue(t, "seawall: Pipeline: policy 0 is nil", func() {
		seawall.Pipeline(nil, r.policy("a"))
	})
	assert.PanicsWithValue(t, "seawall: Pipeline: policy 1 is nil", func() {
		seawall.Pipeline(r.policy("a"), nil, r.policy("b"))
	})
	policies := make([]seawall.Policy, 13)
	for i := range 12 {
		policies[i] = r.policy("p")
	}
	assert.PanicsWithValue(t, "seawall: Pipeline: policy 12 is nil", func() {
		seawall.Pipeline(policies...)
	})
	// Typed nils would crash on the first call just the same.
	var nilFunc seawall.PolicyFunc
	assert.PanicsWithValue(t, "seawall: Pipeline: policy 1 is nil", func() {
		seawall.Pipeline(r.policy("a"), nilFunc)
	})
	var nilPtr *nopPolicy
	assert.PanicsWithValue(t, "seawall: Pipeline: policy 0 is nil", func() {
		seawall.Pipeline(nilPtr)
	})
	assert.NotPanics(t, func() { seawall.Pipeline(nopPolicy{}) }, "a non-pointer struct is never nil")
}

type nopPolicy struct{}

func (nopPolicy) Do(ctx context.Context, op func(context.Context) error) error { return op(ctx) }

// TestGetHedged: a policy may run attempts concurrently (hedging); Get must
// return a successful attempt's value without a data race (run with -race).
func TestGetHedged(t *testing.T) {
	var stragglers sync.WaitGroup
	hedge := seawall.PolicyFunc(func(ctx context.Context, op func(context.Context) error) error {
		errs := make(chan error, 2)
		for range 2 {
			stragglers.Go(func() { errs <- op(ctx) })
		}
		// Return on the first success: the other attempt may still be
		// running, and may succeed after Get has read its result.
		err := <-errs
		if err == nil {
			return nil
		}
		return <-errs
	})
	var n atomic.Int32
	for range 50 {
		v, err := seawall.Get(context.Background(), hedge, func(context.Context) (int32, error) {
			return 10 + n.Add(1)%2, nil
		})
		require.NoError(t, err)
		assert.Contains(t, []int32{10, 11}, v)
	}
	stragglers.Wait()
}

// retryOnce is a retry-like policy: it runs op again after a first failure.
var retryOnce = seawall.PolicyFunc(func(ctx context.Context, op func(context.Context) error) error {
	if err := op(ctx); err == nil {
		return nil
	}
	return op(ctx)
})

func TestGetReturnsValue(t *testing.T) {
	var r recorder
	p := seawall.Pipeline(r.policy("a"), r.policy("b"))
	ctx := context.WithValue(context.Background(), ctxKey("k"), "v")

	got, err := seawall.Get(ctx, p, func(ctx context.Context) (string, error) {
		return "account " + ctx.Value(ctxKey("k")).(string), nil
	})
	require.NoError(t, err)
	assert.Equal(t, "account v", got)
	assert.Equal(t, []string{"a>", "b>", "<b", "<a"}, r.log)
}

func TestGetFailureReturnsZeroValue(t *testing.T) {
	errOp := errors.New("op failed")

	got, err := seawall.Get(context.Background(), seawall.Pipeline(),
		func(context.Context) (*int, error) {
			n := 42
			return &n, errOp // a value returned with an error is discarded
		})
	assert.True(t, err == errOp, "got %v, want op's error unchanged", err)
	assert.Nil(t, got)

	errRefused := seawall.NewRejection("test: refused")
	refuse := seawall.PolicyFunc(func(context.Context, func(context.Context) error) error { return errRefused })
	calls := 0
	n, err := seawall.Get(context.Background(), refuse, func(context.Context) (int, error) {
		calls++
		return 7, nil
	})
	assert.True(t, err == errRefused, "got %v, want the refusal unchanged", err)
	assert.Zero(t, n)
	assert.Zero(t, calls)
}

func TestGetReturnsSuccessfulAttempt(t *testing.T) {
	errFlaky := errors.New("flaky")
	attempt := 0
	got, err := seawall.Get(context.Background(), retryOnce, func(context.Context) (string, error) {
		attempt++
		if attempt == 1 {
			return "first (failed)", errFlaky
		}
		return "second", nil
	})
	require.NoError(t, err)
	assert.Equal(t, 2, attempt)
	assert.Equal(t, "second", got)

	// Both attempts fail: zero value, last error, even though attempts
	// returned values alongside their errors.
	attempt = 0
	got, err = seawall.Get(context.Background(), retryOnce, func(context.Context) (string, error) {
		attempt++
		return fmt.Sprint("attempt ", attempt), fmt.Errorf("attempt %d: %w", attempt, errFlaky)
	})
	assert.EqualError(t, err, "attempt 2: flaky")
	assert.ErrorIs(t, err, errFlaky)
	assert.Empty(t, got)
}

func TestNewRejection(t *testing.T) {
	errOpen := seawall.NewRejection("breaker: open")
	errFull := seawall.NewRejection("bulkhead: full")
	errOpen2 := seawall.NewRejection("breaker: open") // same text, distinct sentinel

	assert.EqualError(t, errOpen, "breaker: open")
	for _, e := range []error{errOpen, errFull, errOpen2} {
		assert.ErrorIs(t, e, seawall.ErrRejected)
		assert.ErrorIs(t, e, e)
		assert.ErrorIs(t, fmt.Errorf("call: %w", e), seawall.ErrRejected)
		assert.ErrorIs(t, fmt.Errorf("call: %w", e), e)
	}
	assert.NotErrorIs(t, errOpen, errFull)
	assert.NotErrorIs(t, errFull, errOpen)
	assert.NotErrorIs(t, errOpen, errOpen2)
	assert.NotErrorIs(t, fmt.Errorf("call: %w", errOpen), errFull)
	assert.NotErrorIs(t, seawall.ErrRejected, errOpen, "the general sentinel must not match a specific one")
	assert.NotErrorIs(t, errors.New("breaker: open"), seawall.ErrRejected, "matching is by identity, not text")

	// Hints and permanence keep the match.
	hinted := seawall.WithRetryAfter(errOpen, time.Second)
	assert.ErrorIs(t, hinted, seawall.ErrRejected)
	assert.ErrorIs(t, hinted, errOpen)
	assert.ErrorIs(t, errors.Join(errors.New("other"), errFull), seawall.ErrRejected)
}

func TestWithRetryAfter(t *testing.T) {
	assert.NoError(t, seawall.WithRetryAfter(nil, time.Second))

	base := errors.New("rate limited")
	err := seawall.WithRetryAfter(base, 3*time.Second)
	assert.EqualError(t, err, "rate limited", "the hint must not change the message")
	assert.True(t, errors.Unwrap(err) == base, "must unwrap to the original error")
	assert.ErrorIs(t, err, base)
	d, ok := seawall.RetryAfter(err)
	assert.True(t, ok)
	assert.Equal(t, 3*time.Second, d)

	d, ok = seawall.RetryAfter(seawall.WithRetryAfter(base, -time.Second))
	assert.True(t, ok, "a negative hint is taken as zero, which is still a hint")
	assert.Equal(t, time.Duration(0), d)

	d, ok = seawall.RetryAfter(seawall.WithRetryAfter(base, 0))
	assert.True(t, ok)
	assert.Equal(t, time.Duration(0), d)

	var target *throttled
	assert.ErrorAs(t, seawall.WithRetryAfter(&throttled{after: -1}, time.Second), &target)
}

// throttled is an error type of the kind a transport might define.
type throttled struct{ after time.Duration }

func (e *throttled) Error() string             { return "throttled" }
func (e *throttled) RetryAfter() time.Duration { return e.after }

var _ seawall.RetryAfterError = (*throttled)(nil)

// transportError is a transport's error that always implements the hint
// interface, answering -1 ("no hint") when it has none, and wraps a cause.
type transportError struct {
	after time.Duration
	err   error
}

func (e *transportError) Error() string             { return "transport: " + e.err.Error() }
func (e *transportError) Unwrap() error             { return e.err }
func (e *transportError) RetryAfter() time.Duration { return e.after }

func TestRetryAfter(t *testing.T) {
	base := errors.New("overloaded")
	hinted := seawall.WithRetryAfter(base, 2*time.Second)

	for _, tt := range []struct {
		name   string
		err    error
		want   time.Duration
		wantOK bool
	}{
		{"nil", nil, 0, false},
		{"no hint", base, 0, false},
		{"wrapped no hint", fmt.Errorf("call: %w", base), 0, false},
		{"direct", hinted, 2 * time.Second, true},
		{"wrapped", fmt.Errorf("call: %w", hinted), 2 * time.Second, true},
		{"wrapped twice", fmt.Errorf("a: %w", fmt.Errorf("b: %w", hinted)), 2 * time.Second, true},
		{"joined", errors.Join(errors.New("other"), hinted), 2 * time.Second, true},
		{"joined in wrap", fmt.Errorf("call: %w", errors.Join(base, hinted)), 2 * time.Second, true},
		{"multi-%w", fmt.Errorf("%w and %w", base, hinted), 2 * time.Second, true},
		{"on permanent", seawall.Permanent(hinted), 2 * time.Second, true},
		{"custom type", &throttled{after: 5 * time.Second}, 5 * time.Second, true},
		{"custom type wrapped", fmt.Errorf("call: %w", &throttled{after: 5 * time.Second}), 5 * time.Second, true},
		{"custom type zero", &throttled{after: 0}, 0, true},
		{"custom type negative", &throttled{after: -time.Second}, 0, false},
		{"custom type negative wrapped", fmt.Errorf("call: %w", &throttled{after: -1}), 0, false},
		{"outermost wins", seawall.WithRetryAfter(fmt.Errorf("call: %w", hinted), 7*time.Second), 7 * time.Second, true},
		{"outermost custom wins", seawall.WithRetryAfter(&throttled{after: time.Minute}, time.Second), time.Second, true},
		{"no hint outside does not hide one inside", &transportError{after: -1, err: hinted}, 2 * time.Second, true},
		{"no hint outside, none inside", &transportError{after: -1, err: base}, 0, false},
		{"no hint outside a join", &transportError{after: -1, err: errors.Join(base, &throttled{after: time.Second})}, time.Second, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d, ok := seawall.RetryAfter(tt.err)
			assert.Equal(t, tt.wantOK, ok)
			assert.Equal(t, tt.want, d)
		})
	}
}

func TestPermanent(t *testing.T) {
	assert.NoError(t, seawall.Permanent(nil))

	base := errors.New("invalid account id")
	err := seawall.Permanent(base)
	assert.EqualError(t, err, "invalid account id", "marking must not change the message")
	assert.True(t, errors.Unwrap(err) == base, "must unwrap to the original error")
	assert.ErrorIs(t, err, base)
	var target *throttled
	assert.ErrorAs(t, seawall.Permanent(&throttled{}), &target)

	assert.True(t, seawall.IsPermanent(err))
	assert.True(t, seawall.IsPermanent(fmt.Errorf("call: %w", err)))
	assert.True(t, seawall.IsPermanent(fmt.Errorf("a: %w", fmt.Errorf("b: %w", err))))
	assert.True(t, seawall.IsPermanent(errors.Join(errors.New("other"), err)))
	assert.True(t, seawall.IsPermanent(seawall.WithRetryAfter(err, time.Second)))
	assert.True(t, seawall.IsPermanent(seawall.Permanent(err)))

	assert.False(t, seawall.IsPermanent(nil))
	assert.False(t, seawall.IsPermanent(base))
	assert.False(t, seawall.IsPermanent(fmt.Errorf("call: %w", base)))
	assert.False(t, seawall.IsPermanent(seawall.NewRejection("breaker: open")))
}

func BenchmarkPipeline(b *testing.B) {
	pass := seawall.PolicyFunc(func(ctx context.Context, op func(context.Context) error) error {
		return op(ctx)
	})
	p := seawall.Pipeline(pass, pass, pass)
	ctx := context.Background()
	op := func(context.Context) error { return nil }
	b.ReportAllocs()
	for b.Loop() {
		if err := p.Do(ctx, op); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRetryAfter(b *testing.B) {
	err := fmt.Errorf("a: %w", fmt.Errorf("b: %w", seawall.WithRetryAfter(errors.New("c"), time.Second)))
	b.ReportAllocs()
	for b.Loop() {
		if d, ok := seawall.RetryAfter(err); !ok || d != time.Second {
			b.Fatal(d, ok)
		}
	}
}

func TestIsOverload(t *testing.T) {
	shed := seawall.NewRejection("service: overloaded")
	open := fmt.Errorf("%w: %w", seawall.NewRejection("breaker: open"), seawall.ErrCircuitOpen)
	cases := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"plain error", errors.New("boom"), false},
		{"plain error with a hint", seawall.WithRetryAfter(errors.New("boom"), time.Second), false},
		{"rejection without a hint", shed, false},
		{"rejection with a hint", seawall.WithRetryAfter(shed, time.Second), true},
		{"rejection with a zero hint", seawall.WithRetryAfter(shed, 0), true},
		{"rejection with a pushback", seawall.WithPushback(shed, time.Second), true},
		{"wrapped rejection with a hint", fmt.Errorf("call: %w", seawall.WithRetryAfter(shed, time.Second)), true},
		{"open breaker with a hint", seawall.WithRetryAfter(open, time.Second), false},
	}
	for _, c := range cases {
		assert.Equal(t, c.want, seawall.IsOverload(c.err), c.name)
	}
}
