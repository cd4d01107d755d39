package clock

import (
	"runtime"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/seawall-go/seawall/internal/bubble"
)

func TestNewCoarseRejectsABadTick(t *testing.T) {
	for _, tick := range []time.Duration{0, -time.Millisecond, MinTick - 1, MaxTick + 1, time.Hour} {
		c, err := NewCoarse(tick)
		assert.Nil(t, c)
		if assert.Error(t, err, "tick %v", tick) {
			assert.Contains(t, err.Error(), "clock: tick "+tick.String()+" out of range")
		}
	}
	for _, tick := range []time.Duration{MinTick, time.Millisecond, MaxTick} {
		c, err := NewCoarse(tick)
		require.NoError(t, err, "tick %v", tick)
		assert.Equal(t, tick, c.Tick())
		c.Stop()
	}
}

// The reading is the elapsed time rounded down to a tick: it stays put
// between ticks and moves by a tick at each.
func TestCoarseAdvancesEveryTick(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, err := NewCoarse(10 * time.Millisecond)
		require.NoError(t, err)
		defer c.Stop()
		assert.Zero(t, c.Elapsed(), "reads its start until the first tick")
		bubble.Sleep(9 * time.Millisecond)
		synctest.Wait()
		assert.Zero(t, c.Elapsed(), "no tick yet")
		bubble.Sleep(time.Millisecond)
		synctest.Wait() // the clock's goroutine takes the tick
		assert.Equal(t, 10*time.Millisecond, c.Elapsed())
		bubble.Sleep(25 * time.Millisecond)
		synctest.Wait()
		assert.Equal(t, 30*time.Millisecond, c.Elapsed())
		assert.Equal(t, c.Start().Add(30*time.Millisecond), c.Now())
		assert.Equal(t, 35*time.Millisecond, time.Since(c.Start()), "Start is the creation time")
	})
}

// Read at irregular times, the reading never goes back, never runs ahead
// of the real (here, the bubble's) monotonic clock, and lags it by less
// than a tick.
func TestCoarseIsMonotonicAndLagsLessThanATick(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const tick = time.Millisecond
		c, err := NewCoarse(tick)
		require.NoError(t, err)
		defer c.Stop()
		var last time.Duration
		for i := range 5000 {
			bubble.Sleep(time.Duration(i*7919%2500) * time.Microsecond) // 0 to 2.5 ticks
			synctest.Wait()
			got, real := c.Elapsed(), time.Since(c.Start())
			require.GreaterOrEqual(t, got, last, "went back at step %d", i)
			require.LessOrEqual(t, got, real, "ran ahead at step %d", i)
			require.Less(t, real-got, tick, "lagged a tick at step %d", i)
			last = got
		}
	})
}

// Stop ends the goroutine before it returns; reads then fall back to the
// exact clock, from the same start, so they keep moving and do not go
// back. Stop is idempotent.
func TestCoarseStop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, err := NewCoarse(10 * time.Millisecond)
		require.NoError(t, err)
		bubble.Sleep(25 * time.Millisecond)
		synctest.Wait()
		before := c.Elapsed()
		require.Equal(t, 20*time.Millisecond, before)
		require.True(t, ticking())
		c.Stop()
		assert.False(t, ticking(), "Stop returned before the goroutine")
		c.Stop()
		assert.Equal(t, 25*time.Millisecond, c.Elapsed(), "the exact time, not the last tick")
		bubble.Sleep(3 * time.Millisecond)
		assert.Equal(t, 28*time.Millisecond, c.Elapsed(), "keeps moving without its goroutine")
		// Were the goroutine alive, synctest.Test would fail here: a bubble's
		// goroutines must all have returned when its function does.
	})
}

// On the real clock, under -race: readers racing with the ticks and with
// Stop see a reading that never goes back, and after Stop no goroutine is
// left (goleak).
func TestCoarseStopRacingReaders(t *testing.T) {
	c, err := NewCoarse(MinTick)
	require.NoError(t, err)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range 4 {
		wg.Go(func() {
			<-start
			var last time.Duration
			for range 200_000 {
				got := c.Elapsed()
				if got < last {
					t.Errorf("went back from %v to %v", last, got)
					return
				}
				last = got
			}
		})
	}
	wg.Go(func() {
		<-start
		c.Stop()
	})
	close(start)
	c.Stop() // concurrently with the other Stop: both return after the goroutine
	assert.False(t, ticking(), "Stop returned before the goroutine")
	wg.Wait()
	goleak.VerifyNone(t)
}

// ticking reports whether a Coarse clock's goroutine is running.
func ticking() bool {
	buf := make([]byte, 1<<20)
	return strings.Contains(string(buf[:runtime.Stack(buf, true)]), "clock.(*Coarse).run")
}

// NewCoarse accepts exactly the ticks in [MinTick, MaxTick], and names any
// other in its error.
func FuzzNewCoarse(f *testing.F) {
	for _, tick := range []time.Duration{0, -1, MinTick - 1, MinTick, time.Millisecond, MaxTick, MaxTick + 1} {
		f.Add(int64(tick))
	}
	f.Fuzz(func(t *testing.T, n int64) {
		tick := time.Duration(n)
		c, err := NewCoarse(tick)
		if tick < MinTick || tick > MaxTick {
			require.Error(t, err)
			assert.Nil(t, c)
			assert.Contains(t, err.Error(), "tick "+tick.String())
			return
		}
		require.NoError(t, err)
		assert.Equal(t, tick, c.Tick())
		c.Stop()
	})
}
