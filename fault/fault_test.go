package fault

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/seawall-go/seawall"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// seq returns a Rand that returns vs in turn, then fails the test.
func seq(t *testing.T, vs ...float64) func() float64 {
	return func() float64 {
		if len(vs) == 0 {
			t.Fatal("Rand called more often than expected")
		}
		v := vs[0]
		vs = vs[1:]
		return v
	}
}

func mustNew(t *testing.T, c Config) *Injector {
	t.Helper()
	i, err := New(c)
	require.NoError(t, err)
	return i
}

func ran(i *Injector, ctx context.Context) (bool, error) {
	called := false
	err := i.Do(ctx, func(context.Context) error { called = true; return nil })
	return called, err
}

func TestOffByDefault(t *testing.T) {
	i := mustNew(t, Config{ErrorRate: 1, Rand: seq(t)}) // Rand must not be called
	assert.False(t, i.Enabled())
	called, err := ran(i, context.Background())
	assert.True(t, called)
	assert.NoError(t, err)
	assert.Equal(t, Metrics{}, i.Metrics(), "calls while off are not counted")

	i.Enable()
	i.Disable()
	called, err = ran(i, context.Background())
	assert.True(t, called)
	assert.NoError(t, err)
}

func TestEnabledConfig(t *testing.T) {
	i := mustNew(t, Config{Enabled: true, ErrorRate: 1})
	assert.True(t, i.Enabled())
	called, err := ran(i, context.Background())
	assert.False(t, called, "an injected error does not run the operation")
	assert.ErrorIs(t, err, ErrInjected)
	assert.False(t, errors.Is(err, seawall.ErrRejected), "an injected error looks like a dependency failure")
	assert.Equal(t, Metrics{Enabled: true, Calls: 1, Selected: 1, Errors: 1}, i.Metrics())
}

func TestErrorRate(t *testing.T) {
	// Draws below the rate inject, at or above it do not.
	i := mustNew(t, Config{ErrorRate: 0.3, Rand: seq(t, 0.1, 0.3, 0.29, 0.9)})
	i.Enable()
	var got []bool
	for range 4 {
		called, _ := ran(i, context.Background())
		got = append(got, called)
	}
	assert.Equal(t, []bool{false, true, false, true}, got)
	assert.Equal(t, Metrics{Enabled: true, Calls: 4, Selected: 4, Errors: 2}, i.Metrics())
}

func TestCustomError(t *testing.T) {
	rej := seawall.WithRetryAfter(seawall.NewRejection("db: overloaded"), time.Second)
	i := mustNew(t, Config{Enabled: true, ErrorRate: 1, Err: rej})
	_, err := ran(i, context.Background())
	assert.Same(t, rej, err)
	assert.True(t, seawall.IsOverload(err))
}

func TestLatency(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// Delayed with jitter 0.5*40ms, then not failed.
		i := mustNew(t, Config{Enabled: true, LatencyRate: 0.2, Latency: 100 * time.Millisecond,
			Jitter: 40 * time.Millisecond, ErrorRate: 0.5, Rand: seq(t, 0.1, 0.5, 0.7, 0.2, 0.4)})
		start := time.Now()
		called, err := ran(i, context.Background())
		assert.True(t, called)
		assert.NoError(t, err)
		assert.Equal(t, 120*time.Millisecond, time.Since(start))

		// Not delayed (0.2 is not below 0.2), failed (0.4 < 0.5).
		start = time.Now()
		called, err = ran(i, context.Background())
		assert.False(t, called)
		assert.ErrorIs(t, err, ErrInjected)
		assert.Zero(t, time.Since(start))
		assert.Equal(t, Metrics{Enabled: true, Calls: 2, Selected: 2, Delays: 1, Errors: 1}, i.Metrics())
	})
}

func TestLatencyHonoursContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		i := mustNew(t, Config{Enabled: true, LatencyRate: 1, Latency: time.Hour, ErrorRate: 1})
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		start := time.Now()
		called, err := ran(i, ctx)
		assert.False(t, called)
		assert.Equal(t, context.DeadlineExceeded, err, "ctx.Err() unchanged")
		assert.Equal(t, 50*time.Millisecond, time.Since(start), "returns when the deadline passes")
		assert.Equal(t, Metrics{Enabled: true, Calls: 1, Selected: 1, Delays: 1}, i.Metrics())

		ctx, cancel = context.WithCancel(context.Background())
		cancel()
		assert.Equal(t, context.Canceled, i.Apply(ctx), "a context already done is not waited on")
	})
}

func TestSelect(t *testing.T) {
	type key struct{}
	i := mustNew(t, Config{Enabled: true, ErrorRate: 1, Select: func(ctx context.Context) bool {
		return ctx.Value(key{}) == "tenant-a"
	}})
	called, err := ran(i, context.Background())
	assert.True(t, called)
	assert.NoError(t, err)
	called, err = ran(i, context.WithValue(context.Background(), key{}, "tenant-a"))
	assert.False(t, called)
	assert.ErrorIs(t, err, ErrInjected)
	assert.Equal(t, Metrics{Enabled: true, Calls: 2, Selected: 1, Errors: 1}, i.Metrics())
}

func TestPipeline(t *testing.T) {
	i := mustNew(t, Config{Enabled: true, ErrorRate: 1})
	var _ seawall.ChainPolicy = i
	p := seawall.Pipeline(seawall.PolicyFunc(func(ctx context.Context, op func(context.Context) error) error {
		return op(ctx)
	}), i)
	called := false
	err := p.Do(context.Background(), func(context.Context) error { called = true; return nil })
	assert.False(t, called)
	assert.ErrorIs(t, err, ErrInjected)
	i.Disable()
	assert.NoError(t, p.Do(context.Background(), func(context.Context) error { called = true; return nil }))
	assert.True(t, called)

	opErr := errors.New("op")
	assert.Same(t, opErr, i.Do(context.Background(), func(context.Context) error { return opErr }), "op's error unchanged")
}

// TestConcurrent runs calls while the Injector is switched on and off, for
// the race detector.
func TestConcurrent(t *testing.T) {
	i := mustNew(t, Config{ErrorRate: 0.5})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 1000 {
			_, _ = ran(i, context.Background())
		}
	}()
	for range 100 {
		i.Enable()
		i.Disable()
	}
	<-done
	m := i.Metrics()
	assert.LessOrEqual(t, m.Errors, m.Calls)
}

func TestDisabledAllocs(t *testing.T) {
	i := mustNew(t, Config{ErrorRate: 1})
	ctx := context.Background()
	op := func(context.Context) error { return nil }
	assert.Zero(t, testing.AllocsPerRun(100, func() { _ = i.Do(ctx, op) }))
	i.Enable()
	assert.Zero(t, testing.AllocsPerRun(100, func() { _ = i.Do(ctx, op) }), "an injected error allocates nothing")
}
