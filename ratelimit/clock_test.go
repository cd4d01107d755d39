package ratelimit

import (
	"encoding/json"
	"math/rand/v2"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seawall-go/seawall/clock"
	"github.com/seawall-go/seawall/internal/bubble"
)

// The coarse-clock tests run a limiter on a coarse clock next to one on the
// runtime's, created at the same instant of a bubble's fake time. There the
// clock's goroutine wakes exactly on time, so its lag L is under one tick:
// the bounds of Config.Clock with L < tick.
const (
	ccRate  = 1000 // one token a millisecond
	ccBurst = 20
	ccTick  = 10 * time.Millisecond // Rate × tick = 10 tokens: a tick's fit in the bucket
	ccT     = int64(time.Second / ccRate)
)

func newClockPair(t *testing.T) (exact, coarse *Limiter, clk *clock.Coarse) {
	t.Helper()
	clk, err := clock.NewCoarse(ccTick)
	require.NoError(t, err)
	t.Cleanup(clk.Stop)
	exact, err = New(Config{Rate: ccRate, Burst: ccBurst})
	require.NoError(t, err)
	coarse, err = New(Config{Rate: ccRate, Burst: ccBurst, Clock: clk})
	require.NoError(t, err)
	return exact, coarse, clk
}

// drain takes every token l has now and returns how many.
func drain(l *Limiter) (n int64) {
	for l.Allow() {
		n++
	}
	return n
}

// A caller that keeps the bucket empty from the limiter's creation on is
// granted at most ⌈Rate × tick⌉ fewer events than with the exact clock, and
// never more: tokens come up to a tick late.
func TestCoarseClockLagsByLessThanRateTimesTick(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		exact, coarse, _ := newClockPair(t)
		bound := (int64(ccTick) + ccT - 1) / ccT // ⌈Rate × tick⌉
		rng := rand.New(rand.NewPCG(1, 2))
		ne, nc := drain(exact), drain(coarse) // from creation on
		require.Equal(t, int64(ccBurst), ne)
		require.Equal(t, int64(ccBurst), nc)
		var worst int64
		for range 20_000 { // about 25s of fake time
			bubble.Sleep(time.Duration(rng.Int64N(int64(ccTick)/4)) + 1)
			synctest.Wait() // the clock's goroutine takes a tick due now
			ne += drain(exact)
			nc += drain(coarse)
			require.GreaterOrEqual(t, ne-nc, int64(0), "the coarse limiter granted more")
			require.LessOrEqual(t, ne-nc, bound, "the coarse limiter lagged more than Rate × tick")
			worst = max(worst, ne-nc)
		}
		assert.Greater(t, worst, bound/2, "the lag shows, close to its bound")
		m := coarse.Metrics()
		assert.Equal(t, uint64(nc), m.Allowed)
	})
}

// Over any interval of length d, a limiter on the coarse clock allows at
// most Rate × (d + tick) + Burst events, where the exact clock allows
// Rate × d + Burst: the excess is real (a reading jumps a tick and the
// tokens of that tick come at once) and stays within Rate × tick.
func TestCoarseClockAdmitsAtMostRateTimesTickMore(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		exact, coarse, _ := newClockPair(t)
		type step struct {
			at     int64 // ns since start
			ne, nc int64 // events each granted at that time
		}
		start := time.Now()
		rng := rand.New(rand.NewPCG(3, 4))
		var steps []step
		for range 5_000 {
			// Bursty demand with quiet periods, so that the buckets fill.
			bubble.Sleep(time.Duration(rng.Int64N(3 * int64(ccTick))))
			synctest.Wait()
			s := step{at: int64(time.Since(start))}
			for range rng.IntN(3 * ccBurst) {
				if exact.Allow() {
					s.ne++
				}
				if coarse.Allow() {
					s.nc++
				}
			}
			steps = append(steps, s)
		}
		var excess int64 // the most the coarse limiter exceeded Rate × d + Burst by, as time
		for i := range steps {
			var ne, nc int64
			for j := i; j < len(steps) && steps[j].at-steps[i].at <= 5*int64(ccTick); j++ {
				ne += steps[j].ne
				nc += steps[j].nc
				d := steps[j].at - steps[i].at
				// N ≤ Rate × d + Burst, as times: N × T ≤ d + Burst × T.
				require.LessOrEqual(t, ne*ccT, d+ccBurst*ccT, "exact: steps %d..%d", i, j)
				require.LessOrEqual(t, nc*ccT, d+int64(ccTick)+ccBurst*ccT, "coarse: steps %d..%d", i, j)
				excess = max(excess, nc*ccT-d-ccBurst*ccT)
			}
		}
		assert.Greater(t, excess, int64(0), "the coarse clock's excess is real")
		t.Logf("largest excess over Rate × d + Burst: %d tokens (bound %d)", excess/ccT, int64(ccTick)/ccT)
	})
}

