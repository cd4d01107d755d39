package storm

import (
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seawall-go/seawall/internal/bubble"
)

// TestWatch checks that a Watch sets a timer every period and, in virtual
// time, where timers fire exactly on time, sees no lateness; virtual time
// cannot make a timer late, so the statistics are checked on samples.
func TestWatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := StartWatch(5 * time.Millisecond)
		bubble.Sleep(time.Second + time.Millisecond)
		l := w.Stop()
		assert.Equal(t, 200, l.Timers, "a timer every 5ms for 1s")
		assert.Zero(t, l.Max, "virtual timers fire on time")
	})
	l := latenessOf([]time.Duration{3, 1, 2, 100, 4, 5, 6, 7, 8, 9})
	assert.Equal(t, Lateness{Timers: 10, P50: 5, P99: 100, Max: 100}, l)
}

// TestCheck checks the self-check's verdicts: an on-time run with every
// strategy served in the warm-up is trusted; late timers, or a strategy
// that failed requests before the trigger, are named in plain words.
func TestCheck(t *testing.T) {
	s := Default()
	ok := []*Result{{Strategy: NoRetry, Metrics: Metrics{WarmupSuccess: 1}}, {Strategy: Adaptive, Metrics: Metrics{WarmupSuccess: 0.9995}}}
	onTime := Lateness{Timers: 7000, P50: 50 * time.Microsecond, P99: 400 * time.Microsecond, Max: 3 * time.Millisecond}
	assert.Empty(t, Check(s, onTime, ok), "an on-time run is trusted")

	late := onTime
	late.P99 = 3 * time.Millisecond // above 2ms, a fifth of the 10ms service time
	why := Check(s, late, ok)
	require.Len(t, why, 1)
	assert.Contains(t, why[0], "3.0ms late at the 99th percentile")

	late = onTime
	late.Max = 30 * time.Millisecond // above 25ms, a quarter of the attempt timeout
	why = Check(s, late, ok)
	require.Len(t, why, 1)
	assert.Contains(t, why[0], "30.0ms late")

	fast := s
	fast.Speed = 10 // a run 10× faster: 0.3ms of real lateness is 3ms of scenario
	late = onTime
	late.P99, late.Max = 300*time.Microsecond, time.Millisecond
	assert.Len(t, Check(fast, late, ok), 1, "lateness is judged in scenario time")

	bad := []*Result{ok[0], {Strategy: ServerSide, Metrics: Metrics{WarmupSuccess: 0.97}}}
	why = Check(s, onTime, bad)
	require.Len(t, why, 1)
	assert.True(t, strings.HasPrefix(why[0], "(f) served 97.0%"), why[0])

	over := s
	over.Rate = 1200 // the warm-up is above capacity: failures there say nothing of the machine
	assert.Empty(t, Check(over, onTime, bad))

	assert.Len(t, Check(s, Lateness{}, ok), 1, "no timer at all is not trusted")
}
