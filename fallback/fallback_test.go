package fallback_test

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
	"github.com/seawall-go/seawall/fallback"
)

var errDown = errors.New("down")

func mustNew[T any](t testing.TB, cfg fallback.Config[T]) *fallback.Fallback[T] {
	t.Helper()
	f, err := fallback.New(cfg)
	require.NoError(t, err)
	return f
}

// stale is a fallback that serves "stale" and records the error it got.
type stale struct {
	mu   sync.Mutex
	errs []error
}

func (s *stale) fn(_ context.Context, err error) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.errs = append(s.errs, err)
	return "stale", nil
}

func TestNewValidates(t *testing.T) {
	_, err := fallback.New(fallback.Config[int]{})
	assert.EqualError(t, err, "fallback: Fallback is nil")
	_, err = fallback.NewPolicy(fallback.PolicyConfig{})
	assert.EqualError(t, err, "fallback: Fallback is nil")
}

func TestGet(t *testing.T) {
	ctx := context.Background()
	rejected := seawall.NewRejection("breaker: open")
	for _, tc := range []struct {
		name     string
		opErr    error
		wantV    string
		wantErr  error
		fellBack bool
	}{
		{"success", nil, "fresh", nil, false},
		{"error", errDown, "stale", nil, true},
		{"wrapped error", fmt.Errorf("call: %w", errDown), "stale", nil, true},
		{"rejection", rejected, "stale", nil, true},
		{"permanent", seawall.Permanent(errDown), "stale", nil, true},
		{"deadline", context.DeadlineExceeded, "stale", nil, true},
		{"canceled", context.Canceled, "fresh", context.Canceled, false},
		{"wrapped canceled", fmt.Errorf("call: %w", context.Canceled), "fresh", context.Canceled, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &stale{}
			f := mustNew(t, fallback.Config[string]{Fallback: s.fn})
			v, err := f.Get(ctx, func(context.Context) (string, error) { return "fresh", tc.opErr })
			assert.Equal(t, tc.wantV, v)
			if tc.wantErr != nil {
				assert.ErrorIs(t, err, tc.wantErr)
			} else {
				assert.NoError(t, err)
			}
			var want fallback.Metrics
			if tc.fellBack {
				want.FellBack = 1
				require.Len(t, s.errs, 1)
				assert.True(t, tc.opErr == s.errs[0], "the fallback gets the original error")
			} else {
				assert.Empty(t, s.errs)
			}
			assert.Equal(t, want, f.Metrics())
		})
	}
}

func TestFallbackFails(t *testing.T) {
	errCache := errors.New("cache miss")
	f := mustNew(t, fallback.Config[int]{Fallback: func(_ context.Context, err error) (int, error) {
		return 0, errors.Join(err, errCache)
	}})
	_, err := f.Get(context.Background(), func(context.Context) (int, error) { return 0, errDown })
	assert.ErrorIs(t, err, errDown)
	assert.ErrorIs(t, err, errCache)
	assert.Equal(t, fallback.Metrics{FellBack: 1, Failed: 1}, f.Metrics())
}

func TestHandlesReplaced(t *testing.T) {
	errOther := errors.New("other")
	f := mustNew(t, fallback.Config[int]{
		Fallback: func(context.Context, error) (int, error) { return 7, nil },
		Handles:  func(err error) bool { return errors.Is(err, errDown) },
	})
	ctx := context.Background()
	v, err := f.Get(ctx, func(context.Context) (int, error) { return 1, errOther })
	assert.Equal(t, 1, v, "an unhandled error returns op's value and error unchanged")
	assert.Same(t, errOther, err)
	v, err = f.Get(ctx, func(context.Context) (int, error) { return 1, errDown })
	assert.Equal(t, 7, v)
	assert.NoError(t, err)
	assert.Equal(t, fallback.Metrics{FellBack: 1}, f.Metrics())
}

func TestPanicsAreNotSwallowed(t *testing.T) {
	s := &stale{}
	f := mustNew(t, fallback.Config[string]{Fallback: s.fn})
	assert.PanicsWithValue(t, "op", func() {
		_, _ = f.Get(context.Background(), func(context.Context) (string, error) { panic("op") })
	})
	assert.Empty(t, s.errs, "a panic in op does not fall back")

	g := mustNew(t, fallback.Config[string]{Fallback: func(context.Context, error) (string, error) { panic("fallback") }})
	assert.PanicsWithValue(t, "fallback", func() {
		_, _ = g.Get(context.Background(), func(context.Context) (string, error) { return "", errDown })
	})
	assert.Equal(t, fallback.Metrics{FellBack: 1, Failed: 1}, g.Metrics())

	p, err := fallback.NewPolicy(fallback.PolicyConfig{Fallback: func(context.Context, error) error { panic("fallback") }})
	require.NoError(t, err)
	assert.PanicsWithValue(t, "fallback", func() {
		_ = p.Do(context.Background(), func(context.Context) error { return errDown })
	})
	assert.Equal(t, fallback.Metrics{FellBack: 1, Failed: 1}, p.Metrics())
}