// If a tick brings more tokens than the bucket holds (Rate × tick above
// Burst), the surplus of every tick is lost: the limiter allows Burst
// events a tick, below Rate.
func TestCoarseClockTickAboveBurst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clk, err := clock.NewCoarse(ccTick)
		require.NoError(t, err)
		defer clk.Stop()
		l, err := New(Config{Rate: ccRate, Burst: 4, Clock: clk}) // 10 tokens a tick
		require.NoError(t, err)
		var n int64
		for range 1000 { // 1s
			bubble.Sleep(time.Millisecond)
			synctest.Wait()
			n += drain(l)
		}
		assert.Equal(t, int64(4+100*4), n, "Burst per tick, not Rate")
	})
}

// A limiter whose coarse clock is stopped reads the runtime's clock: it
// keeps granting tokens as they come, and its delays are exact.
func TestStoppedCoarseClockFallsBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, coarse, clk := newClockPair(t)
		bubble.Sleep(25 * time.Millisecond)
		synctest.Wait()
		drain(coarse) // as of 20ms, the last tick
		clk.Stop()
		assert.Equal(t, int64(5), drain(coarse), "the tokens of the last 5ms, read exactly")
		bubble.Sleep(3 * time.Millisecond) // no tick reads this: the goroutine is gone
		assert.Equal(t, int64(3), drain(coarse), "the tokens of 3ms, at once")
		r := coarse.Reserve()
		assert.Equal(t, time.Millisecond, r.Delay(), "exact, from the runtime's clock")
		r.Cancel()
		bubble.Sleep(time.Millisecond)
		assert.True(t, coarse.Allow())
	})
}

// With a coarse clock, the re-read of a refusal (allowLate) reads the same
// tick and refuses as well: no token comes between two readings of one
// tick. Once the tick moves, the stale reading is corrected as with the
// runtime's clock.
func TestCoarseClockStaleReading(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, coarse, _ := newClockPair(t)
		drain(coarse)
		p := coarse.p.Load()
		stale := coarse.now()
		bubble.Sleep(5 * time.Millisecond)
		assert.False(t, coarse.allowLate(p, stale), "the same tick: nothing new")
		bubble.Sleep(5 * time.Millisecond)
		synctest.Wait()
		assert.True(t, coarse.allowLate(p, stale), "the next tick: its tokens")
	})
}

// Clock is not part of a Config's JSON form, and a Config decoded from JSON
// keeps the clock it had.
func TestConfigClockIsNotJSON(t *testing.T) {
	clk, err := clock.NewCoarse(time.Millisecond)
	require.NoError(t, err)
	defer clk.Stop()
	b, err := json.Marshal(Config{Rate: 10, Clock: clk})
	require.NoError(t, err)
	assert.JSONEq(t, `{"rate": 10}`, string(b))
	cfg := Config{Clock: clk}
	require.NoError(t, json.Unmarshal([]byte(`{"rate": 5, "burst": 2}`), &cfg))
	assert.Equal(t, Config{Rate: 5, Burst: 2, Clock: clk}, cfg)
	require.Error(t, json.Unmarshal([]byte(`{"rate": 5, "clock": 1}`), &cfg), "not a key")
}

// A keyed limiter on a coarse clock reads it as a Limiter does: each key's
// bucket, driven by the same calls at the same instants of fake time,
// decides as a Limiter on the same clock, through ticks and between them,
// and the refusals' delays agree. Once the clock is stopped, both read the
// runtime's clock.
func TestKeyedOnACoarseClock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clk, err := clock.NewCoarse(ccTick)
		require.NoError(t, err)
		defer clk.Stop()
		cfg := Config{Rate: ccRate, Burst: ccBurst, Clock: clk}
		k, err := NewKeyed(KeyedConfig{Config: cfg, MaxKeys: 16})
		require.NoError(t, err)
		keys := []string{"a", "b", "c"}
		ls := make([]*Limiter, len(keys))
		for i := range ls {
			ls[i], err = New(cfg)
			require.NoError(t, err)
		}
		rng := rand.New(rand.NewPCG(3, 4))
		var allowed, refused int
		step := func() {
			i := rng.IntN(len(keys))
			n := 1 + rng.IntN(3)
			want, got := ls[i].Try(n), k.Try(keys[i], n)
			require.Equal(t, want == nil, got == nil, "key %s, n %d at %v", keys[i], n, time.Now())
			if want != nil {
				refused++
				assert.Equal(t, want.Error(), got.Error())
			} else {
				allowed++
			}
		}
		for range 5_000 { // about 6s of fake time
			step()
			if rng.IntN(4) == 0 {
				bubble.Sleep(time.Duration(rng.IntN(4)) * time.Millisecond)
				synctest.Wait() // a tick due now has been read
			}
		}
		clk.Stop()
		for range 1_000 {
			step()
			bubble.Sleep(time.Duration(rng.IntN(2)) * time.Millisecond)
		}
		assert.Positive(t, allowed)
		assert.Positive(t, refused)
	})
}
