package retry

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/seawall-go/seawall"
)

// TestLoopDelay checks that Loop.Delay reports the delay each Record
// decided, and what decided it.
func TestLoopDelay(t *testing.T) {
	type step struct {
		err   error
		delay time.Duration
		why   seawall.DelayReason
	}
	ms := time.Millisecond
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"success", []step{{nil, 0, seawall.DelayNone}}},
		{"backoff", []step{{errBoom, 10 * ms, seawall.DelayBackoff}, {nil, 0, seawall.DelayNone}}},
		{"hint below the backoff", []step{{seawall.WithRetryAfter(errBoom, ms), 10 * ms, seawall.DelayBackoff}}},
		{"hint equal to the backoff", []step{{seawall.WithRetryAfter(errBoom, 10*ms), 10 * ms, seawall.DelayBackoff}}},
		{"hint raises the backoff", []step{{seawall.WithRetryAfter(errBoom, 30*ms), 30 * ms, seawall.DelayRetryAfter}}},
		{"hint capped by MaxHint", []step{{seawall.WithRetryAfter(errBoom, time.Hour), time.Second, seawall.DelayRetryAfter}}},
		{"pushback below the backoff", []step{{seawall.WithPushback(errBoom, ms), ms, seawall.DelayPushback}}},
		{"pushback, then backoff", []step{
			{seawall.WithPushback(errBoom, 0), 0, seawall.DelayPushback},
			{errBoom, 20 * ms, seawall.DelayBackoff},
		}},
		{"not retryable", []step{{seawall.Permanent(errBoom), 0, seawall.DelayNone}}},
		{"attempts run out", []step{{errBoom, 10 * ms, seawall.DelayBackoff}, {errBoom, 20 * ms, seawall.DelayBackoff}, {errBoom, 0, seawall.DelayNone}}},
	} {
		r := mustNew(t, Config{Budget: noBudget, Delay: 10 * ms, Jitter: NoJitter, MaxHint: time.Second})
		l := r.Loop(t.Context())
		d, why := l.Delay()
		assert.Equal(t, time.Duration(0), d, "%s: before the first Record", tc.name)
		assert.Equal(t, seawall.DelayNone, why, "%s: before the first Record", tc.name)
		for i, s := range tc.steps {
			l.attempt, l.recorded = i+1, false // the waits are not this test's
			l.Record(s.err)
			d, why := l.Delay()
			assert.Equal(t, s.delay, d, "%s: step %d", tc.name, i+1)
			assert.Equal(t, s.why, why, "%s: step %d", tc.name, i+1)
		}
	}
}