// The fallback gets the caller's context, even once its deadline passed:
// a timed-out call falls back at once, in virtual time.
func TestDeadlineFallsBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		var got context.Context
		f := mustNew(t, fallback.Config[string]{Fallback: func(ctx context.Context, err error) (string, error) {
			got = ctx
			return "stale", nil
		}})
		start := time.Now()
		v, err := f.Get(ctx, func(ctx context.Context) (string, error) {
			<-ctx.Done()
			return "", ctx.Err()
		})
		require.NoError(t, err)
		assert.Equal(t, "stale", v)
		assert.Equal(t, time.Second, time.Since(start))
		assert.Same(t, ctx, got)
	})
}

func TestPolicy(t *testing.T) {
	var served []error
	p, err := fallback.NewPolicy(fallback.PolicyConfig{Fallback: func(_ context.Context, err error) error {
		served = append(served, err)
		return nil
	}})
	require.NoError(t, err)
	ctx := context.Background()
	calls := 0
	op := func(context.Context) error { calls++; return errDown }

	assert.NoError(t, p.Do(ctx, op))
	assert.NoError(t, seawall.Pipeline(p).Do(ctx, op), "in a pipeline, through DoChain")
	assert.NoError(t, seawall.Pipeline(p, seawall.PolicyFunc(func(ctx context.Context, op func(context.Context) error) error {
		return op(ctx)
	})).Do(ctx, op))
	assert.ErrorIs(t, p.Do(ctx, func(context.Context) error { return context.Canceled }), context.Canceled)
	assert.NoError(t, p.Do(ctx, func(context.Context) error { return nil }))
	assert.Equal(t, 3, calls)
	assert.Equal(t, []error{errDown, errDown, errDown}, served)
	assert.Equal(t, fallback.Metrics{FellBack: 3}, p.Metrics())
	assert.NotNil(t, p.Registration())
}

func TestConcurrent(t *testing.T) {
	f := mustNew(t, fallback.Config[int]{Fallback: func(context.Context, error) (int, error) { return -1, nil }})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 100 {
				v, err := f.Get(context.Background(), func(context.Context) (int, error) {
					if (g+i)%2 == 0 {
						return 0, errDown
					}
					return i, nil
				})
				assert.NoError(t, err)
				assert.True(t, v == -1 || v == i)
			}
		})
	}
	wg.Wait()
	assert.Equal(t, fallback.Metrics{FellBack: 400}, f.Metrics())
}

func TestSuccessAllocatesNothing(t *testing.T) {
	f := mustNew(t, fallback.Config[string]{Fallback: (&stale{}).fn})
	p, err := fallback.NewPolicy(fallback.PolicyConfig{Fallback: func(context.Context, error) error { return nil }})
	require.NoError(t, err)
	pl := seawall.Pipeline(p)
	ctx := context.Background()
	op := func(context.Context) (string, error) { return "fresh", nil }
	eop := func(context.Context) error { return nil }
	assert.Zero(t, testing.AllocsPerRun(100, func() { _, _ = f.Get(ctx, op) }))
	assert.Zero(t, testing.AllocsPerRun(100, func() { _ = p.Do(ctx, eop) }))
	assert.Zero(t, testing.AllocsPerRun(100, func() { _ = pl.Do(ctx, eop) }))
}

func fallbackConfig() fallback.Config[int] {
	return fallback.Config[int]{Fallback: func(context.Context, error) (int, error) { return -1, nil }}
}

func mustNewPolicy(t testing.TB) *fallback.Policy {
	t.Helper()
	p, err := fallback.NewPolicy(fallback.PolicyConfig{Fallback: func(context.Context, error) error { return nil }})
	require.NoError(t, err)
	return p
}

// A registry recognizes any fallback through Metered, and a nil one by its
// nil Registration.
func TestMetered(t *testing.T) {
	for _, m := range []fallback.Metered{mustNew(t, fallbackConfig()), mustNewPolicy(t), mustNew(t, fallback.Config[string]{Fallback: (&stale{}).fn})} {
		assert.NotNil(t, m.Registration())
		assert.Zero(t, m.Metrics())
	}
	assert.Nil(t, (*fallback.Fallback[int])(nil).Registration())
	assert.Nil(t, (*fallback.Policy)(nil).Registration())
}
