package breaker

import (
	"encoding/json"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seawall-go/seawall/clock"
	"github.com/seawall-go/seawall/internal/bubble"
)

// newCoarse starts a coarse clock that the test stops.
func newCoarse(t *testing.T, tick time.Duration) *clock.Coarse {
	t.Helper()
	c, err := clock.NewCoarse(tick)
	require.NoError(t, err)
	t.Cleanup(c.Stop)
	return c
}

// sleep advances the bubble's clock and lets the coarse clock take its ticks.
func sleep(d time.Duration) {
	bubble.Sleep(d)
	synctest.Wait()
}

// On a coarse clock a time window's buckets turn up to a tick late: calls
// that left the exact breaker's window are still in the coarse one's.
func TestCoarseClockTimeWindowTurnsLate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := Config{FailureRate: 0.5, TimeWindow: time.Second, TimeWindowBuckets: 10, MinimumCalls: 4}
		exact := mustNew(t, cfg)
		cfg.Clock = newCoarse(t, 30*time.Millisecond)
		coarse := mustNew(t, cfg)
		for _, b := range []*Breaker{exact, coarse} {
			run(t, b, 3, errBoom) // bucket 0
		}
		sleep(1010 * time.Millisecond) // the coarse clock reads 990ms: bucket 9
		for _, b := range []*Breaker{exact, coarse} {
			run(t, b, 1, errBoom)
		}
		assert.Equal(t, Closed, exact.State(), "1 call in the window, below MinimumCalls")
		assert.Equal(t, Open, coarse.State(), "4 failures in the window: bucket 0 has not left it yet")
	})
	synctest.Test(t, func(t *testing.T) {
		cfg := Config{FailureRate: 0.5, TimeWindow: time.Second, TimeWindowBuckets: 10, MinimumCalls: 4,
			Clock: newCoarse(t, 30*time.Millisecond)}
		b := mustNew(t, cfg)
		run(t, b, 3, errBoom)
		sleep(time.Second + 30*time.Millisecond) // a tick late, bucket 0 has left
		run(t, b, 1, errBoom)
		assert.Equal(t, Closed, b.State())
	})
}

// On a coarse clock a call's duration is measured within a tick: a call
// at the threshold may read as fast, one below it as slow.
func TestCoarseClockSlowCallWithinATick(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := Config{SlowCallThreshold: 105 * time.Millisecond}
		exact := mustNew(t, cfg)
		cfg.Clock = newCoarse(t, 10*time.Millisecond)
		coarse := mustNew(t, cfg)
		call := func(d time.Duration) {
			pe, err := exact.Allow()
			require.NoError(t, err)
			pc, err := coarse.Allow()
			require.NoError(t, err)
			sleep(d)
			pe.Done(nil)
			pc.Done(nil)
		}
		call(105 * time.Millisecond) // 0 → 105ms reads 0 → 100ms
		assert.Equal(t, uint64(1), exact.Metrics().SlowCalls)
		assert.Equal(t, uint64(0), coarse.Metrics().SlowCalls, "at the threshold, read as 100ms")
		sleep(14 * time.Millisecond) // 119ms, read as 110ms
		call(101 * time.Millisecond) // 119 → 220ms reads 110 → 220ms
		assert.Equal(t, uint64(1), exact.Metrics().SlowCalls, "101ms is fast")
		assert.Equal(t, uint64(1), coarse.Metrics().SlowCalls, "below the threshold, read as 110ms")
	})
}

// On a coarse clock the open period ends up to a tick late, and State
// says so.
func TestCoarseClockOpenPeriodEndsLate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := Config{ConsecutiveFailures: 1, OpenDuration: time.Second}
		exact := mustNew(t, cfg)
		cfg.Clock = newCoarse(t, 30*time.Millisecond)
		coarse := mustNew(t, cfg)
		run(t, exact, 1, errBoom)
		run(t, coarse, 1, errBoom)
		sleep(1010 * time.Millisecond) // read as 990ms
		assert.Equal(t, HalfOpen, exact.State())
		assert.Equal(t, Open, coarse.State())
		_, err := coarse.Allow()
		assert.ErrorIs(t, err, ErrOpen)
		sleep(10 * time.Millisecond) // read as 1020ms
		assert.Equal(t, HalfOpen, coarse.State())
	})
}

// A breaker whose coarse clock is stopped reads the runtime's clock, and a
// Group's breakers read the Group's clock.
func TestCoarseClockStoppedAndInGroup(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clk := newCoarse(t, 30*time.Millisecond)
		cfg := Config{ConsecutiveFailures: 1, OpenDuration: time.Second, Clock: clk}
		g, err := NewGroup(cfg, 0)
		require.NoError(t, err)
		b := g.Get("a")
		run(t, b, 1, errBoom)
		sleep(1010 * time.Millisecond)
		assert.Equal(t, Open, b.State(), "the group's breaker reads the coarse clock: 990ms")
		clk.Stop()
		assert.Equal(t, HalfOpen, b.State(), "stopped, the exact 1010ms")
	})
}

// Clock is not part of a Config's JSON form.
func TestConfigClockIsNotJSON(t *testing.T) {
	clk, err := clock.NewCoarse(time.Millisecond)
	require.NoError(t, err)
	defer clk.Stop()
	b, err := json.Marshal(Config{OpenDuration: time.Second, Clock: clk})
	require.NoError(t, err)
	assert.NotContains(t, string(b), "lock")
	cfg := Config{Clock: clk}
	require.NoError(t, json.Unmarshal([]byte(`{"openDuration": "2s"}`), &cfg))
	assert.Same(t, clk, cfg.Clock, "decoding keeps the clock")
	assert.Error(t, json.Unmarshal([]byte(`{"clock": 1}`), &cfg), "not a key")
}
